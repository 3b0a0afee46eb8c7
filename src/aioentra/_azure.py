"""The provider as an azure-core ``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``.

Azure SDK clients call ``get_token_info(scope, options=...)`` (azure-core >= 1.31)
or ``get_token(*scopes, ...)``. Key Vault's challenge policy passes the tenant
from its 401 challenge and asks for CAE; the tenant must be the provider's own
or one of its ``additionally_allowed_tenants``.

**When the client asks again.** An Azure SDK client keeps the token it got in its
authentication policy and asks the credential again only when it thinks the token is
due: azure-core's ``AsyncBearerTokenCredentialPolicy`` at ``refresh_on`` plus a random
jitter of up to :data:`POLICY_JITTER` seconds (redrawn for every token it gets), Key
Vault's challenge policy at ``refresh_on`` or once the token has less than five minutes
left, both at ``expires_on`` at the latest. The provider serves a token from memory until
its usable window ends, refreshing it in the background from its ``refresh_on`` on; past
that window callers wait for a fetch. So the ``refresh_on`` reported here
(:func:`policy_refresh_on`) makes the policy ask inside the refresh-ahead window whatever its
jitter: the ask starts the background refresh and gets the current token at once, and the
policy keeps asking (answered from memory) until the new token is in. ``expires_on`` is the
token's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from azure.core.credentials import (
    AccessToken as AzureAccessToken,
    AccessTokenInfo,
    TokenRequestOptions,
)

from ._errors import AioEntraError, ConfigurationError, InvalidScopeError
from ._policy import RefreshPolicy

if TYPE_CHECKING:
    from types import TracebackType

    from ._token import AccessToken


class _Source(Protocol):
    async def get_token(
        self, scope: str, *, claims: str | None = None, tenant_id: str | None = None
    ) -> AccessToken: ...


__all__ = ["POLICY_JITTER", "AzureCredential", "policy_refresh_on", "usable_until"]

POLICY_JITTER = 60.0
"""The longest azure-core's policy waits past ``refresh_on`` before it asks (its
``MAX_REFRESH_JITTER_SECONDS``, azure-core >= 1.38.3; earlier versions ask at ``refresh_on``)."""

_MAX_OWN_TENANTS = 8
"""Spellings of the provider's own tenant remembered (GUID, domain, in the cases seen)."""

# What the last-token slots hold before the first token: never handed out (no token is None).
_NOTHING_YET = AccessTokenInfo("", 0)
_NO_TOKEN_YET = AzureAccessToken("", 0)


def usable_until(token: AccessToken, policy: RefreshPolicy) -> float:
    """When (Unix time) the provider stops serving ``token`` from memory and callers wait.

    The token's lifetime is read off its metadata (``expires_on - fetched_at``); a token made
    outside the SDK's token sources (no metadata) is given the widest must-refresh window.
    """
    metadata = token.metadata
    if metadata is None:
        return token.expires_on - policy.expiry_margin
    return token.expires_on - policy.margin_for(token.expires_on - metadata.fetched_at)


def policy_refresh_on(
    refresh_on: float, usable_until: float, jitter: float = POLICY_JITTER
) -> float:
    """The ``refresh_on`` to hand an Azure SDK client for a token the provider refreshes in
    the background from ``refresh_on`` and serves until ``usable_until`` (Unix times).

    The policy must ask by the middle of that window, whatever jitter it adds: the other half
    is left for the background fetch (and its retries) to land before callers would wait. For
    a long-lived token that is the token's own ``refresh_on`` (its window is minutes wide). When
    the window is narrower than twice the jitter (tokens shorter than about ten minutes) it is
    earlier than ``refresh_on``: a policy asking before the refresh-ahead window opens gets the
    current token at once (a memory read), sees a ``refresh_on`` already past, and asks again
    until an ask falls inside the window, no later than its middle.

    >>> policy_refresh_on(1800.0, 3540.0)  # a 1-hour token: its own refresh_on
    1800.0
    >>> policy_refresh_on(60.0, 90.0)  # a 2-minute token: asks land in [15, 75]
    15.0
    """
    latest = refresh_on + (usable_until - refresh_on) / 2
    return min(refresh_on, latest - jitter)


