"""The shared (L2) token cache: what is stored, how it is sealed, and the decisions around it.

Nothing here does I/O and nothing imports a Redis client: a backend (:mod:`aioentra.redis`)
moves the bytes, this module decides. A :class:`SharedCache` backend answers one question per
call: *a token for this key, from the shared store if a good one is there, else from the
caller's own token request, made by one process for all of them*.

What a backend stores is a :class:`CachedToken` (what the identity provider answered, with the
wall-clock time it arrived), sealed by a :class:`Keyring`::

    version (1 byte) | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The associated data binds the entry to its cache key, so an entry copied under another cache
key does not open. Whether a stored token may be handed out is :func:`acceptable`:

=============================================  ===============================================
stored token                                   handed out?
=============================================  ===============================================
none, or it does not open (any reason)         no: a miss (a backend logs why)
``expires_on() <= newer_than``                 no: the caller holds it, or an older one
its ``access_token`` is ``unlike``             no: the very token the caller wants replaced
``remaining(now) < min_remaining``             no: too close to expiry for this caller
otherwise                                      yes
=============================================  ===============================================

A backend that cannot reach its store backs off with :class:`Outage`; waiters for another
process's token request sleep by :func:`poll_delay` within :func:`poll_budget` polls. Both are
arithmetic on a clock the caller passes in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ._errors import ConfigurationError, raises_cleanly

if TYPE_CHECKING:
    # cryptography loads with the first Keyring: a provider without one never imports it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CachedToken",
    "Keyring",
    "Outage",
    "SharedCache",
    "Source",
    "Unreadable",
    "acceptable",
    "entry_ttl_ms",
    "poll_budget",
    "poll_delay",
]

Source = Literal["shared cache", "network"]
"""Where :meth:`SharedCache.fetch`'s token came from: another process's request, or ours."""

VERSION = 1
"""The first byte of every sealed entry; another value is a miss (a newer aioentra's format)."""
KEY_ID_BYTES = 8
NONCE_BYTES = 12
_HEADER = 1 + KEY_ID_BYTES + NONCE_BYTES
_TAG_BYTES = 16
_AAD_LABEL = b"aioentra shared token cache v1\x00"
_KEY_ID_LABEL = b"aioentra key id\x00"
_HEX_KEY = re.compile(r"^[0-9A-Fa-f]{64}$")
_KEY_HINT = (
    "use 32 random bytes, given raw or as base64 or hex text: `openssl rand -base64 32`; "
    "share the same keys with every process that shares the cache."
)


@dataclass(frozen=True)
class CachedToken:
    """What the identity provider answered, as stored: not a precomputed refresh time.

    Every process decides for itself what it accepts (:func:`acceptable`) and when it refreshes,
    from these answered values and its own clock.
    """

    access_token: str = field(repr=False)
    issued_at: float
    """Wall-clock Unix seconds when the answer arrived."""
    expires_in: float
    """Seconds, as answered."""
    refresh_in: float | None
    """Seconds, as answered (``None`` if absent)."""

    def expires_on(self) -> float:
        """Unix time the token expires."""
        return self.issued_at + self.expires_in

    def remaining(self, now: float) -> float:
        """Seconds left at Unix time ``now`` (negative once expired)."""
        return self.expires_on() - now


class SharedCache(Protocol):
    """A token store shared by processes, with one token request in flight per key."""

    async def fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[CachedToken]],
        *,
        newer_than: float = 0.0,
        min_remaining: float = 300.0,
        unlike: str | None = None,
    ) -> tuple[CachedToken, Source]:
        """A token for ``key``: a stored one if :func:`acceptable`, else ``fetch()``'s.

        ``key`` names everything the token depends on (authority, tenant, client id, scope,
        claims). ``fetch`` is the caller's own token request: its errors propagate unchanged;
        the store's errors never do (the backend falls back to ``fetch``).
        """
        ...

    async def close(self) -> None:
        """Release what the backend opened; idempotent."""
        ...


def acceptable(
    token: CachedToken,
    *,
    now: float,
    newer_than: float = 0.0,
    min_remaining: float = 300.0,
    unlike: str | None = None,
) -> bool:
    """Whether a stored token may be handed out, by the table of the module docstring.

    ``unlike`` is the token the caller holds: replicas compute a token's expiry from their own
    clocks and answer times, so only the token itself tells "the one I have" from a newer one.
    """
    return (
        token.expires_on() > newer_than
        and token.remaining(now) >= min_remaining
        and (unlike is None or token.access_token != unlike)
    )


def entry_ttl_ms(token: CachedToken, now: float) -> int | None:
    """The store's expiry for ``token`` written at Unix time ``now``: its remaining lifetime in
    whole milliseconds (rounded down: an entry never outlives its token), ``None`` if that is
    under a millisecond (nothing to write)."""
    remaining = token.remaining(now)
    if not math.isfinite(remaining) or remaining < 0.001:
        return None
    return math.floor(remaining * 1000)


