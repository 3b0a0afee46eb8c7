"""The access-token value handed to callers, and the validation of a token response."""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ._errors import IdentityProviderUnavailableError
from ._flight import FetchReason

__all__ = [
    "MAX_LIFETIME",
    "AccessToken",
    "ServedFrom",
    "TokenMetadata",
    "TokenResponse",
    "parse_token_response",
]


class ServedFrom(enum.Enum):
    """Where the token a call returned came from."""

    MEMORY = "memory"
    """This process's cache: no request was made for the call."""
    SHARED_CACHE = "shared cache"
    """The shared cache (``cache=``, e.g. Redis): another process had fetched it."""
    NETWORK = "network"
    """The identity provider (or managed-identity endpoint), for this call."""


@dataclass(frozen=True)
class TokenMetadata:
    """How a token was obtained: why, from where, when and how long it took.

    A call that starts or joins a fetch gets ``source`` ``NETWORK`` (or ``SHARED_CACHE``);
    later calls answered from memory get the same token with ``source`` ``MEMORY``. ``reason``,
    ``fetched_at`` and ``duration`` always describe the fetch that produced the token.
    """

    source: ServedFrom
    reason: FetchReason
    """Why the token was fetched (cold, expired, refresh-ahead, forced, claims, renewal)."""
    fetched_at: float
    """When the fetch started (Unix time)."""
    duration: float
    """Seconds the fetch took, retries and the shared cache included."""

    def served_from(self, source: ServedFrom) -> TokenMetadata:
        """The same metadata with another ``source``."""
        return TokenMetadata(source, self.reason, self.fetched_at, self.duration)


@dataclass(frozen=True)
class AccessToken:
    """An app-only access token and its timing.

    ``expires_on`` and ``refresh_on`` are Unix timestamps (seconds). The token
    value never appears in ``repr()`` or ``str()``: only use it in the
    ``Authorization`` header of requests to the resource it was issued for.

    ``metadata`` says why the token was fetched and where this call got it from; it is
    ``None`` for a token made outside aioentra's token sources, and it takes no part in
    comparisons (the token from the network and the same token from memory are equal).
    """

    token: str = field(repr=False)
    expires_on: float
    refresh_on: float
    scope: str
    token_type: str = "Bearer"
    metadata: TokenMetadata | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        meta = self.metadata
        how = (
            "" if meta is None else f", source={meta.source.value!r}, reason={meta.reason.value!r}"
        )
        return (
            f"AccessToken(scope={self.scope!r}, token_type={self.token_type!r}, "
            f"expires_on={self.expires_on:.0f}, refresh_on={self.refresh_on:.0f}{how}, token=***)"
        )

    __str__ = __repr__

    @cached_property
    def authorization(self) -> str:
        """The ``Authorization`` header value: ``"Bearer <token>"``.

        Made once per token object (a warm token is one object for every request that
        sends it): a 1-2 KB string is not copied per request.
        """
        return f"{self.token_type} {self.token}"

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return self.expires_on - (time.time() if now is None else now)


MAX_LIFETIME = 86400.0
"""Longest lifetime a token is cached for (24 h); a longer ``expires_in`` is clamped to it."""
MIN_LIFETIME = 1.0
"""Shortest ``expires_in`` accepted: a token that expires sooner is of no use to anyone."""
MAX_TOKEN_LENGTH = 32 * 1024
"""Longest ``access_token`` accepted (Entra's are a few KB; servers refuse headers far smaller)."""


@dataclass(frozen=True)
class TokenResponse:
    """A validated successful token response (RFC 6749 section 5.1)."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_in: float | None = None
    token_type: str = "Bearer"
    source: ServedFrom = ServedFrom.NETWORK
    """Where the answer came from: the network, or another process through the shared cache."""


def parse_token_response(body: Mapping[str, Any]) -> TokenResponse:
    """Validate a successful token response before anything caches or sends it.

    * ``access_token``: a non-empty string of visible ASCII (no white space, no control
      character), since it goes into an ``Authorization`` header as it is, of at most
      :data:`MAX_TOKEN_LENGTH` characters;
    * ``token_type``: ``Bearer``, in any case (a ``pop`` token is not a bearer token);
    * ``expires_in``: a finite number of seconds of at least :data:`MIN_LIFETIME` (a JSON number
      or a decimal string, as v1 endpoints send), clamped to :data:`MAX_LIFETIME`;
    * ``refresh_in``, when present: the same rule.

    Raises:
        IdentityProviderUnavailableError: retryable; names the field, never its value.
    """
    token = body.get("access_token")
    if not isinstance(token, str) or not token or not _VISIBLE_ASCII.fullmatch(token):
        raise _malformed("access_token", "is not a non-empty string of visible ASCII characters")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("access_token", f"is longer than {MAX_TOKEN_LENGTH} characters")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise _malformed("token_type", "is not 'Bearer'")
    expires_in = _seconds(body.get("expires_in"), "expires_in")
    if expires_in is None:
        raise _malformed("expires_in", "is missing")
    if expires_in < MIN_LIFETIME:
        raise _malformed("expires_in", f"is shorter than {MIN_LIFETIME:g}s")
    refresh_in = _seconds(body.get("refresh_in"), "refresh_in")
    return TokenResponse(
        access_token=token,
        expires_in=min(expires_in, MAX_LIFETIME),
        refresh_in=None if refresh_in is None else min(refresh_in, MAX_LIFETIME),
    )


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _malformed(name, "is not a number of seconds")
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        raise _malformed(name, "is not a number of seconds") from None
    if not 0 < seconds < math.inf:
        raise _malformed(name, "is not a finite number of seconds greater than 0")
    return seconds


def _malformed(name: str, problem: str) -> IdentityProviderUnavailableError:
    return IdentityProviderUnavailableError(
        f"the token response is malformed: {name} {problem}",
        hint="the identity provider (or a proxy in front of it) sent a broken answer; the "
        "request is retried and nothing from it is cached.",
        status=200,
    )
