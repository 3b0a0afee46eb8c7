"""``POST /{tenant}/oauth2/v2.0/token`` -- the client-credentials grant (protocol-facts §1).

The handler reads as the protocol does, one check after another, each failing with the AADSTS
code the real service returns:

1. tenant: ``common``/``organizations``/``consumers`` -> AADSTS50059 (an emulator choice: Entra
   guesses a tenant and fails in varying ways), malformed -> 900023, unknown -> 90002;
2. request: a ``resource`` parameter -> 901002; ``grant_type`` missing -> 900144, not
   ``client_credentials`` -> 70003 (``unsupported_grant_type``); no ``client_id`` -> 900144;
3. client: unknown in this tenant -> 700016;
4. credential: ``client_assertion`` (certificate or federated, see ``_assertion``), else a client
   secret in the body or in HTTP Basic (wrong -> 7000215, expired -> 7000222), else 7000218;
5. scope: one resource ``/.default`` (see ``_scopes``), which must exist in the tenant -> 500011;
6. roles: the granted app roles go into ``roles``; none granted -> a token *without* ``roles`` (what
   Entra does), unless the API requires assignment -> AADSTS501051.

The token is v2.0, or v1.0 for an API registered with ``access_token_version=1`` (its ``aud``
then the resource exactly as the scope names it), see ``_minting``.

Success: ``{"token_type": "Bearer", "expires_in": N, "ext_expires_in": N, "access_token": ...}``
(+ ``refresh_in`` when configured) with ``Cache-Control: no-store, no-cache`` and ``Pragma:
no-cache``.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from .._errors import EntraError, entra_error_body
from .._http import STATE, basic_credentials, json_response
from .._model import Api, App, Tenant
from .._requestlog import log_info
from .._state import EmulatorState, utcnow
from ._assertion import JWT_BEARER, audience_matches, verify_client_assertion
from ._minting import MINTER, TokenMinter
from ._scopes import resource_of_scope

__all__ = ["TENANTLESS", "add_token_routes", "resolve_token_tenant"]

#: Authorities that name no tenant; the client-credentials grant needs one.
TENANTLESS = frozenset({"common", "organizations", "consumers"})
_DNS_NAME = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def resolve_token_tenant(state: EmulatorState, segment: str) -> Tenant:
    """The tenant a token request's path names, or the AADSTS error for it."""
    if segment.lower() in TENANTLESS:
        raise EntraError(50059)
    tenant = state.resolve_tenant(segment)
    if tenant is not None:
        return tenant
    try:
        uuid.UUID(segment)
    except ValueError:
        if not _DNS_NAME.match(segment):
            raise EntraError(900023, tenant=segment) from None
    raise EntraError(90002, tenant=segment)


