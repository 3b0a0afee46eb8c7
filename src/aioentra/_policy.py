"""Retry and refresh policies: when to retry a token request and when to refresh a token."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RefreshPolicy", "RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one token request: connection errors, timeouts, 408, 429 and 5xx.

    Delays grow exponentially with jitter; a server's ``Retry-After`` is honoured
    when it fits in ``total_timeout``. A ``Retry-After`` beyond ``max_retry_after``
    ends the request at once: the provider then waits that long before the key's
    next request instead of holding the callers.
    """

    max_attempts: int = 4
    """Attempts per token request, the first included."""
    base_delay: float = 0.5
    """Delay before the first retry; doubles with each further attempt."""
    max_delay: float = 8.0
    total_timeout: float = 30.0
    """Upper bound of one token request, its retries and waits included."""
    attempt_timeout: float = 10.0
    """Upper bound of one HTTP attempt (connect, send and read)."""
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.total_timeout, self.attempt_timeout) < 0:
            raise ValueError("delays and timeouts must not be negative")

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        jitter: float = random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
        return ceiling / 2 + jitter


@dataclass(frozen=True)
class RefreshPolicy:
    """When a cached token is refreshed, and how a failing key backs off.

    A token is refreshed in the background at ``refresh_in`` when the server sends
    one, otherwise after ``refresh_fraction`` of its lifetime plus up to
    ``jitter_fraction`` more (so that replicas do not refresh in step). It is
    handed out until ``expiry_margin`` seconds before it expires. After a failed
    request a key waits ``failure_backoff`` seconds, doubling up to
    ``max_failure_backoff`` (or the server's ``Retry-After``), before the next one.
    """

    refresh_fraction: float = 0.5
    jitter_fraction: float = 0.1
    expiry_margin: float = 60.0
    failure_backoff: float = 1.0
    max_failure_backoff: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.refresh_fraction <= 1:
            raise ValueError("refresh_fraction must be in (0, 1]")
        if not 0 <= self.jitter_fraction < 1:
            raise ValueError("jitter_fraction must be in [0, 1)")
        if self.expiry_margin < 0 or self.failure_backoff < 0:
            raise ValueError("expiry_margin and failure_backoff must not be negative")

    def refresh_at(self, issued_at: float, expires_in: float, refresh_in: float | None) -> float:
        """The Unix time at which a token issued at ``issued_at`` should be refreshed."""
        usable_until = issued_at + expires_in - self.margin_for(expires_in)
        if refresh_in is not None and refresh_in > 0:
            planned = issued_at + refresh_in
        else:
            jitter = random.uniform(0, self.jitter_fraction)  # noqa: S311
            planned = issued_at + expires_in * (self.refresh_fraction + jitter)
        return max(issued_at, min(planned, usable_until))

    def margin_for(self, expires_in: float) -> float:
        """The expiry margin for a token of this lifetime: at most a quarter of it, so that a
        short-lived token is still cached."""
        return min(self.expiry_margin, expires_in / 4)

    def failure_delay(self, failures: int, retry_after: float | None) -> float:
        delay = min(self.max_failure_backoff, self.failure_backoff * (2.0 ** max(0, failures - 1)))
        delay *= random.uniform(0.8, 1.0)  # noqa: S311
        if retry_after is not None:
            delay = max(delay, min(retry_after, 3600.0))
        return delay


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP date (RFC 9110 section 10.2.3).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return max(0.0, float(lowered[name]) / 1000)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
