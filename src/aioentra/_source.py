"""What every token source of the SDK shares: the warm path, the cell, the lifecycle.

:class:`~aioentra.TokenProvider` (client credentials) and
:class:`~aioentra.ManagedIdentityProvider` differ only in how one token is fetched and in who
they are; everything around a fetch is here, once:

* **Warm hits are O(1)**: a dict lookup and a monotonic clock read on the event loop, no
  thread hop and no lock.
* **Everything else is the cell's** (:mod:`aioentra._flight`): one request in flight per key
  (scope, tenant, claims), refresh-ahead with the current token served meanwhile, callers
  waiting together past the usable window, per-key back-off, the renewal limit.
* **One fetch** is bounded by ``RetryPolicy.total_timeout``: starting the source, opening the
  session, and the subclass's ``_acquire``.
* **Lifecycle**: a source is bound to the event loop it first runs on; :meth:`close` ends every
  task, thread and session it started.
* **Reporting**: every fetch that ends is logged (INFO with why, from where, the lifetime and
  the duration; WARNING with the codes and what happens next), counted per key for
  :meth:`stats`, and handed to the source's telemetry (:mod:`aioentra._telemetry`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _reporting as reporting
from ._authority import validate_scope
from ._errors import (
    AioEntraError,
    ConfigurationError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    InvalidScopeError,
    ProviderClosedError,
)
from ._flight import Clock, Fetched, FetchReason, Flight, SystemClock
from ._policy import RefreshPolicy, RetryPolicy
from ._recursion import ACQUIRING
from ._stats import KeyRecord, KeyStats, TokenStats, error_code
from ._telemetry import NO_TELEMETRY, FetchEvent, Guarded, Telemetry
from ._tls import checked_session
from ._token import AccessToken, ServedFrom, TokenMetadata, TokenResponse
from ._transport import LoopTransport
from ._workers import WorkerPool

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

    from ._azure import AzureCredential

__all__ = ["MAX_CLAIMS_LENGTH", "TokenSourceBase"]

logger = logging.getLogger("aioentra.provider")
T = TypeVar("T")
_monotonic = time.monotonic
_NOTHING: dict[Any, Any] = {}
"""The warm path's view once the source's loop has shut down (never written to)."""

MAX_CLAIMS_ENTRIES = 64
"""Tokens kept for claims challenges: each CAE challenge carries new claims, and a long-lived
daemon must not keep one entry per challenge forever."""

MAX_CLAIMS_LENGTH = 16 * 1024
"""Longest claims JSON accepted (real CAE challenges carry a few hundred bytes)."""

Key = Hashable
"""A scope (default tenant, no claims: the warm path's key) or ``(scope, tenant, claims)``."""


class TokenSourceBase:
    """The shared machinery of the SDK's token sources; subclasses say how to fetch a token.

    A subclass calls :meth:`_setup` from its ``__init__`` and implements :meth:`_acquire`; it
    may override :meth:`_tenant` (which tenants a call may name), :meth:`_start` and
    :meth:`_close_owned` (its own lifecycle), :meth:`_describe` (who it is, for logs).
    """

    # Slots: attribute loads on the warm path stay the fastest kind (and a typo fails loudly).
    __slots__ = (
        "__weakref__",  # telemetry keeps sources in a WeakSet
        "_ca_file",
        "_claims_keys",
        "_clock",
        "_closed",
        "_closing",
        "_flight",
        "_guard",
        "_hits",
        "_lookup",
        "_loop",
        "_loop_alive",
        "_max_workers",
        "_owns_session",
        "_records",
        "_refresh",
        "_retry",
        "_session",
        "_session_ready",
        "_ssl_context",
        "_started",
        "_telemetry",
        "_transport",
        "_trust_env",
        "_valid_scopes",
        "_workers",
    )

    def __new__(
        cls,
        *args: Any,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        **kwargs: Any,
    ) -> Any:
        # An injected clock or telemetry gets a subclass whose warm path reads the clock and
        # counts memory hits. The default warm path reads time.monotonic as a module global
        # (about 40 ns cheaper than an attribute's) and counts nothing.
        plain = clock is None and telemetry is None
        return super().__new__(cls if plain else _instrumented(cls))

    def _setup(
        self,
        *,
        retry: RetryPolicy | None,
        refresh: RefreshPolicy | None,
        clock: Clock | None,
        ca_file: str | None,
        ssl_context: ssl.SSLContext | None,
        session: aiohttp.ClientSession | None,
        trust_env: bool,
        max_workers: int,
        worker_name: str,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigurationError("max_workers must be an int of at least 1")
        for name, value, kind in (
            ("retry", retry, RetryPolicy),
            ("refresh", refresh, RefreshPolicy),
        ):
            if value is not None and not isinstance(value, kind):
                raise ConfigurationError(f"{name} must be a {kind.__name__}")
        if clock is not None and not (
            callable(getattr(clock, "monotonic", None)) and callable(getattr(clock, "time", None))
        ):
            raise ConfigurationError("clock must have monotonic() and time() methods")
        if telemetry is not None and not isinstance(telemetry, Telemetry):
            raise ConfigurationError(
                "telemetry must be a aioentra Telemetry",
                hint="pass aioentra.otel.OpenTelemetry(), or a subclass of aioentra.Telemetry.",
            )
        self._retry = retry or RetryPolicy()
        self._refresh = refresh or RefreshPolicy()
        self._clock: Clock = clock or SystemClock()
        self._max_workers = max_workers
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._trust_env = trust_env
        self._session = checked_session(session)
        self._owns_session = session is None
        self._workers = WorkerPool(max_workers, name=worker_name)
        self._transport: LoopTransport | None = None
        self._flight: Flight[Key, AccessToken] = Flight(
            self._fetch,
            policy=self._refresh,
            clock=self._clock,
            observer=_Observer(self),
            same=_same_token,
            closed_error=lambda: ProviderClosedError(f"the {type(self).__name__} was closed"),
        )
        self._lookup = self._flight.slots.get  # the warm path's dict lookup, pre-bound
        self._claims_keys: OrderedDict[Key, None] = OrderedDict()
        self._records: dict[Key, KeyRecord] = {}
        self._hits = 0
        self._telemetry = Guarded(telemetry or NO_TELEMETRY)
        self._valid_scopes: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_alive = False
        self._guard: AsyncGenerator[None, None] | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._session_ready: asyncio.Future[aiohttp.ClientSession] | None = None
        self._telemetry.call("attach", self)

    # -- what subclasses provide ------------------------------------------------------------

    async def _acquire(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        """One token request (with its retries), to end by ``deadline`` (loop time)."""
        raise NotImplementedError

    def _tenant(self, tenant_id: str | None) -> str | None:
        """The tenant part of a key: ``None`` for the source's own."""
        if tenant_id is not None:
            raise ConfigurationError(f"{type(self).__name__} takes no tenant_id")
        return None

    async def _start(self) -> None:
        """Load what the source needs before its first request."""

    async def _close_owned(self) -> None:
        """Close what the source owns besides the shared machinery."""

    def _describe(self) -> tuple[str, str]:
        """``(client id, tenant)`` for log lines."""
        return ("-", "-")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A get_token of its own (an app's wrapper that counts or logs its callers) must see
        # every call: the peek, which reads the cache itself, would go around it.
        if "get_token" in cls.__dict__ and "peek_token" not in cls.__dict__:
            setattr(cls, "peek_token", _no_peek)  # noqa: B010  # mypy: no assigning a method

    # -- public API ----------------------------------------------------------------------------

    async def get_token(
        self,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        """Return a valid token for ``scope`` (one ``{resource}/.default``).

        ``claims`` answers a claims challenge (CAE); the token is then cached for those claims
        and also replaces the plain token for ``scope``. A new claims challenge for a scope is
        answered at most once per ``RefreshPolicy.renewal_interval``; within it the newest
        token is returned. ``force_refresh`` skips the cache (joining a request already in
        flight).
        """
        # The warm path: one dict lookup and one clock read. (Once the source's loop has shut
        # down, _lookup finds nothing, so a source carried into another loop takes the slow
        # path, which refuses it: see _bind.)
        try:
            slot = self._lookup(scope)
        except TypeError:
            slot = None  # not hashable: the slow path says what is wrong
        if (
            slot is not None
            and _monotonic() < slot.fresh_until  # a module global: the cheapest call there is
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            return slot.value
        return await self._get_token(scope, claims, tenant_id, force_refresh, None)

    def peek_token(self, scope: str) -> AccessToken | None:
        """The token ``get_token(scope)`` would return without waiting, or ``None``.

        For hot paths that would rather not make a coroutine per call (the aiohttp middleware
        and the httpx auth use it): a dict lookup and a clock read, no lock, no I/O, nothing
        raised. A token in its fresh window is returned as ``get_token`` returns it. In its
        refresh-ahead window it is returned too, and the one background refresh is started
        just as ``get_token`` starts it (not while one is in flight or the key backs off).
        Hits count in ``stats().memory_hits`` as ``get_token``'s do.

        ``None`` means "await ``get_token(scope)``": nothing cached for the scope yet, the
        token past its usable window, the source closed or bound to another event loop. Only
        the plain token of the source's own tenant is peeked (no claims, no ``tenant_id``).
        In a subclass with a ``get_token`` of its own, ``peek_token`` always returns ``None``,
        so that every caller goes through that ``get_token``.
        """
        try:
            slot = self._lookup(scope)
        except TypeError:
            return None  # not hashable: get_token says what is wrong
        if slot is None:
            return None
        if _monotonic() < slot.fresh_until:
            return slot.value
        return self._peek_refreshing(scope)

    def _peek_refreshing(self, scope: str) -> AccessToken | None:
        """:meth:`peek_token` past the fresh window: what ``_get_token`` answers without
        awaiting (the usable token, with the refresh-ahead started), checked as it checks."""
        if self._closed or not self._loop_alive or scope not in self._valid_scopes:
            return None
        try:
            if asyncio.get_running_loop() is not self._loop:
                return None
        except RuntimeError:  # no running loop: the refresh needs one
            return None
        return self._flight.get_nowait(scope)

    async def renew_token(
        self, scope: str, *, rejected: AccessToken, tenant_id: str | None = None
    ) -> AccessToken:
        """Return a token other than ``rejected`` (which a resource refused with a 401).

        If the cache already holds a newer token it is returned; otherwise one request is
        made, shared by every caller that reports the same rejected token. Renewals are
        limited to one per ``RefreshPolicy.renewal_interval`` per key: within it, the current
        token is returned. While the key backs off after a failure, the failure is raised.
        """
        if not isinstance(rejected, AccessToken):
            raise ConfigurationError("renew_token(rejected=) takes the AccessToken that failed")
        return await self._get_token(scope, None, tenant_id, False, rejected)

    async def close(self) -> None:
        """Stop background refreshes, worker threads, the owned HTTP session and what the
        source owns.

        Safe to call more than once and to cancel: the shutdown runs to its end in a task of
        its own, which every call waits for.
        """
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def __aenter__(self: T) -> T:
        source = cast(TokenSourceBase, self)
        await source._check_open()
        deadline = asyncio.get_running_loop().time() + source._retry.total_timeout
        try:
            await source._within(deadline, source._ensure_started(), "starting the credential")
        except BaseException:
            # No __aexit__ follows a failed __aenter__, and the caller holds no reference to
            # close: close here, so nothing the start opened is left behind.
            await source.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.close()

    def stats(self) -> TokenStats:
        """A snapshot of every key the source holds: expiry, requests, failures, last error.

        >>> entry = provider.stats().key("api://my-api/.default")  # doctest: +SKIP
        >>> entry.requests, entry.failures, entry.last_error_code  # doctest: +SKIP
        (3, 1, 'invalid_client (AADSTS7000215)')

        Cheap (no I/O, no lock) and safe to call from any thread, e.g. a metrics exporter's.
        """
        client, own_tenant = self._describe()
        clock = self._clock
        now = clock.monotonic()
        keys = []
        for key, slot in list(self._flight.slots.items()):
            scope, tenant, claims = _unkey(key)
            record = self._records.get(key) or _NO_RECORD
            held: AccessToken | None = slot.value if slot.generation else None
            backs_off = slot.error is not None and now < slot.retry_at
            keys.append(
                KeyStats(
                    scope=scope,
                    tenant_id=tenant or own_tenant,
                    claims=claims is not None,
                    expires_on=None if held is None else held.expires_on,
                    refresh_on=None if held is None else held.refresh_on,
                    in_flight=slot.task is not None,
                    requests=record.requests,
                    shared_cache_hits=record.shared,
                    failures=record.failures,
                    consecutive_failures=slot.failures,
                    retry_in=slot.retry_at - now if backs_off else None,
                    last_reason=record.reason,
                    last_source=record.source,
                    last_fetched_at=record.fetched_at,
                    last_error_code=record.error_code,
                    last_correlation_id=record.correlation_id,
                )
            )
        return TokenStats(
            client_id=client,
            tenant_id=own_tenant,
            keys=tuple(keys),
            memory_hits=(
                self._hits + self._flight.hits if type(self) in _INSTRUMENTED.values() else None
            ),
        )

    def as_azure_credential(self) -> AzureCredential:
        """An azure-core ``AsyncTokenCredential`` view, for any async Azure SDK client."""
        from ._azure import AzureCredential

        return AzureCredential(self)

    # -- lifecycle ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._transport is not None:
            self._transport.cancel_pending()  # releases worker threads waiting on the loop
        await self._flight.close()
        left = await self._workers.close()
        if left:
            logger.warning(
                "%d aioentra worker thread(s) still busy in a credential call at close(); "
                "they end when that call returns",
                left,
            )
        if self._started is not None and not self._started.done():
            self._started.cancel()
        try:
            await self._close_owned()
        except Exception as exc:  # a credential's own close failing must not stop ours
            logger.warning("closing what %r owns failed: %s", self, type(exc).__name__)
        self._claims_keys.clear()
        self._telemetry.call("detach", self)
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError(f"this {type(self).__name__} is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            await self._bind()
        elif self._loop is not loop or not self._loop_alive:
            raise ProviderClosedError(
                f"this {type(self).__name__} belongs to another event loop",
                hint="create one provider per event loop (asyncio.run() makes a new loop).",
            )

    async def _bind(self) -> None:
        """Tie the source to this loop, and its warm path to the loop's life.

        The warm path makes no loop check of its own (``asyncio.get_running_loop()`` would
        cost it about 190 ns on CPython 3.11, a thread-id compare about 35 ns). Instead, when
        the loop shuts down its async generators (``asyncio.run`` does), the guard below
        empties the warm path's view, so a source carried into a later loop takes the slow
        path at once, which refuses it. Used from a loop in another thread while its own loop
        runs, a source hands out cached tokens (a read of immutable values) and refuses
        everything else.
        """
        self._loop_alive = True

        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                self._loop_alive = False
                self._lookup = _NOTHING.get

        self._guard = guard()
        await self._guard.__anext__()

    async def _ensure_started(self) -> None:
        """Start the source once; a failed start is tried again by the next request."""
        started = self._started
        if started is None:
            started = self._started = asyncio.ensure_future(self._run_start())
        try:
            await asyncio.shield(started)
        except Exception:
            if self._started is started:
                self._started = None
            raise

    async def _run_start(self) -> None:
        try:
            await self._start()
        except AioEntraError:
            raise
        except Exception as exc:
            raise CredentialUnavailableError(
                f"starting {self!r} failed: {type(exc).__name__}",
                hint="the credential could not load its material; see its documentation.",
            ) from None

    # -- the slow path -------------------------------------------------------------------------

    async def _get_token(
        self,
        scope: str,
        claims: str | None,
        tenant_id: str | None,
        force: bool,
        rejected: AccessToken | None,
    ) -> AccessToken:
        await self._check_open()
        self._check_scope(scope)
        if claims is not None and (
            not isinstance(claims, str) or not claims.strip() or len(claims) > MAX_CLAIMS_LENGTH
        ):
            raise ConfigurationError(
                "claims must be a non-empty JSON string of at most "
                f"{MAX_CLAIMS_LENGTH} characters, or None"
            )
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise ConfigurationError("tenant_id must be a string, or None")
        tenant = self._tenant(tenant_id)
        plain = _key(scope, tenant, None)
        if claims is not None:
            key = _key(scope, tenant, claims)
            self._remember_claims(key)
            return await self._flight.renew(
                key, budget=("claims", plain), fallback=plain, reason=FetchReason.CLAIMS
            )
        if rejected is not None:
            return await self._flight.renew(plain, rejected)
        return await self._flight.get(plain, force=force)

    def _check_scope(self, scope: object) -> None:
        if isinstance(scope, str) and scope in self._valid_scopes:
            return
        if not isinstance(scope, str):
            raise InvalidScopeError(
                f"the scope must be a string, got {type(scope).__name__}",
                hint="pass one '{resource}/.default' string.",
            )
        if validate_scope(scope) != scope:
            raise InvalidScopeError(
                f"scope {scope!r} has surrounding white space", hint="strip it."
            )
        self._valid_scopes.add(scope)

    def _remember_claims(self, key: Key) -> None:
        keys = self._claims_keys
        if key in keys:
            keys.move_to_end(key)
            return
        keys[key] = None
        while len(keys) > MAX_CLAIMS_ENTRIES:
            oldest = next(iter(keys))
            if not self._flight.discard(oldest):
                break  # in use: keep it (and the rest) for now
            del keys[oldest]
            self._records.pop(oldest, None)

    # -- one fetch -------------------------------------------------------------------------------

    async def _fetch(self, key: Key, reason: FetchReason) -> Fetched[AccessToken]:
        scope, tenant, claims = _unkey(key)
        client, own_tenant = self._describe()
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = KeyRecord()
        clock = self._clock
        started = record.started = clock.monotonic()
        wall = clock.time()
        # This task is this source's fetch: a request its credential sends through a client
        # authenticated by this same source goes out without a token rather than waiting for
        # this fetch (whoever the first caller was). The task's own context: reset not needed.
        acquiring = ACQUIRING.get()
        if self not in acquiring:
            ACQUIRING.set((*acquiring, self))
        with self._telemetry.fetch_span(
            scope=scope, tenant_id=tenant or own_tenant, client_id=client, reason=reason
        ) as span:
            try:
                deadline = asyncio.get_running_loop().time() + self._retry.total_timeout
                # Started and with a session (every fetch but the first): no wait to bound, and
                # no task and timer to make for it, which a busy loop would run late.
                if not self._ready():
                    await self._within(deadline, self._ensure_started(), "starting the credential")
                    await self._within(deadline, self._get_session(), "opening the session")
                response = await self._acquire(scope, claims, tenant, deadline)
            except Exception as error:
                span.failed(error_code(error))
                raise
            span.succeeded(response.source, response.expires_in)
        fetched = self._fetched(scope, response, reason, started, wall)
        record.succeeded(reason, response.source, wall)
        _report_fetched(self, key, fetched.value, response)
        if claims is not None:
            # The resource refused the plain token with this challenge: the claims token
            # supersedes it.
            self._flight.put(_key(scope, tenant, None), fetched)
        return fetched

    def _fetched(
        self,
        scope: str,
        response: TokenResponse,
        reason: FetchReason,
        started: float,
        wall: float,
    ) -> Fetched[AccessToken]:
        refresh_after, usable_for = self._refresh.windows(response.expires_in, response.refresh_in)
        metadata = TokenMetadata(response.source, reason, wall, self._clock.monotonic() - started)
        token = AccessToken(
            token=response.access_token,
            expires_on=wall + response.expires_in,
            refresh_on=wall + refresh_after,
            scope=scope,
            token_type="Bearer",
            metadata=metadata,
        )
        # The fetch's own waiters get the token as it came; later callers the same token,
        # marked as answered from memory (made once here, so the warm path does nothing).
        cached = dataclasses.replace(token, metadata=metadata.served_from(ServedFrom.MEMORY))
        return Fetched(token, started + refresh_after, started + usable_for, cached)

    def _ready(self) -> bool:
        """Whether the source has started (successfully) and has its session."""
        started = self._started
        return (
            started is not None
            and started.done()
            and not started.cancelled()
            and started.exception() is None
            and self._session is not None
            and not self._session.closed
        )

    async def _within(self, deadline: float, work: Awaitable[T], what: str) -> T:
        """``work`` by the request's deadline; shielded, since others may share it."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(asyncio.shield(work), max(0.0, remaining))
        except asyncio.TimeoutError:
            raise IdentityProviderUnavailableError(
                "the token request did not finish within RetryPolicy.total_timeout "
                f"({self._retry.total_timeout:g}s)",
                hint=f"{what} took too long.",
            ) from None

    async def _get_session(self) -> aiohttp.ClientSession:
        """The session for token requests, created once (its TLS context read off the loop).

        Awaited before a request is handed to a worker thread, never from one: creating it
        uses a worker thread, which a waiting worker would otherwise deadlock on.
        """
        if self._session is not None:
            return self._session
        if self._closed:
            raise ProviderClosedError(f"this {type(self).__name__} is closed; create a new one")
        if self._session_ready is None:
            self._session_ready = asyncio.ensure_future(self._create_session())
        return await asyncio.shield(self._session_ready)

    async def _create_session(self) -> aiohttp.ClientSession:
        context = self._ssl_context
        if context is None:
            # Reading the CA bundle is disk I/O: not on the event loop, and in the source's
            # own threads, which close() ends.
            try:
                context = await self._workers.run(
                    functools.partial(ssl.create_default_context, cafile=self._ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                self._session_ready = None
                raise ConfigurationError(
                    f"ca_file {self._ca_file!r} could not be loaded: {type(exc).__name__}",
                    hint="give a readable PEM file with the CA certificates to trust.",
                ) from None
        import aiohttp  # here, not at module level: importing the SDK does not load aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=self._max_workers * 2),
            trust_env=self._trust_env,
        )
        return self._session


_INSTRUMENTED: dict[type[TokenSourceBase], type[TokenSourceBase]] = {}
_NO_RECORD = KeyRecord()


def _instrumented(cls: type[TokenSourceBase]) -> type[TokenSourceBase]:
    """``cls`` with a warm path that reads the injected clock and counts memory hits, made
    once per class (for ``clock=`` and ``telemetry=``)."""
    made = _INSTRUMENTED.get(cls)
    if made is None:
        made = _INSTRUMENTED[cls] = _make_instrumented(cls)
    return made


def _make_instrumented(cls: type[TokenSourceBase]) -> type[TokenSourceBase]:
    async def get_token(
        self: TokenSourceBase,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        try:
            slot = self._lookup(scope)
        except TypeError:
            slot = None
        if (
            slot is not None
            and self._clock.monotonic() < slot.fresh_until
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            self._hits += 1
            return slot.value
        return await self._get_token(scope, claims, tenant_id, force_refresh, None)

    def peek_token(self: TokenSourceBase, scope: str) -> AccessToken | None:
        try:
            slot = self._lookup(scope)
        except TypeError:
            return None
        if slot is None:
            return None
        if self._clock.monotonic() < slot.fresh_until:
            self._hits += 1
            return slot.value
        return self._peek_refreshing(scope)  # counted by the cell, as get_token's

    get_token.__doc__ = cls.get_token.__doc__
    peek_token.__doc__ = cls.peek_token.__doc__
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    # A subclass with a get_token of its own keeps it (its hits are counted by the cell only),
    # and its peek_token, which returns None (see TokenSourceBase.__init_subclass__).
    if cls.get_token is TokenSourceBase.get_token:
        namespace["get_token"] = get_token
    if cls.peek_token is TokenSourceBase.peek_token:
        namespace["peek_token"] = peek_token
    return type(cls.__name__, (cls,), namespace)


def _no_peek(self: TokenSourceBase, scope: str) -> AccessToken | None:
    """``peek_token`` of a subclass with a ``get_token`` of its own: always "ask get_token"."""
    return None


class _Observer:
    """The cell's observer: a failed fetch, in the log, the stats and the telemetry."""

    __slots__ = ("_source",)

    def __init__(self, source: TokenSourceBase) -> None:
        self._source = source

    def fetched(self, key: Key, reason: FetchReason, seconds: float) -> None:
        return None  # reported by the fetch itself, which knows the token (_report_fetched)

    def failed(
        self, key: Key, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        source = self._source
        if source._closed:
            return  # a fetch ended by close(): nothing failed
        scope, tenant, claims = _unkey(key)
        client, own_tenant = source._describe()
        record = source._records.get(key)
        if record is None:
            record = source._records[key] = KeyRecord()
        record.failed(reason, error)
        flight = source._flight
        slot = flight.slots.get(key)
        now = source._clock.monotonic()
        duration = now - record.started
        # What the cell will do next, read off its state (see _reporting.next_action).
        serving_for = fresh_for = renewal_in = None
        if serving and slot is not None:
            serving_for = slot.usable_until - now
            fresh_for = slot.fresh_until - now if slot.fresh_until > now else None
        if reason is FetchReason.RENEWAL and serving:
            renewal_in = flight.renewal_due(key) - now
        elif reason is FetchReason.CLAIMS and not serving:
            renewal_in = flight.renewal_due(("claims", _key(scope, tenant, None))) - now
        code = error_code(error)
        reporting.failed(
            scope=scope,
            tenant_id=tenant or own_tenant,
            client_id=client,
            claims=claims is not None,
            reason=reason,
            error=error,
            code=code,
            duration=duration,
            backoff=backoff,
            serving_for=serving_for,
            fresh_for=fresh_for,
            renewal_in=renewal_in,
        )
        source._telemetry.call(
            "fetch_ended",
            FetchEvent(
                scope=scope,
                tenant_id=tenant or own_tenant,
                client_id=client,
                claims=claims is not None,
                reason=reason,
                duration=duration,
                source=None,
                expires_in=None,
                error_code=code,
                retry_in=backoff,
                serving=serving,
            ),
        )


def _report_fetched(
    source: TokenSourceBase, key: Key, token: AccessToken, response: TokenResponse
) -> None:
    scope, tenant, claims = _unkey(key)
    client, own_tenant = source._describe()
    metadata = token.metadata
    assert metadata is not None  # made by _fetched
    reporting.acquired(
        scope=scope,
        tenant_id=tenant or own_tenant,
        client_id=client,
        claims=claims is not None,
        metadata=metadata,
        lifetime=response.expires_in,
    )
    source._telemetry.call(
        "fetch_ended",
        FetchEvent(
            scope=scope,
            tenant_id=tenant or own_tenant,
            client_id=client,
            claims=claims is not None,
            reason=metadata.reason,
            duration=metadata.duration,
            source=metadata.source,
            expires_in=response.expires_in,
            error_code=None,
        ),
    )


def _key(scope: str, tenant: str | None, claims: str | None) -> Key:
    return scope if claims is None and tenant is None else (scope, tenant, claims)


def _unkey(key: Key) -> tuple[str, str | None, str | None]:
    if isinstance(key, str):
        return key, None, None
    return cast("tuple[str, str | None, str | None]", key)


def _same_token(a: AccessToken, b: AccessToken) -> bool:
    return a.token == b.token
