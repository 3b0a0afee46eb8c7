"""The one place access tokens are minted: :class:`TokenMinter`.

The token endpoint, both managed-identity endpoints and ``Emulator.issue_access_token`` all
call it, so every token the emulator hands out has the same shape — an Entra v2 app-only
token (protocol-facts §3): ``aud, iss, iat, nbf, exp, azp, azpacr, idtyp, oid, sub, tid, uti,
ver`` and ``roles`` only when non-empty.

For an API registered with ``access_token_version=1`` (a manifest whose
``accessTokenAcceptedVersion`` is ``null``) it is Entra's v1.0 app-only token instead:
``aud`` (the resource as requested: identifier URI or app id), ``iss`` =
``https://sts.windows.net/{tid}/``, ``iat, nbf, exp, appid, appidacr, idp`` (= ``iss``), ``idtyp,
oid, sub, tid, uti``, ``ver`` "1.0", ``roles`` when non-empty; the JWT header carries ``x5t`` as
well as ``kid`` (the same value).

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
        """An app-only access token: v1.0 when ``resource`` is an API registered with
        ``access_token_version=1``, else v2.0.

        ``resource`` is a registered API (identifier URI or app id, an optional ``/.default``
        is stripped) whose audience and token version are used, or any other string used
        verbatim as ``aud`` (v2.0). ``azpacr`` is ``appidacr`` in a v1.0 token. ``claims`` adds
        or overrides claims last (e.g. ``xms_cc``, ``exp``, ``scp``); ``lifetime`` defaults to
        the emulator's ``token_lifetime``.
        """
        target = resource[: -len("/.default")] if resource.endswith("/.default") else resource
        return self._sign(
            tenant_id=tenant_id,
            client_id=client_id,
            object_id=object_id,
            api=self._state.find_api(tenant_id, target),
            requested=target,
            roles=roles,
            azpacr=azpacr,
            claims=claims,
            lifetime=lifetime,
        )

    def _sign(
        self,
        *,
        tenant_id: str,
        client_id: str,
        object_id: str,
        api: Api | None,
        requested: str,
        roles: Sequence[str],
        azpacr: str,
        claims: Mapping[str, Any] | None,
        lifetime: int | None,
    ) -> MintedToken:
        """Build and sign the claims for ``api`` (``None``: ``requested`` is a bare audience)."""
        state = self._state
        v1 = api is not None and api.access_token_version == 1
        expires_in = int(lifetime) if lifetime is not None else state.token_lifetime
        now = int(time.time())
        issuer = state.issuer_v1(tenant_id) if v1 else state.issuer(tenant_id)
        body: dict[str, Any] = {
            "aud": api.audience_for(requested) if api is not None else requested,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
        }
        if v1:
            body.update({"appid": client_id, "appidacr": azpacr, "idp": issuer})
        else:
            body.update({"azp": client_id, "azpacr": azpacr})
        body.update(
            {
                "idtyp": "app",
                "oid": object_id,
                "sub": object_id,
                "tid": tenant_id,
                "uti": uuid.uuid4().hex[:22],
                "ver": "1.0" if v1 else "2.0",
            }
        )
        if roles:
            body["roles"] = sorted(roles)
        if claims:
            body.update(claims)
        token = state.signer.sign(body, x5t=v1)
        state.secret_ledger.add_token(token)  # for leak checks: see Emulator.known_secrets
        return MintedToken(token, now, expires_in)

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
        requested: str | None = None,
    ) -> MintedToken:
        """A token for ``app`` on ``api`` with its granted roles (AADSTS501051 when the API
        requires an assignment the app lacks). ``requested`` is how the client named the
        resource (the ``aud`` of a v1.0 token; default: the identifier URI)."""
        granted = self._state.granted_roles(app.client_id, api)
        if api.assignment_required and not granted:
            raise EntraError(
                501051,
                app_id=app.client_id,
                app_name=app.name,
                resource_app_id=api.app_id,
                resource_name=api.name,
            )
        return self._sign(
            tenant_id=tenant_id or app.tenant_id,
            client_id=app.client_id,
            object_id=app.object_id,
            api=api,
            requested=requested or api.identifier_uri,
            roles=sorted(granted or ()),
            azpacr=azpacr,
            claims=claims,
            lifetime=None,
        )

    def for_identity(
        self, app: App, resource: str, *, claims: Mapping[str, Any] | None = None
    ) -> MintedToken:
        """A managed identity's token for ``resource`` (``azpacr`` 2), by the same rules.

        ``api://AzureADTokenExchange`` (the federated-credential audience) is always
        available; any other resource must be registered in the identity's tenant, its
        identifier URI given with or without a trailing slash (a v1.0 API's ``aud`` is
        ``resource`` as given).
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
            app,
            api or self.resolve(app.tenant_id, resource),
            azpacr="2",
            claims=claims,
            requested=resource,
        )


MINTER = web.AppKey("aioentra_minter", TokenMinter)
"""Where the HTTPS application keeps the emulator's minter (the token endpoint reads it)."""