class AzureCredential:
    """Hands the tokens of a :class:`~aioentra.TokenProvider` (or a
    :class:`~aioentra.ManagedIdentityProvider`) to async Azure SDK clients.

    >>> client = SecretClient(vault_url, provider.as_azure_credential())  # doctest: +SKIP

    The ``refresh_on`` it reports keeps the client's authentication policy inside the
    provider's refresh-ahead window (see the module documentation), so a client never waits
    for a token while the provider has a usable one. Closing it does not close the provider,
    which may serve other clients.
    """

    __slots__ = (
        "_azure_token",
        "_azure_token_of",
        "_azure_tokens",
        "_get",
        "_info",
        "_info_of",
        "_infos",
        "_own_tenants",
        "_peek",
        "_policy",
        "_provider",
        "_resolve",
    )

    def __init__(self, provider: _Source) -> None:
        self._provider = provider
        self._get: Callable[..., Awaitable[AccessToken]] = provider.get_token
        # The provider's warm token without a coroutine, if it has ``peek_token``
        # (None: await get_token). A source with only get_token is always awaited.
        peek = getattr(provider, "peek_token", None)
        self._peek: Callable[[str], AccessToken | None] = peek if callable(peek) else _no_peek
        policy = getattr(provider, "_refresh", None)
        self._policy = policy if isinstance(policy, RefreshPolicy) else RefreshPolicy()
        # The provider's tenant resolution (None for its own tenant), if it has one: a call
        # naming the provider's own tenant (Key Vault's always does) takes the warm path.
        self._resolve: Callable[[str], str | None] | None = getattr(provider, "_tenant", None)
        self._own_tenants: set[str] = set()
        # The azure-core form of each token, built once per token: per scope, and the last
        # one handed out (``_info_of`` is the token ``_info`` was made from), checked first.
        self._infos: dict[str, tuple[AccessToken, AccessTokenInfo]] = {}
        self._info_of: AccessToken | None = None
        self._info = _NOTHING_YET
        self._azure_tokens: dict[str, tuple[AccessToken, AzureAccessToken]] = {}
        self._azure_token_of: AccessToken | None = None
        self._azure_token = _NO_TOKEN_YET

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AzureAccessToken:
        try:
            (scope,) = scopes
        except ValueError:
            raise _scopes_error(scopes) from None
        if (not claims and tenant_id is None) or self._plain(claims or None, tenant_id):
            token = self._peek(scope) or await self._get(scope)
        else:
            token = await self._get(scope, claims=claims or None, tenant_id=tenant_id)
        if token is self._azure_token_of:
            return self._azure_token
        held = self._azure_tokens.get(token.scope)
        if held is None or held[0] is not token:
            azure = AzureAccessToken(token.token, int(token.expires_on))
            held = self._azure_tokens[token.scope] = (token, azure)
        self._azure_token_of, self._azure_token = held
        return held[1]

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        claims, tenant_id = _claims_and_tenant(options) if options else _NO_OPTIONS
        try:
            (scope,) = scopes
        except ValueError:
            raise _scopes_error(scopes) from None
        # Key Vault's options name the tenant of its challenge (the provider's own) and CAE.
        if (claims is None and tenant_id is None) or self._plain(claims, tenant_id):
            token = self._peek(scope) or await self._get(scope)
        else:
            token = await self._get(scope, claims=claims, tenant_id=tenant_id)
        if token is self._info_of:
            return self._info
        held = self._infos.get(token.scope)
        if held is None or held[0] is not token:
            held = self._infos[token.scope] = (token, self._make_info(token))
        self._info_of, self._info = held
        return held[1]

    def _make_info(self, token: AccessToken) -> AccessTokenInfo:
        refresh_on = policy_refresh_on(token.refresh_on, usable_until(token, self._policy))
        return AccessTokenInfo(
            token.token,
            int(token.expires_on),
            token_type=token.token_type,
            refresh_on=int(refresh_on),
        )

    def _plain(self, claims: str | None, tenant_id: object) -> bool:
        """Whether the call is for the plain token: no claims, and no tenant or the provider's
        own (its warm path then answers it).

        Anything else, and any tenant the provider refuses, goes to the provider as it is,
        which answers or refuses it in its own order.
        """
        if claims is not None:
            return False
        if tenant_id is None:
            return True
        if not isinstance(tenant_id, str):
            return False
        if tenant_id in self._own_tenants:
            return True
        resolve = self._resolve
        if resolve is None:
            return False
        try:
            own = resolve(tenant_id) is None
        except AioEntraError:
            return False
        if own and len(self._own_tenants) < _MAX_OWN_TENANTS:
            self._own_tenants.add(tenant_id)
        return own

    async def close(self) -> None:
        """Nothing to release: the provider's lifetime is its owner's."""

    async def __aenter__(self) -> AzureCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AzureCredential({getattr(self, '_provider', None)!r})"


def _scopes_error(scopes: tuple[str, ...]) -> InvalidScopeError:
    return InvalidScopeError(
        f"client credentials take exactly one scope, got {len(scopes)}",
        hint="request one '{resource}/.default' per token.",
    )


def _no_peek(scope: str) -> None:
    return None


_NO_OPTIONS: tuple[None, None] = (None, None)


def _claims_and_tenant(options: TokenRequestOptions) -> tuple[str | None, str | None]:
    if type(options) is not dict and not isinstance(options, Mapping):  # dict: the usual one
        raise ConfigurationError("options must be a TokenRequestOptions mapping")
    return options.get("claims") or None, options.get("tenant_id")