# -- sealing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreadable:
    """Why a stored entry did not open (for logs: no secret in it)."""

    reason: str
    key_id: str | None = None
    """The hex key id the entry names, if it got that far."""

    def __str__(self) -> str:
        return self.reason if self.key_id is None else f"{self.reason} (key id {self.key_id})"


class Keyring:
    """AES-256-GCM sealing of cached tokens: the first key seals, every key opens.

    Args:
        keys: one key or several, each 32 bytes: raw ``bytes``, or text in base64 (standard or
            URL-safe, padding optional) or hex. Rotate by putting the new key first and keeping
            the old one until every process has the new keyring and the old entries expired.

    Each entry names the key that sealed it by a key id (8 bytes of a SHA-256 of the key, not
    the key); :attr:`key_ids` lists them, in order. Neither a key nor a token appears in a repr,
    a log line or an error.

    Raises:
        ConfigurationError: no key, or one that is not 32 bytes (the error names its position).
    """

    __slots__ = ("_ciphers", "_sealing", "key_ids")

    @raises_cleanly
    def __init__(self, keys: str | bytes | Sequence[str | bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = _parse_keys(keys)
        self._ciphers: dict[bytes, AESGCM] = {}
        for material in raw:
            self._ciphers.setdefault(_key_id(material), AESGCM(material))
        self._sealing = next(iter(self._ciphers))
        self.key_ids: tuple[str, ...] = tuple(kid.hex() for kid in self._ciphers)
        """The key ids, sealing key first."""

    def encode(self, key: str, token: CachedToken) -> bytes:
        """``token`` sealed for the cache key ``key`` with the first key."""
        plain = json.dumps(
            {
                "t": token.access_token,
                "i": token.issued_at,
                "e": token.expires_in,
                "r": token.refresh_in,
            },
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        header = bytes([VERSION]) + self._sealing
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._sealing].encrypt(nonce, plain, _aad(header, key))
        return header + nonce + sealed

    def decode(self, key: str, blob: bytes) -> CachedToken | None:
        """The token sealed in ``blob`` for ``key``; ``None`` if it does not open (any reason)."""
        opened = self.open(key, blob)
        return opened if isinstance(opened, CachedToken) else None

    def open(self, key: str, blob: object) -> CachedToken | Unreadable:
        """As :meth:`decode`, saying why an entry did not open. Never raises."""
        try:
            return self._open(key, blob)
        except Exception:  # a codec must not take its caller down; nothing above foresaw this
            return Unreadable("malformed entry")

    def _open(self, key: str, blob: object) -> CachedToken | Unreadable:
        from cryptography.exceptions import InvalidTag  # loaded with AESGCM, by __init__

        if not isinstance(blob, (bytes, bytearray, memoryview)):
            return Unreadable(f"not bytes but {type(blob).__name__}")
        data = bytes(blob)
        if len(data) < _HEADER + _TAG_BYTES:
            return Unreadable("too short to be an entry")
        if data[0] != VERSION:
            return Unreadable(f"format version {data[0]} unknown")
        kid = data[1 : 1 + KEY_ID_BYTES]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            return Unreadable("sealed with a key not in this keyring", kid.hex())
        header, nonce = data[: 1 + KEY_ID_BYTES], data[1 + KEY_ID_BYTES : _HEADER]
        try:
            plain = cipher.decrypt(nonce, data[_HEADER:], _aad(header, key))
        except InvalidTag:
            return Unreadable(
                "does not authenticate: tampered with, or stored under another cache key",
                kid.hex(),
            )
        token = _token_from(plain)
        return token if token is not None else Unreadable("authentic but not a token", kid.hex())

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self.key_ids)!r})"


def _aad(header: bytes, key: str) -> bytes:
    return _AAD_LABEL + header + key.encode("utf-8", "surrogatepass")


def _key_id(material: bytes) -> bytes:
    return hashlib.sha256(_KEY_ID_LABEL + material).digest()[:KEY_ID_BYTES]


def _parse_keys(keys: object) -> list[bytes]:
    items: list[object]
    if isinstance(keys, (str, bytes, bytearray)):
        items = [keys]
    elif isinstance(keys, Sequence):
        items = list(keys)
    else:
        raise ConfigurationError(
            f"the cache key must be bytes, text or a list of them, not {type(keys).__name__}",
            hint=_KEY_HINT,
        )
    if not items:
        raise ConfigurationError("no cache key given", hint=_KEY_HINT)
    return [_parse_key(item, position, len(items)) for position, item in enumerate(items, 1)]


