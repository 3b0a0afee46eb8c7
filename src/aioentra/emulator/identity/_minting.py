"""The one place access tokens are minted: :class:`TokenMinter`.

The token endpoint, both managed-identity endpoints and ``Emulator.issue_access_token`` all
call it, so every token the emulator hands out has the same shape — an Entra v2 app-only
token (protocol-facts §3): ``aud, iss, iat, nbf, exp, azp, azpacr, idtyp, oid, sub, tid, uti,
ver`` and ``roles`` only when non-empty.

Two levels:

* :meth:`TokenMinter.mint` — any claims for any audience (tests, federation assertions);
* :meth:`TokenMinter.resolve` + :meth:`TokenMinter.for_app` — the directory's rules, as the
  token endpoint applies them: the resource must be registered in the app's tenant
  (AADSTS500011), an API requiring assignment needs a grant (AADSTS501051), and the granted
  app roles go into ``roles``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._errors import EntraError
from .._model import TOKEN_EXCHANGE_AUDIENCE, Api, App

if TYPE_CHECKING:
    from .._state import EmulatorState

__all__ = ["MINTER", "MintedToken", "TokenMinter"]


@dataclass(frozen=True)
class MintedToken:
    """A signed access token and its lifetime, as every endpoint reports it."""

    token: str
    issued_at: int
    expires_in: int

    @property
    def expires_on(self) -> int:
        """Unix seconds when the token expires (the managed-identity endpoints' field)."""
        return self.issued_at + self.expires_in


class TokenMinter:
    """Mints the emulator's access tokens with its signing key and directory."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def mint(
        self,
        *,
        tenant_id: str,
        client_id: str,
        object_id: str,
        resource: str,
        roles: Sequence[str] = (),
        azpacr: str = "1",
        claims: Mapping[str, Any] | None = None,
        lifetime: int | None = None,
    ) -> MintedToken:
        """A v2 app-only access token.

        ``resource`` is a registered API (identifier URI or app id, an optional ``/.default``
        is stripped) whose audience is used, or any other string used verbatim as ``aud``.
        ``claims`` adds or overrides claims (e.g. ``xms_cc``); ``lifetime`` defaults to the
        emulator's ``token_lifetime``.
        """
        state = self._state
        target = resource[: -len("/.default")] if resource.endswith("/.default") else resource
        api = state.find_api(tenant_id, target)
        expires_in = int(lifetime) if lifetime is not None else state.token_lifetime
        now = int(time.time())
        body: dict[str, Any] = {
            "aud": api.audience if api is not None else target,
            "iss": state.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "azp": client_id,
            "azpacr": azpacr,
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        if roles:
            body["roles"] = sorted(roles)
        if claims:
            body.update(claims)
        return MintedToken(state.signer.sign(body), now, expires_in)

    def resolve(self, tenant_id: str, resource: str) -> Api:
        """The API ``resource`` names in the tenant, else AADSTS500011."""
        api = self._state.find_api(tenant_id, resource)
        if api is None:
            tenant = self._state.resolve_tenant(tenant_id)
            raise EntraError(
                500011, resource=resource, tenant=tenant.domain if tenant else tenant_id
            )
        return api

    def for_app(
        self,
        app: App,
        api: Api,
        *,
        tenant_id: str | None = None,
        azpacr: str = "1",
        claims: Mapping[str, Any] | None = None,
    ) -> MintedToken:
        """A token for ``app`` on ``api`` with its granted roles (AADSTS501051 when the API
        requires an assignment the app lacks)."""
        granted = self._state.granted_roles(app.client_id, api)
        if api.assignment_required and not granted:
            raise EntraError(
                501051,
                app_id=app.client_id,
                app_name=app.name,
                resource_app_id=api.app_id,
                resource_name=api.name,
            )
        return self.mint(
            tenant_id=tenant_id or app.tenant_id,
            client_id=app.client_id,
            object_id=app.object_id,
            resource=api.identifier_uri,
            roles=sorted(granted or ()),
            azpacr=azpacr,
            claims=claims,
        )

    def for_identity(
        self, app: App, resource: str, *, claims: Mapping[str, Any] | None = None
    ) -> MintedToken:
        """A managed identity's token for ``resource`` (``azpacr`` 2), by the same rules.

        ``api://AzureADTokenExchange`` (the federated-credential audience) is always
        available; any other resource must be registered in the identity's tenant, its
        identifier URI given with or without a trailing slash.
        """
        if resource == TOKEN_EXCHANGE_AUDIENCE:
            return self.mint(
                tenant_id=app.tenant_id,
                client_id=app.client_id,
                object_id=app.object_id,
                resource=resource,
                azpacr="2",
                claims=claims,
            )
        state = self._state
        api = state.find_api(app.tenant_id, resource) or state.find_api(
            app.tenant_id, resource.rstrip("/")
        )
        return self.for_app(
            app, api or self.resolve(app.tenant_id, resource), azpacr="2", claims=claims
        )


MINTER = web.AppKey("aioentra_minter", TokenMinter)
"""Where the HTTPS application keeps the emulator's minter (the token endpoint reads it)."""
