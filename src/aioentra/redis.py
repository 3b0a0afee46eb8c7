"""A token cache shared by processes through Redis, with one token request in flight per key.

::

    from aioentra.redis import RedisCache

    cache = RedisCache("rediss://:password@cache.example:6380/0", key=os.environ["CACHE_KEY"])
    token, source = await cache.fetch(cache_key, request_token)  # source: "shared cache"/"network"
    await cache.close()

Entries are sealed with AES-256-GCM (:class:`~aioentra._cache.Keyring`): Redis holds no token in
the clear, and an entry moved under another key does not open. Per cache key (its SHA-256, hex)
Redis holds ``{prefix}:token:{digest}`` (the sealed token, expiring with it) and, while one
process asks the identity provider, ``{prefix}:lock:{digest}`` (a random value, ``NX PX
lock_lease``, deleted by a compare-and-delete Lua script). The holder also publishes ``ready``
on ``{prefix}:ready:{digest}`` for anyone who listens; waiters here poll instead (see below).

``fetch(key, fetch)`` decides, per call:

===========================================  ==============================  ====================
what Redis says                              the caller gets                 ``fetch()`` calls
===========================================  ==============================  ====================
an acceptable entry                          it, ``"shared cache"``          none
no acceptable entry, the lock is free        its own token, ``"network"``    one; then the entry
                                             (an entry that arrived while    is written and the
                                             locking: that one)              lock released
no acceptable entry, the lock is held        the holder's token once it is   none
                                             stored, ``"shared cache"``
... the holder fails or dies (lock gone,     the first waiter to see it      one (that waiter's)
no entry)                                    takes the lock over
... ``wait_timeout`` passes                  its own token, ``"network"``    one, unlocked; the
                                                                             entry is written
any Redis error, or in back-off after one    its own token, ``"network"``    one
===========================================  ==============================  ====================

**Waiting is polling**, not pub/sub: each poll is one round trip (``PTTL lock`` then ``GET
entry``, pipelined), at 20 ms growing by half to 250 ms, never past the end of the holder's
lease or of ``wait_timeout``, and at most :func:`~aioentra._cache.poll_budget` polls (36 for
5 s, of which the schedule uses about 25). A refresh happens once per key per token lifetime,
so this costs a few commands an hour, and it needs no connection held in subscribe mode per
waiter, no channel ACL (Redis 7 users get no channels by default), no proxy support for
``SUBSCRIBE``, and has no lost-notification race; each poll also sees the lock vanish, which
pub/sub alone would not.

**Redis never takes the caller down.** Any Redis error (refused, timeout, authentication, OOM,
an unexpected reply) makes that call fetch locally; the first one of an outage is logged as a
WARNING on ``aioentra.redis``, the recovery as an INFO. After a failure no Redis call is made
for 1 s, doubling to 30 s per failed attempt (:class:`~aioentra._cache.Outage`). An entry that
does not open is a miss, logged (rate-limited per reason and key id). ``fetch()``'s own errors
propagate unchanged. No log line or error carries a token, a key or the URL's password.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import logging
import math
import re
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

import anyio

from ._cache import (
    CachedToken,
    Keyring,
    Outage,
    SharedCache,
    Source,
    Unreadable,
    acceptable,
    entry_ttl_ms,
    poll_budget,
    poll_delay,
)
from ._errors import ConfigurationError, ProviderClosedError, raises_cleanly

try:
    import redis.asyncio as aioredis
    from redis.asyncio.connection import parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError:  # pragma: no cover - exercised in a subprocess without redis
    raise ConfigurationError(
        "aioentra.redis needs redis-py (redis>=5), which is not installed",
        hint="pip install 'aioentra[redis]'",
    ) from None

__all__ = ["RedisCache"]

logger = logging.getLogger("aioentra.redis")

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")
UNREADABLE_LOG_INTERVAL = 300.0
"""Seconds between two log lines for entries that do not open for the same reason."""
_PREFIX = re.compile(r"^[!-~]{1,100}$")
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_LOCK_GONE = -2  # PTTL of a key that does not exist
_PIPELINE_ERROR = re.compile(
    r"^Command # \d+ \((?P<command>[A-Za-z]+)\b.*?\) of pipeline caused error: (?P<reason>.*)$"
)


@dataclass(frozen=True)
class _Names:
    token: str
    lock: str
    channel: str

    @classmethod
    def of(cls, prefix: str, key: str) -> _Names:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(
            f"{prefix}:token:{digest}", f"{prefix}:lock:{digest}", f"{prefix}:ready:{digest}"
        )


class _Want(NamedTuple):
    """What the caller accepts of a stored token (see :func:`aioentra._cache.acceptable`)."""

    newer_than: float
    min_remaining: float
    unlike: str | None


class _Unavailable(Exception):
    """A Redis call failed (already recorded and reported): fetch locally."""


class RedisCache(SharedCache):
    """A :class:`~aioentra._cache.SharedCache` on Redis (see the module docstring).

    Args:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://``, as redis-py reads it; the
            password in it appears nowhere (repr, logs, errors).
        key: the sealing key(s), each 32 bytes (raw, base64 or hex); the first seals, all open.
            A :class:`~aioentra._cache.Keyring` is accepted too.
        prefix: the start of every Redis key and channel name.
        lock_lease: seconds a token request holds the lock at most (a holder that dies frees
            it then).
        wait_timeout: seconds a process waits for another's token request before its own.
        socket_timeout: seconds for a Redis reply; connect_timeout: for a connection.
        client: a ``redis.asyncio.Redis`` to use instead of one built from ``url`` (it is not
            closed by :meth:`close`; its own timeouts and retries apply, bounded by ours).
        clock: the monotonic clock of the back-off (tests move it by hand).

    Nothing connects before the first :meth:`fetch`; the cache then belongs to that event loop.

    Raises:
        ConfigurationError: an argument is invalid (it says which).
    """

    @raises_cleanly
    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        key: str | bytes | Sequence[str | bytes] | Keyring,
        prefix: str = "aioentra",
        lock_lease: float = 10.0,
        wait_timeout: float = 5.0,
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        client: aioredis.Redis | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._url = _check_url(url)
        self._keyring = key if isinstance(key, Keyring) else Keyring(key)
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise ConfigurationError(
                "prefix must be 1 to 100 printable ASCII characters without spaces"
            )
        self._prefix = prefix
        self._lease_ms = max(1, round(_seconds("lock_lease", lock_lease) * 1000))
        self._wait_timeout = _seconds("wait_timeout", wait_timeout)
        self._socket_timeout = _seconds("socket_timeout", socket_timeout)
        self._connect_timeout = _seconds("connect_timeout", connect_timeout)
        self._op_timeout = self._connect_timeout + 2 * self._socket_timeout
        """A bound on every Redis round trip (a NOSCRIPT reload makes two), a given client's too."""
        if client is not None and not isinstance(client, aioredis.Redis):
            raise ConfigurationError(
                f"client must be a redis.asyncio.Redis, not {type(client).__name__}"
            )
        if client is not None and _connection_kwargs(client).get("decode_responses"):
            raise ConfigurationError(
                "the given Redis client decodes responses; entries are binary",
                hint="pass a client built with decode_responses=False (the default).",
            )
        if clock is not None and not callable(clock):
            raise ConfigurationError("clock must be a function returning monotonic seconds")
        self._clock: Callable[[], float] = clock or time.monotonic
        self._given = client
        self._client: aioredis.Redis | None = client
        self._release: Any = None
        self._display = _display_url(url) if client is None else _display_client(client)
        self._secrets = _passwords(url) if client is None else _client_passwords(client)
        self._outage = Outage()
        self._unreadable_logged: dict[str, float] = {}
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the SharedCache interface ---------------------------------------------------------------

    async def fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[CachedToken]],
        *,
        newer_than: float = 0.0,
        min_remaining: float = 300.0,
        unlike: str | None = None,
    ) -> tuple[CachedToken, Source]:
        """A token for ``key``, by the table of the module docstring."""
        self._enter()
        if not self._outage.allows(self._clock()):
            return await fetch(), "network"
        names = _Names.of(self._prefix, key)
        want = _Want(newer_than, min_remaining, unlike)
        lock: str | None = None
        try:
            found = await self._read(names, key, want)
            if found is not None:
                return found, "shared cache"
            lock, lease_left = await self._try_lock(names)
            if lock is None:
                waited = await self._wait(names, key, lease_left, want)
                if isinstance(waited, CachedToken):
                    return waited, "shared cache"
                lock = waited
            if lock is not None:  # held: did an entry arrive while we were locking?
                found = await self._read(names, key, want)
                if found is not None:
                    await self._unlock(names, lock)
                    return found, "shared cache"
        except _Unavailable:
            return await fetch(), "network"
        if lock is None:  # waited in vain: our own request, no lock (a duplicate is harmless)
            token = await fetch()
            await self._store(names, key, token)
            return token, "network"
        try:
            token = await fetch()
        except BaseException:
            await self._unlock_after_failure(names, lock)
            raise
        await self._store(names, key, token)
        await self._unlock(names, lock)
        return token, "network"

    async def close(self) -> None:
        """Wait for lock releases under way, then close the client this cache created."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._op_timeout + 0.5)
        client, self._client = self._client, None
        if client is not None and client is not self._given:
            closer = getattr(client, "aclose", None) or client.close  # aclose: redis >= 5.0.1
            await closer()

    async def __aenter__(self) -> RedisCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"RedisCache({self._display!r}, prefix={self._prefix!r})"

    # -- steps -----------------------------------------------------------------------------------

    async def _read(self, names: _Names, key: str, want: _Want) -> CachedToken | None:
        blob = await self._redis("GET", lambda client: client.get(names.token))
        return self._usable(names, key, blob, want)

    def _usable(self, names: _Names, key: str, blob: object, want: _Want) -> CachedToken | None:
        if blob is None:
            return None
        if not isinstance(blob, bytes):
            raise self._failed(f"unexpected reply to GET: {type(blob).__name__}")
        opened = self._keyring.open(key, blob)
        if isinstance(opened, Unreadable):
            self._report_unreadable(names, opened)
            return None
        ok = acceptable(
            opened,
            now=time.time(),
            newer_than=want.newer_than,
            min_remaining=want.min_remaining,
            unlike=want.unlike,
        )
        return opened if ok else None

    async def _try_lock(self, names: _Names) -> tuple[str | None, float | None]:
        """Take the lock: (its value, None) if ours, else (None, seconds left on its lease)."""
        value = secrets.token_hex(16)

        async def attempt(client: aioredis.Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(names.lock, value, nx=True, px=self._lease_ms)
                pipe.pttl(names.lock)
                return await pipe.execute()

        taken, pttl = await self._redis("SET NX", attempt)
        if taken is True:
            return value, None
        if taken is not None or not isinstance(pttl, int):
            raise self._failed(f"unexpected reply to SET NX: {type(taken).__name__}")
        return None, _lease_left(pttl)

    async def _wait(
        self,
        names: _Names,
        key: str,
        lease_left: float | None,
        want: _Want,
    ) -> CachedToken | str | None:
        """Poll until an acceptable entry (returned), the lock to take over (its value), or the
        end of ``wait_timeout`` (``None``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_timeout

        async def poll(client: aioredis.Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.pttl(names.lock)  # first: a lock gone means its entry is already written
                pipe.get(names.token)
                return await pipe.execute()

        for attempt in range(poll_budget(self._wait_timeout)):
            time_left = deadline - loop.time()
            if time_left <= 0:
                break
            await asyncio.sleep(poll_delay(attempt, time_left=time_left, lease_left=lease_left))
            pttl, blob = await self._redis("PTTL/GET", poll)
            if not isinstance(pttl, int):
                raise self._failed(f"unexpected reply to PTTL: {type(pttl).__name__}")
            found = self._usable(names, key, blob, want)
            if found is not None:
                return found
            lease_left = _lease_left(pttl)
            if pttl == _LOCK_GONE:  # the holder failed or died: take over
                lock, lease_left = await self._try_lock(names)
                if lock is not None:
                    return lock
        return None

    async def _store(self, names: _Names, key: str, token: CachedToken) -> None:
        """Write the entry and announce it; best effort (a failure is recorded, not raised)."""
        if not self._outage.allows(self._clock()):
            return
        ttl = entry_ttl_ms(token, time.time())
        if ttl is None:
            return
        try:
            blob = self._keyring.encode(key, token)
        except Exception:  # not a token we can store (a NaN lifetime...): hand it out unstored
            logger.debug("token for %s not stored: it cannot be encoded", names.token)
            return

        async def write(client: aioredis.Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(names.token, blob, px=ttl)
                pipe.publish(names.channel, b"ready")  # a refused PUBLISH (ACL) is ignored
                return await pipe.execute(raise_on_error=False)

        with contextlib.suppress(_Unavailable):
            written, _ = await self._redis("SET", write)
            if written is not True:
                reply = type(written).__name__
                if isinstance(written, Exception):
                    reply = _describe(written, self._secrets)
                raise self._failed(f"unexpected reply to SET: {reply}")

    async def _unlock(self, names: _Names, lock: str) -> None:
        """Delete the lock if it is still ours; best effort (it expires anyway)."""
        if not self._outage.allows(self._clock()):
            return
        with contextlib.suppress(_Unavailable):
            await self._redis(
                "EVALSHA", lambda client: self._release(keys=[names.lock], args=[lock])
            )

    async def _unlock_after_failure(self, names: _Names, lock: str) -> None:
        """:meth:`_unlock` in a task of its own: it completes even if the caller is cancelled."""
        task = asyncio.get_running_loop().create_task(self._unlock(names, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    # -- Redis calls, failures and reports -------------------------------------------------------

    async def _redis(self, what: str, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """One round trip: its reply, or :class:`_Unavailable` (recorded and reported)."""
        if self._closed and self._client is None:  # close() ran: open nothing new
            raise _Unavailable("closed")
        client = self._connect()
        try:
            with anyio.fail_after(self._op_timeout):
                reply = await call(client)
        except Exception as error:
            raise self._failed(_describe(error, self._secrets, self._op_timeout)) from None
        if self._outage.succeeded():
            logger.info("shared token cache at %s is available again", self._display)
        return reply

    def _failed(self, description: str) -> _Unavailable:
        if self._outage.failed(self._clock()):
            logger.warning(
                "shared token cache unavailable at %s: %s; fetching locally",
                self._display,
                description,
            )
        else:
            logger.debug("shared token cache still unavailable: %s", description)
        return _Unavailable(description)

    def _report_unreadable(self, names: _Names, why: Unreadable) -> None:
        reason, now = str(why), self._clock()
        last = self._unreadable_logged.get(reason)
        if last is not None and now - last < UNREADABLE_LOG_INTERVAL:
            return
        if len(self._unreadable_logged) >= 64:
            self._unreadable_logged.clear()
        self._unreadable_logged[reason] = now
        logger.warning(
            "shared token cache entry %s unreadable: %s; treating it as a miss (entries sealed "
            "with another key stay misses until the key is in every keyring)",
            names.token,
            reason,
        )

    def _connect(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self._url,
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._connect_timeout,
                retry=Retry(NoBackoff(), 0),  # we fall back at once, then back off ourselves
                health_check_interval=0,
            )
        if self._release is None:
            self._release = self._client.register_script(_RELEASE)
        return self._client

    def _enter(self) -> None:
        if self._closed:
            raise ProviderClosedError("the shared token cache (RedisCache) was closed")
        loop = asyncio.get_running_loop()
        bound = self._loop() if self._loop is not None else None
        if bound is None:
            if self._loop is not None and self._given is None:  # its loop is gone, and with
                self._client = self._release = None  # it the connections: start afresh
            self._loop = weakref.ref(loop)
        elif bound is not loop:
            raise ProviderClosedError(
                "this RedisCache belongs to the event loop that first used it",
                hint="build one RedisCache per event loop.",
            )


# -- pure helpers --------------------------------------------------------------------------------


def _lease_left(pttl: int) -> float | None:
    """Seconds left on the lock's lease from its ``PTTL`` (``None``: no lock, or no expiry)."""
    return pttl / 1000 if pttl >= 0 else None


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be text, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigurationError(
            f"url is not a URL: {_display_url(url)!r}", hint="redis://host:6379/0"
        ) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"url must start with redis://, rediss:// or unix://, not {parts.scheme + ':'!r}",
            hint="redis://host:6379/0, rediss://:password@host:6380/0 or unix:///run/redis.sock",
        )
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError("a unix:// url needs a socket path: unix:///run/redis.sock")
    try:
        parse_url(url)
    except ValueError as error:
        raise ConfigurationError(f"url {_display_url(url)!r} is invalid: {error}") from None
    return url


def _display_url(url: str) -> str:
    """``url`` without its password (and without query and fragment, which may hold one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _connection_kwargs(client: aioredis.Redis) -> dict[str, Any]:
    kwargs = getattr(client.connection_pool, "connection_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else {}


def _display_client(client: aioredis.Redis) -> str:
    kwargs = _connection_kwargs(client)
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _passwords(url: str) -> tuple[str, ...]:
    found: set[str] = set()
    try:
        password = urlsplit(url).password
        if password:
            found.update((password, unquote(password)))
        parsed = parse_url(url).get("password")
        if parsed:
            found.add(parsed)
    except ValueError:
        pass
    return tuple(found)


def _client_passwords(client: aioredis.Redis) -> tuple[str, ...]:
    password = _connection_kwargs(client).get("password")
    return (password,) if isinstance(password, str) and password else ()


def _describe(error: BaseException, hidden: Sequence[str], timeout: float | None = None) -> str:
    """``Type: first line of the message``, with every ``hidden`` string masked.

    redis-py prefixes an error inside a pipeline with the command and its arguments (ours are
    not secret, but are noise): only the command name is kept.
    """
    if isinstance(error, TimeoutError) and not str(error) and timeout is not None:
        return f"TimeoutError: no answer within {timeout:g} s"
    message = str(error).splitlines()[0] if str(error) else ""
    in_pipeline = _PIPELINE_ERROR.match(message)
    if in_pipeline:
        reason = in_pipeline.group("reason")
        with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = ast.literal_eval(reason)  # redis-py shows the original args tuple
            if isinstance(parsed, tuple) and parsed and isinstance(parsed[0], str):
                reason = parsed[0]
        message = f"{in_pipeline.group('command')}: {reason}"
    message = message[:300]
    for secret in hidden:
        if secret and secret in message:
            if len(secret) < 4:  # masking it would mask ordinary text: say nothing
                message = "(message withheld)"
                break
            message = message.replace(secret, "***")
    kind = type(error).__name__
    return f"{kind}: {message}" if message else kind
