"""aiohttp glue for every endpoint: app keys, request description, the observing middleware.

The middleware runs around each handler and implements two emulator features in protocol order:

1. describe the request for the log (tenant, client id, grant type, auth method, scope -- never
   a secret or assertion value);
2. apply the first matching injected fault *before* the normal handler;
3. record the outcome in the request log.

Endpoint names come from route names (``"token"``, ``"discovery:openid"`` -> ``"discovery"``);
routes without one of the known prefixes get the application's default endpoint (``"keyvault"`` on
the main HTTPS app, whatever the owner chose on other apps).
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._faults import FaultPlan, render_fault
from ._requestlog import LogInfo, RequestLog, RequestRecord, log_info
from ._state import EmulatorState

__all__ = [
    "ENDPOINTS",
    "STATE",
    "basic_credentials",
    "describe_request",
    "endpoint_of",
    "json_response",
    "observe_middleware",
]

STATE = web.AppKey("aioentra_state", EmulatorState)
ENDPOINTS = frozenset({"token", "discovery", "jwks", "keyvault", "managed_identity"})
FORM = "application/x-www-form-urlencoded"


def endpoint_of(request: web.Request, default: str) -> str:
    """The fault/log endpoint name of the matched route."""
    route = request.match_info.route
    if getattr(route, "resource", None) is None:  # aiohttp's 404/405 system route
        return "other"
    name = route.name or ""
    prefix = name.split(":", 1)[0]
    return prefix if prefix in ENDPOINTS else default


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic`` client credentials, URL-decoded as RFC 6749 §2.3.1 requires."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


def _bearer_claims(header: str | None) -> dict[str, Any]:
    if not header or header[:7].lower() != "bearer ":
        return {}
    try:
        claims: dict[str, Any] = jwt.decode(header[7:].strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


async def describe_request(request: web.Request, info: LogInfo, state: EmulatorState) -> None:
    """Fill ``info`` from the request itself (safe fields only)."""
    segment = request.match_info.get("tenant")
    if segment is not None:
        tenant = state.resolve_tenant(segment)
        info.tenant = tenant.tenant_id if tenant else segment
    info.client_id = request.query.get("client_id") or info.client_id
    if request.method == "POST" and request.content_type == FORM:
        form = await request.post()
        basic = basic_credentials(request.headers.get("Authorization"))
        client_id = form.get("client_id")
        info.client_id = (client_id if isinstance(client_id, str) else None) or (
            basic[0] if basic else info.client_id
        )
        for name in ("grant_type", "scope", "claims"):
            value = form.get(name)
            setattr(info, name, value if isinstance(value, str) else None)
        if "client_assertion" in form:
            info.auth_method = "private_key_jwt"
        elif basic is not None:
            info.auth_method = "client_secret_basic"
        elif "client_secret" in form:
            info.auth_method = "client_secret_post"
        return
    claims = _bearer_claims(request.headers.get("Authorization"))
    if claims:
        info.auth_method = "bearer"
        client = claims.get("azp") or claims.get("appid")
        info.client_id = client if isinstance(client, str) else info.client_id
        tid = claims.get("tid")
        info.tenant = info.tenant or (tid if isinstance(tid, str) else None)


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Entra's content type (``application/json; charset=utf-8``)."""
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def observe_middleware(
    state: EmulatorState, log: RequestLog, faults: FaultPlan, *, default_endpoint: str
) -> Middleware:
    """The describe -> fault -> handler -> record middleware for one aiohttp application."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = endpoint_of(request, default_endpoint)
        info = log_info(request, endpoint)
        info.endpoint = endpoint
        status: int | None = 500
        try:
            await describe_request(request, info, state)
            fault = faults.take(
                endpoint, tenants=_tenant_names(state, request, info), client_id=info.client_id
            )
            response: web.StreamResponse | None = None
            if fault is not None:
                info.fault = fault.kind
                response = await render_fault(fault, endpoint, request)
            if response is None:
                response = await handler(request)
            status = None if info.fault == "reset" else response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            log.append(_record(request, info, status))

    return observe


def _tenant_names(state: EmulatorState, request: web.Request, info: LogInfo) -> tuple[str, ...]:
    """Every name of the request's tenant (path segment, GUID, domain), for a fault's
    ``tenant`` filter: a fault for ``contoso.onmicrosoft.com`` also hits ``/{tenant GUID}/...``."""
    names = [info.tenant or "", request.match_info.get("tenant", "")]
    tenant = state.resolve_tenant(info.tenant) if info.tenant else None
    if tenant is not None:
        names += [tenant.tenant_id, tenant.domain]
    return tuple(names)


def _record(request: web.Request, info: LogInfo, status: int | None) -> RequestRecord:
    return RequestRecord(
        method=request.method,
        path=request.path,
        endpoint=info.endpoint,
        status=status,
        tenant=info.tenant,
        client_id=info.client_id,
        grant_type=info.grant_type,
        auth_method=info.auth_method,
        scope=info.scope,
        error_codes=tuple(info.error_codes),
        fault=info.fault,
        claims=info.claims,
    )