def _parse_key(item: object, position: int, count: int) -> bytes:
    which = "the cache key" if count == 1 else f"cache key {position} of {count}"
    if isinstance(item, (bytes, bytearray)):
        if len(item) == 32:
            return bytes(item)
        try:  # base64 or hex text, read from a file or the environment as bytes
            return _parse_text(bytes(item).decode("ascii"), which)
        except (UnicodeDecodeError, ConfigurationError):
            raise ConfigurationError(
                f"{which} is {len(item)} bytes; it must be 32 (or their base64 or hex text)",
                hint=_KEY_HINT,
            ) from None
    if isinstance(item, str):
        return _parse_text(item, which)
    raise ConfigurationError(
        f"{which} must be bytes or text, not {type(item).__name__}", hint=_KEY_HINT
    )


def _parse_text(text: str, which: str) -> bytes:
    text = text.strip()
    if _HEX_KEY.match(text):
        return bytes.fromhex(text)
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    try:
        material = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{which} is neither base64 nor hex", hint=_KEY_HINT) from None
    if len(material) != 32:
        raise ConfigurationError(
            f"{which} is {len(material)} bytes after base64 decoding; it must be 32",
            hint=_KEY_HINT,
        )
    return material


def _token_from(plain: bytes) -> CachedToken | None:
    record = json.loads(plain)
    if not isinstance(record, dict):
        return None
    access_token = record.get("t")
    issued_at, expires_in = _number(record.get("i")), _number(record.get("e"))
    refresh_in = record.get("r")
    if not isinstance(access_token, str) or not access_token:
        return None
    if issued_at is None or expires_in is None:
        return None
    if refresh_in is not None and _number(refresh_in) is None:
        return None
    return CachedToken(access_token, issued_at, expires_in, _number(refresh_in))


def _number(value: object) -> float | None:
    """``value`` as a float if it is a finite JSON number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# -- back-off and waiting -----------------------------------------------------------------------


class Outage:
    """When a backend may call its store again, and which failures and recoveries to report.

    ==================================  ===========================  ===========================
    event                               store calls                  report
    ==================================  ===========================  ===========================
    first failure after a success       none for ``first`` seconds   ``failed()`` is true: warn
    failure once a back-off ran out     none for twice as long,      no
                                        at most ``cap`` seconds
    failure during a back-off (calls    unchanged: one outage        no
    that were already in flight)        doubles the delay once
    success after failures              as normal                    ``succeeded()`` is true
    ==================================  ===========================  ===========================

    ``now`` is on a monotonic clock the owner reads (and tests move by hand).
    """

    __slots__ = ("cap", "failures", "first", "retry_at")

    def __init__(self, *, first: float = 1.0, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0
        self.retry_at = -math.inf

    def delay(self, failures: int) -> float:
        """The back-off after the ``failures``-th failure in a row: first, doubling, capped."""
        return min(self.first * 2.0 ** min(max(failures - 1, 0), 64), self.cap)

    def allows(self, now: float) -> bool:
        """Whether the store may be called at ``now``."""
        return now >= self.retry_at

    def failed(self, now: float) -> bool:
        """Record a failed store call; true if it starts an outage (report it)."""
        if now < self.retry_at:
            return False
        self.failures += 1
        self.retry_at = now + self.delay(self.failures)
        return self.failures == 1

    def succeeded(self) -> bool:
        """Record a store call that worked; true if it ends an outage (report it)."""
        ended = self.failures > 0
        self.failures = 0
        self.retry_at = -math.inf
        return ended

    def __repr__(self) -> str:
        return f"Outage(failures={self.failures}, retry_at={self.retry_at!r})"


POLL_FIRST = 0.02
POLL_FACTOR = 1.5
POLL_CAP = 0.25
POLL_FLOOR = 0.005
"""No sleep between polls is shorter: the wait can never spin."""


def poll_delay(attempt: int, *, time_left: float, lease_left: float | None) -> float:
    """How long a waiter sleeps before its poll number ``attempt + 1``.

    ``POLL_FIRST`` growing by ``POLL_FACTOR`` to ``POLL_CAP``; no later than just after the
    holder's lease ends (``lease_left``, if known), where the next poll can take over; no later
    than the end of the wait (``time_left``); never under ``POLL_FLOOR``.
    """
    delay = min(POLL_FIRST * POLL_FACTOR ** min(max(attempt, 0), 64), POLL_CAP)
    if lease_left is not None:
        delay = min(delay, max(lease_left, 0.0) + POLL_FLOOR)
    return max(min(delay, time_left), POLL_FLOOR)


def poll_budget(wait_timeout: float) -> int:
    """The most polls one wait makes: enough for ``wait_timeout`` at the capped interval, and
    for the short sleeps around lease ends, but bounded whatever the clock does."""
    return math.ceil(wait_timeout / POLL_CAP) + 16
