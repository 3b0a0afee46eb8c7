"""What a token source can say about the tokens it holds: :meth:`~aioentra.TokenProvider.stats`.

Counters are kept per key (scope, tenant, claims) off the warm path: a fetch updates them when
it ends, on the event loop. Memory hits are the one figure the warm path would have to count
itself, so they are counted only by a source built with ``telemetry=`` or ``clock=`` (whose
warm path is a counting variant); otherwise :attr:`TokenStats.memory_hits` is ``None``. Answers
from memory off the warm path (``renew_token`` with a newer token, a claims call answered by
the cached claims token) are counted by the cache itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._flight import FetchReason
from ._token import ServedFrom

__all__ = ["KeyRecord", "KeyStats", "TokenStats", "error_code"]


@dataclass(frozen=True)
class KeyStats:
    """One cached token's state and history (a key is a scope, a tenant and any claims)."""

    scope: str
    tenant_id: str
    """The tenant the tokens are for (the source's own unless a call named another)."""
    claims: bool
    """Whether the key holds a token for a claims challenge."""
    expires_on: float | None
    """When the held token expires (Unix time); ``None`` if none is held."""
    refresh_on: float | None
    """When the held token is refreshed in the background (Unix time)."""
    in_flight: bool
    """Whether a fetch for the key is running."""
    requests: int
    """Fetches for the key that ended (succeeded or failed; one in flight is not counted yet):
    each is one token request (with its retries), or a read of the shared cache when one is
    configured."""
    shared_cache_hits: int
    """Fetches the shared cache answered with another process's token (no request sent)."""
    failures: int
    """Fetches that failed."""
    consecutive_failures: int
    """Failures since the last success: non-zero while the key backs off."""
    retry_in: float | None
    """Seconds until the next fetch may start while the key backs off, else ``None``."""
    last_reason: FetchReason | None
    """Why the last fetch was started."""
    last_source: ServedFrom | None
    """Where the last successful fetch got its token (network or shared cache)."""
    last_fetched_at: float | None
    """When the last successful fetch started (Unix time)."""
    last_error_code: str | None
    """The last failure's code: the server's ``error`` (``invalid_client``, ...) with its
    first AADSTS code if any, or the aioentra error class when no server answered."""
    last_correlation_id: str | None
    """The last failure's correlation id, for a support request."""


@dataclass(frozen=True)
class TokenStats:
    """A snapshot of a token source: one :class:`KeyStats` per key, and totals."""

    client_id: str
    tenant_id: str
    keys: tuple[KeyStats, ...]
    memory_hits: int | None
    """Calls answered from memory, counted only when the source has ``telemetry=``."""

    @property
    def requests(self) -> int:
        """Fetches started, over every key."""
        return sum(key.requests for key in self.keys)

    @property
    def failures(self) -> int:
        """Failed fetches, over every key."""
        return sum(key.failures for key in self.keys)

    @property
    def shared_cache_hits(self) -> int:
        """Fetches answered by the shared cache, over every key."""
        return sum(key.shared_cache_hits for key in self.keys)

    def key(self, scope: str, *, tenant_id: str | None = None) -> KeyStats | None:
        """The plain (no claims) key of ``scope`` in ``tenant_id`` (default: the source's)."""
        tenant = (tenant_id or self.tenant_id).lower()
        for entry in self.keys:
            if entry.scope == scope and not entry.claims and entry.tenant_id.lower() == tenant:
                return entry
        return None


class KeyRecord:
    """A key's counters, updated when its fetches end."""

    __slots__ = (
        "correlation_id",
        "error_code",
        "failures",
        "fetched_at",
        "reason",
        "requests",
        "shared",
        "source",
        "started",
    )

    def __init__(self) -> None:
        self.started = 0.0
        """When the fetch in flight (or the last one) started (monotonic)."""
        self.requests = 0
        self.shared = 0
        self.failures = 0
        self.reason: FetchReason | None = None
        self.source: ServedFrom | None = None
        self.fetched_at: float | None = None
        self.error_code: str | None = None
        self.correlation_id: str | None = None

    def succeeded(self, reason: FetchReason, source: ServedFrom, fetched_at: float) -> None:
        self.requests += 1
        self.reason, self.source, self.fetched_at = reason, source, fetched_at
        if source is ServedFrom.SHARED_CACHE:
            self.shared += 1

    def failed(self, reason: FetchReason, error: Exception) -> None:
        self.requests += 1
        self.failures += 1
        self.reason = reason
        self.error_code = error_code(error)
        correlation = getattr(error, "correlation_id", None)
        self.correlation_id = correlation if isinstance(correlation, str) else None


_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def error_code(error: BaseException) -> str:
    """A failure's code for logs, stats and metrics: ``invalid_client (AADSTS7000215)``,
    ``invalid_client``, a Key Vault code (``SecretNotFound``), or the error's class name when
    no server said anything. A server's code is used only when it looks like one (letters,
    digits, ``_.-``, at most 64 characters), so that a metric attribute made of it stays
    low-cardinality and a message can't pass for a code."""
    code = getattr(error, "error", None) or getattr(error, "code", None)
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        return type(error).__name__
    codes = getattr(error, "error_codes", ())
    if codes and isinstance(codes[0], int):
        return f"{code} (AADSTS{codes[0]})"
    return code
