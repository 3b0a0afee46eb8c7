"""The provider's in-memory token cache: one entry per key (scope, tenant, claims).

The key of the common case (default tenant, no claims) is the scope string
itself, so a warm lookup is a single ``dict.get``. Entries for claims challenges
are kept in a small LRU: each CAE challenge carries new claims, and a long-lived
daemon must not keep one entry per challenge forever.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from ._errors import AioEntraError
from ._policy import RefreshPolicy
from ._token import AccessToken

__all__ = ["CacheEntry", "TokenCache"]

MAX_CLAIMS_ENTRIES = 64


class CacheEntry:
    """Everything the provider knows about one key."""

    __slots__ = (
        "blocked_until",
        "claims",
        "failures",
        "generation",
        "inflight",
        "last_error",
        "refresh_at",
        "scope",
        "tenant",
        "token",
        "usable_until",
    )

    def __init__(self, scope: str, tenant: str | None, claims: str | None) -> None:
        self.scope = scope
        self.tenant = tenant
        self.claims = claims
        self.token: AccessToken | None = None
        # 0 until a token is stored: a future ``refresh_at`` implies a token.
        self.refresh_at = 0.0
        self.usable_until = 0.0
        self.generation = 0
        self.inflight: asyncio.Task[AccessToken] | None = None
        self.failures = 0
        self.blocked_until = 0.0
        self.last_error: AioEntraError | None = None

    def store(self, token: AccessToken, usable_until: float) -> None:
        self.token = token
        self.refresh_at = token.refresh_on
        self.usable_until = usable_until
        self.generation += 1

    def usable(self, now: float) -> bool:
        return self.token is not None and now < self.usable_until


class TokenCache:
    """Entries by key, with the claims entries bounded."""

    def __init__(self, policy: RefreshPolicy) -> None:
        self._policy = policy
        self.entries: dict[Any, CacheEntry] = {}
        self._claims_keys: OrderedDict[Any, None] = OrderedDict()

    @staticmethod
    def key(scope: str, tenant: str | None, claims: str | None) -> Any:
        return scope if claims is None and tenant is None else (scope, tenant, claims)

    def entry(self, scope: str, tenant: str | None, claims: str | None) -> CacheEntry:
        key = self.key(scope, tenant, claims)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = CacheEntry(scope, tenant, claims)
            if claims is not None:
                self._remember_claims_key(key)
        elif claims is not None:
            self._claims_keys.move_to_end(key)
        return entry

    def _remember_claims_key(self, key: Any) -> None:
        self._claims_keys[key] = None
        while len(self._claims_keys) > MAX_CLAIMS_ENTRIES:
            oldest = next(iter(self._claims_keys))
            if self.entries[oldest].inflight is not None:
                break  # in use: keep it (and the rest) for now
            del self._claims_keys[oldest]
            del self.entries[oldest]

    def store(
        self,
        entry: CacheEntry,
        *,
        access_token: str,
        token_type: str,
        issued_at: float,
        expires_in: float,
        refresh_in: float | None,
        generation: int,
    ) -> AccessToken:
        """Store a token for ``entry``; a claims token also replaces the plain one.

        ``generation`` is the entry's generation when the request started: if a newer
        token was stored meanwhile (a claims answer overtaking a refresh), it stays.
        """
        policy = self._policy
        token = AccessToken(
            token=access_token,
            expires_on=issued_at + expires_in,
            refresh_on=policy.refresh_at(issued_at, expires_in, refresh_in),
            scope=entry.scope,
            token_type=token_type,
        )
        usable_until = issued_at + expires_in - policy.margin_for(expires_in)
        if entry.generation == generation:
            entry.store(token, usable_until)
        if entry.claims is not None:
            # The resource refused the plain token with this challenge: the claims token
            # supersedes it.
            plain = self.entries.get(self.key(entry.scope, entry.tenant, None))
            if plain is not None:
                plain.store(token, usable_until)
        return token

    def clear(self) -> None:
        self.entries.clear()
        self._claims_keys.clear()
