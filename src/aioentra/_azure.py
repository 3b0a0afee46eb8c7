"""The provider as an azure-core ``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``.

Azure SDK clients call ``get_token_info(scope, options=...)`` (azure-core >= 1.31)
or ``get_token(*scopes, ...)``. Key Vault's challenge policy passes the tenant
from its 401 challenge and asks for CAE; the tenant must be the provider's own
or one of its ``additionally_allowed_tenants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from azure.core.credentials import (
    AccessToken as AzureAccessToken,
    AccessTokenInfo,
    TokenRequestOptions,
)

from ._errors import ConfigurationError, InvalidScopeError

if TYPE_CHECKING:
    from types import TracebackType

    from ._token import AccessToken


class _Source(Protocol):
    async def get_token(
        self, scope: str, *, claims: str | None = None, tenant_id: str | None = None
    ) -> AccessToken: ...


__all__ = ["AzureCredential"]


class AzureCredential:
    """Hands the tokens of a :class:`~aioentra.TokenProvider` (or a
    :class:`~aioentra.ManagedIdentityProvider`) to async Azure SDK clients.

    >>> client = SecretClient(vault_url, provider.as_azure_credential())  # doctest: +SKIP

    Closing it does not close the provider, which may serve other clients.
    """

    def __init__(self, provider: _Source) -> None:
        self._provider = provider

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AzureAccessToken:
        token = await self._token(scopes, claims, tenant_id)
        return AzureAccessToken(token.token, int(token.expires_on))

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        options = options or {}
        if not isinstance(options, Mapping):
            raise ConfigurationError("options must be a TokenRequestOptions mapping")
        token = await self._token(scopes, options.get("claims"), options.get("tenant_id"))
        return AccessTokenInfo(
            token.token,
            int(token.expires_on),
            token_type=token.token_type,
            refresh_on=int(token.refresh_on),
        )

    async def _token(
        self, scopes: tuple[str, ...], claims: str | None, tenant_id: str | None
    ) -> AccessToken:
        if len(scopes) != 1:
            raise InvalidScopeError(
                f"client credentials take exactly one scope, got {len(scopes)}",
                hint="request one '{resource}/.default' per token.",
            )
        return await self._provider.get_token(scopes[0], claims=claims or None, tenant_id=tenant_id)

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
