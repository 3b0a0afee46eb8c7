"""Retry and refresh policies: when to retry a token request and when to refresh a token."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import ConfigurationError

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
    """Upper bound of one token request: waiting for a worker thread, tenant discovery, every
    attempt and every wait between attempts."""
    attempt_timeout: float = 10.0
    """Upper bound of one HTTP attempt (connect, send and read)."""
    max_retry_after: float = 30.0
    """A longer ``Retry-After`` ends the request at once (the key then backs off)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or not 1 <= self.max_attempts <= 100:
            raise ConfigurationError("RetryPolicy.max_attempts must be an int from 1 to 100")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not _number(value) or not 0 <= value < math.inf:
                raise ConfigurationError(f"RetryPolicy.{name} must be a finite number >= 0")
        for name in ("total_timeout", "attempt_timeout"):
            value = getattr(self, name)
            if not _number(value) or not 0 < value < math.inf:
                raise ConfigurationError(f"RetryPolicy.{name} must be a finite number > 0")

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** min(max(0, attempt - 1), 32)))
        jitter: float = random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
        return ceiling / 2 + jitter


@dataclass(frozen=True)
class RefreshPolicy:
    """When a cached value is refreshed, how a failing key backs off, how often it is renewed.

    A token's lifetime is cut into three windows (all measured on the monotonic clock)::

        issued      window opens     refresh starts        usable_until       expires
        |-- fresh ----|-- (jitter) -----|-- refresh-ahead ----|-- must refresh --|

    * The refresh-ahead window opens at the server's ``refresh_in``, or else after
      ``refresh_fraction`` of the lifetime, and closes ``expiry_margin`` seconds before expiry
      (at most a quarter of the lifetime, so that a short-lived token is still cached).
    * Each token's background refresh starts at a point drawn uniformly over that window, except
      its last ``reserve`` seconds (at most half the window): replicas that got their tokens at
      the same moment spread their refreshes over the whole window, and every one keeps at
      least the reserve to retry through an identity-provider outage while serving the token.
    * In the must-refresh window callers wait for the one request, and share its error.

    After a failed request a key makes no new request for ``failure_backoff`` seconds, doubling
    with each further failure; a server's ``Retry-After`` lengthens the wait; one setting,
    ``max_failure_backoff``, caps both. A token a resource rejected is renewed at most once per
    ``renewal_interval`` seconds per key (and claims challenges at most once per interval per
    scope): an API that rejects every token cannot spend the app's token budget.
    """

    refresh_fraction: float = 0.5
    """Share of the lifetime after which the refresh-ahead window opens (without refresh_in)."""
    expiry_margin: float = 60.0
    """Seconds before expiry when callers start to wait for a new token."""
    reserve: float = 300.0
    """The end of the refresh-ahead window kept free of refresh starts (at most half of it)."""
    failure_backoff: float = 1.0
    """The wait after a first failure; doubles with each further one."""
    max_failure_backoff: float = 60.0
    """Upper bound of every back-off, a server's ``Retry-After`` included."""
    renewal_interval: float = 30.0
    """At most one renewal of a rejected token per key in this many seconds."""

    def __post_init__(self) -> None:
        fraction = self.refresh_fraction
        if not _number(fraction) or not 0 < fraction <= 1:
            raise ConfigurationError("RefreshPolicy.refresh_fraction must be a number in (0, 1]")
        for name in (
            "expiry_margin",
            "reserve",
            "failure_backoff",
            "max_failure_backoff",
            "renewal_interval",
        ):
            value = getattr(self, name)
            if not _number(value) or not 0 <= value < math.inf:
                raise ConfigurationError(f"RefreshPolicy.{name} must be a finite number >= 0")

    def windows(self, lifetime: float, refresh_in: float | None = None) -> tuple[float, float]:
        """``(refresh_after, usable_for)``: seconds after issue when the background refresh
        starts and when callers must wait, for a token valid ``lifetime`` seconds."""
        usable = lifetime - self.margin_for(lifetime)
        if refresh_in is not None and refresh_in > 0:
            opens = refresh_in
        else:
            opens = lifetime * self.refresh_fraction
        opens = min(opens, usable)
        window = usable - opens
        spread = window - min(self.reserve, window / 2)
        jitter: float = random.uniform(0, spread)  # noqa: S311 - jitter, not crypto
        return opens + jitter, usable

    def margin_for(self, lifetime: float) -> float:
        """The must-refresh window of a token of this lifetime."""
        return min(self.expiry_margin, lifetime / 4)

    def failure_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds a key waits after its ``failures``-th failure in a row (jittered, capped)."""
        exponent = min(max(0, failures - 1), 32)
        delay = min(self.max_failure_backoff, self.failure_backoff * (2.0**exponent))
        delay *= random.uniform(0.8, 1.0)  # noqa: S311
        if retry_after is not None and retry_after == retry_after:  # not NaN
            delay = max(delay, retry_after)
        return min(delay, self.max_failure_backoff)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP date (RFC 9110 section 10.2.3).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return _finite(float(lowered[name]) / 1000)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return _finite(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return _finite(when.timestamp() - (time.time() if now is None else now))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(seconds: float) -> float | None:
    """Non-negative seconds, or None for NaN; an absurd value is capped by the back-off."""
    if seconds != seconds:
        return None
    return min(max(0.0, seconds), 86400.0 * 365)