def _field(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _authenticate_secret(app: App, secret: str) -> None:
    """Check a client secret (constant-time compare); 7000215 when wrong, 7000222 when expired."""
    now = utcnow()
    for credential in list(app.secrets):
        if hmac.compare_digest(credential.value.encode(), secret.encode()):
            if credential.expires_at is not None and credential.expires_at <= now:
                raise EntraError(7000222, app_id=app.client_id)
            return
    raise EntraError(7000215, app_id=app.client_id)


def _capabilities(claims: str | None) -> dict[str, Any]:
    """Claims to add from a ``claims`` request parameter: ``xms_cc`` client capabilities (CAE).

    Anything else in it (a CAE claims challenge echoed back) is accepted and ignored.
    """
    if not claims:
        return {}
    try:
        parsed = json.loads(claims)
    except ValueError:
        return {}
    access = parsed.get("access_token") if isinstance(parsed, dict) else None
    xms_cc = access.get("xms_cc") if isinstance(access, dict) else None
    values = xms_cc.get("values") if isinstance(xms_cc, dict) else None
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return {"xms_cc": values}
    return {}


class _TokenRequest:
    """One token request being processed (keeps the handler a straight line of protocol steps)."""

    def __init__(
        self,
        request: web.Request,
        state: EmulatorState,
        minter: TokenMinter,
        form: MultiDictProxy[Any],
    ) -> None:
        self.request = request
        self.state = state
        self.minter = minter
        self.form = form
        self.info = log_info(request, "token")

    def client_id(self) -> tuple[str, str | None]:
        """``(client_id, secret)`` from the body, or from HTTP Basic (RFC 6749 §2.3.1)."""
        basic = basic_credentials(self.request.headers.get("Authorization"))
        client_id = _field(self.form, "client_id")
        secret = _field(self.form, "client_secret")
        if basic is not None:
            if client_id is not None and client_id.lower() != basic[0].lower():
                raise EntraError(
                    50012,
                    detail="The client_id in the body and in the Authorization header differ.",
                )
            client_id, secret = basic[0], basic[1]
        if client_id is None:
            raise EntraError(900144, name="client_id")
        return client_id, secret

    def authenticate(self, app: App, tenant: Tenant, secret: str | None) -> str:
        """Verify the client credential; returns ``azpacr`` ("1" secret, "2"
        certificate/federated).
        """
        assertion = _field(self.form, "client_assertion")
        # What the client presented is secret too, valid or not (leak checks: known_secrets).
        self.state.secret_ledger.add_token(assertion)
        self.state.secret_ledger.add_token(secret)
        if assertion is not None:
            assertion_type = _field(self.form, "client_assertion_type")
            if assertion_type != JWT_BEARER:
                raise EntraError(900144, name="client_assertion_type")
            emulator_port = self.state.port
            # Not the request's Host header, which the client chooses: the names the
            # emulator's certificate covers.
            hosts = self.state.server_names
            kind = verify_client_assertion(
                assertion,
                app,
                state=self.state,
                audience_ok=lambda aud: audience_matches(
                    aud, state=self.state, tenant=tenant, port=emulator_port, hosts=hosts
                ),
            )
            self.info.auth_method = "private_key_jwt" if kind == "certificate" else "federated"
            return "2"
        if secret is not None:
            _authenticate_secret(app, secret)
            return "1"
        raise EntraError(7000218)

    def resource(self, tenant: Tenant) -> tuple[str, Api]:
        """The resource as the scope names it, and the API it resolves to."""
        requested = resource_of_scope(_field(self.form, "scope"))
        return requested, self.minter.resolve(tenant.tenant_id, requested)

    def process(self) -> dict[str, Any]:
        tenant = resolve_token_tenant(self.state, self.request.match_info["tenant"])
        self.info.tenant = tenant.tenant_id
        if "resource" in self.form:
            raise EntraError(901002)
        grant_type = _field(self.form, "grant_type")
        if grant_type is None:
            raise EntraError(900144, name="grant_type")
        if grant_type != "client_credentials":
            raise EntraError(70003, grant_type=grant_type)
        client_id, secret = self.client_id()
        app = self.state.find_identity(client_id=client_id)
        if app is None or not app.is_in_tenant(tenant.tenant_id):
            raise EntraError(700016, app_id=client_id, tenant=tenant.tenant_id)
        azpacr = self.authenticate(app, tenant, secret)
        requested, api = self.resource(tenant)
        minted = self.minter.for_app(
            app,
            api,
            tenant_id=tenant.tenant_id,
            azpacr=azpacr,
            claims=_capabilities(_field(self.form, "claims")),
            requested=requested,
        )
        expires_in = minted.expires_in
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": minted.token,
        }
        if self.state.refresh_in is not None:
            body["refresh_in"] = self.state.refresh_in
        return body


async def token_endpoint(request: web.Request) -> web.Response:
    """``POST /{tenant}/oauth2/v2.0/token``: always answers JSON, success or AADSTS error."""
    state = request.app[STATE]
    correlation = request.headers.get("client-request-id")
    headers = dict(_NO_STORE)
    if correlation:
        headers["client-request-id"] = correlation
    form = await request.post()
    processing = _TokenRequest(request, state, request.app[MINTER], form)
    try:
        body = processing.process()
    except EntraError as exc:
        processing.info.error_codes.append(exc.code)
        return json_response(
            entra_error_body(exc, correlation_id=correlation), status=exc.status, headers=headers
        )
    return json_response(body, headers=headers)


def add_token_routes(app: web.Application) -> None:
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token_endpoint, name="token")
