"""Discovery documents: instance discovery, OpenID configuration, signing keys (protocol-facts §2).

* ``GET /common/discovery/instance`` -- msal's instance discovery (only reached when a client
  forgets
  ``instance_discovery=False`` *and* routes the discovery host here); answers
  ``tenant_discovery_endpoint`` plus ``metadata`` aliases naming this host.
* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` -- the v2 OIDC document; msal needs
  ``authorization_endpoint`` and ``token_endpoint`` and takes the tenant from the token endpoint's
  path, so it names the tenant GUID even when the request used the domain.
* ``GET /{tenant}/discovery/v2.0/keys`` -- the JWKS (``kid``, ``x5t``, ``n``, ``e``,
  ``x5c``, ``issuer``): every published signing key, the current one first.
* ``GET /{tenant}/.well-known/openid-configuration`` -- the v1 OIDC document, what API-side
  validators of v1.0 tokens read: ``issuer`` ``https://sts.windows.net/{tid}/`` (verbatim
  Entra's, as in the tokens), ``jwks_uri`` ``/{tenant}/discovery/keys``; the other endpoints
  name Entra's v1 paths (``/oauth2/token``, ``/oauth2/authorize``), which the emulator does not
  serve: v1.0 tokens come from the v2 token endpoint for APIs registered with version 1.
* ``GET /{tenant}/discovery/keys`` -- the v1 JWKS path: the same keys document.

Route names, and so fault and log endpoints: ``discovery`` (instance discovery and both OIDC
documents) and ``jwks`` (both key paths).

``common``/``organizations``/``consumers`` answer the multi-tenant documents whose issuer is the
template ``{base_url}/{tenantid}/v2.0``. An unknown tenant answers 400
``invalid_tenant`` AADSTS90002, as Entra does.
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from .._errors import EntraError, entra_error_body
from .._http import STATE, json_response
from .._requestlog import log_info
from .._state import EmulatorState
from ._token_endpoint import TENANTLESS

__all__ = ["add_discovery_routes"]

_CACHEABLE = {"Cache-Control": "max-age=86400, private"}


def _origin(request: web.Request) -> str:
    """``https://host:port`` as the client addressed us, so endpoints stay on the client's host
    name.
    """
    return f"https://{request.host}"


def _tenant_path(state: EmulatorState, request: web.Request) -> tuple[str, str]:
    """``(path segment, issuer)`` for the tenant in the URL, or an ``invalid_tenant`` error."""
    segment = request.match_info["tenant"]
    if segment.lower() in TENANTLESS:
        return segment.lower(), state.issuer("{tenantid}")
    tenant = state.resolve_tenant(segment)
    if tenant is None:
        raise EntraError(90002, error="invalid_tenant", tenant=segment)
    info = log_info(request)
    info.tenant = tenant.tenant_id
    return tenant.tenant_id, state.issuer(tenant.tenant_id)


def _error(request: web.Request, exc: EntraError) -> web.Response:
    log_info(request).error_codes.append(exc.code)
    body = entra_error_body(exc, correlation_id=request.headers.get("client-request-id"))
    return json_response(body, status=exc.status)


async def openid_configuration(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        tenant, issuer = _tenant_path(state, request)
    except EntraError as exc:
        return _error(request, exc)
    base = f"{_origin(request)}/{tenant}"
    document = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{_origin(request)}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "azp",
            "azpacr",
            "idtyp",
            "oid",
            "roles",
            "tid",
            "uti",
            "ver",
            "xms_cc",
        ],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return json_response(document, headers=_CACHEABLE)


async def keys(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        _, issuer = _tenant_path(state, request)
    except EntraError as exc:
        return _error(request, exc)
    return json_response(state.signer.jwks(issuer), headers=_CACHEABLE)


async def openid_configuration_v1(request: web.Request) -> web.Response:
    """``/{tenant}/.well-known/openid-configuration``: the v1 document (issuer of v1.0 tokens)."""
    state = request.app[STATE]
    try:
        tenant, _ = _tenant_path(state, request)
    except EntraError as exc:
        return _error(request, exc)
    base = f"{_origin(request)}/{tenant}"
    issuer = state.issuer_v1("{tenantid}" if tenant in TENANTLESS else tenant)
    document = {
        "token_endpoint": f"{base}/oauth2/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/logout",
        "response_types_supported": [
            "code",
            "id_token",
            "code id_token",
            "token id_token",
            "token",
        ],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "appid",
            "appidacr",
            "idp",
            "idtyp",
            "oid",
            "roles",
            "tid",
            "uti",
            "ver",
        ],
        "microsoft_multi_refresh_token": True,
        "check_session_iframe": f"{base}/oauth2/checksession",
        "userinfo_endpoint": f"{base}/openid/userinfo",
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/devicecode",
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return json_response(document, headers=_CACHEABLE)


async def instance_discovery(request: web.Request) -> web.Response:
    """msal's ``/common/discovery/instance?authorization_endpoint=...`` (api-version 1.0 or 1.1)."""
    authorize = request.query.get("authorization_endpoint", "")
    parts = [p for p in urllib.parse.urlsplit(authorize).path.split("/") if p]
    tenant = parts[0] if parts else "common"
    origin = _origin(request)
    host = request.host
    return json_response(
        {
            "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        },
        headers=_CACHEABLE,
    )


def add_discovery_routes(app: web.Application) -> None:
    app.router.add_get("/common/discovery/instance", instance_discovery, name="discovery:instance")
    app.router.add_get(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        openid_configuration,
        name="discovery:openid",
    )
    app.router.add_get(
        "/{tenant}/.well-known/openid-configuration",
        openid_configuration_v1,
        name="discovery:openid-v1",
    )
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys, name="jwks")
    app.router.add_get("/{tenant}/discovery/keys", keys, name="jwks:v1")
