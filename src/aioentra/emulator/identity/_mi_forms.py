"""The two managed-identity token endpoints: App Service's and the VM's IMDS.

**App Service** (also Functions, Container Apps; API version 2019-08-01)::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource={resource}
        [&client_id=…|&object_id=…|&principal_id=…|&mi_res_id=…]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

    200 {"access_token", "expires_on": "1586984735", "resource", "token_type": "Bearer",
         "client_id"}

``expires_on`` is Unix seconds **as a string** (azure-identity ``int(content["expires_on"])``,
msal ``_obtain_token_on_app_service``). Errors are ``{"statusCode", "message",
"correlationId"}`` (the shape msal parses); an unknown identity is 400 "Unable to load the
proper Managed Identity." (Azure/azure-sdk-for-net#43691).

**IMDS** (``how-to-use-vm-token.md``)::

    GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}
        [&client_id=…|&object_id=…|&msi_res_id=…]
    Metadata: true

    200 {"access_token", "client_id", "expires_in": "3599", "expires_on": "…",
         "ext_expires_in": "3599", "not_before": "…", "resource", "token_type": "Bearer"}

Every number is a string. Errors are ``{"error", "error_description"}``: no ``Metadata:
true`` header → 400 ``bad_request_102`` "Required metadata header not specified" (the
documented code and wording); an identity the host does not have → 400 ``invalid_request``
"Identity not found" (the live service's answer, Azure/azure-sdk-for-net#37278); an unknown
resource → 400 ``invalid_resource`` with the AADSTS500011 text.

Without an identity parameter the system-assigned identity answers. Both forms record the
chosen identity's client id in the request log.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .._errors import EntraError
from .._requestlog import log_info
from ._mi_identities import IdentityRegistry, ManagedIdentity, Selector
from ._minting import MintedToken

__all__ = [
    "APP_SERVICE_API_VERSION",
    "ENDPOINT",
    "IDENTITY_HEADER",
    "IMDS_API_VERSION",
    "IMDS_PATH",
    "IssueToken",
    "app_service_token",
    "imds_token",
]

ENDPOINT = "managed_identity"
"""The emulator endpoint name of both token routes (fault injection, request log)."""

APP_SERVICE_API_VERSION = "2019-08-01"
IMDS_API_VERSION = "2018-02-01"
IMDS_PATH = "/metadata/identity/oauth2/token"
IDENTITY_HEADER = "X-IDENTITY-HEADER"
_DATE_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")

IssueToken = Callable[[ManagedIdentity, str], MintedToken]
"""``issue(identity, resource)``: a token by the directory's rules; raises ``EntraError``."""


class FormError(Exception):
    """A managed-identity endpoint error: HTTP status and the form's error fields."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @classmethod
    def from_entra(cls, error: EntraError) -> FormError:
        """An AADSTS failure of the token issue, passed on as a 400 with its message."""
        return cls(400, error.error, str(error))


def _selection(
    query: Mapping[str, str], names: Mapping[str, Selector]
) -> tuple[Selector | None, str]:
    """The one identity parameter of a request (at most one), else 400."""
    given = {key: query[key] for key in names if query.get(key)}
    if len(given) > 1:
        raise FormError(
            400,
            "invalid_request",
            f"Only one of {', '.join(sorted(given))} may identify the identity.",
        )
    if not given:
        return None, ""
    key, value = next(iter(given.items()))
    return names[key], value


def _issue(
    request: web.Request,
    registry: IdentityRegistry,
    issue: IssueToken,
    *,
    names: Mapping[str, Selector],
    unknown: FormError,
) -> tuple[ManagedIdentity, str, MintedToken]:
    """Resource present, identity known, then the token; logs who asked for what."""
    resource = request.query.get("resource", "")
    if not resource:
        raise FormError(400, "invalid_request", "The resource parameter is required.")
    selector, value = _selection(request.query, names)
    identity = registry.select(selector, value)
    if identity is None:
        raise unknown
    info = log_info(request, ENDPOINT)
    info.client_id, info.tenant, info.scope = identity.client_id, identity.tenant_id, resource
    try:
        return identity, resource, issue(identity, resource)
    except EntraError as error:
        info.error_codes.append(error.code)
        raise FormError.from_entra(error) from None


def app_service_error(status: int, message: str) -> dict[str, Any]:
    """App Service's error body."""
    return {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}


def imds_error(code: str, message: str) -> dict[str, Any]:
    """IMDS's error body."""
    return {"error": code, "error_description": message}


_APP_SERVICE_NAMES: Mapping[str, Selector] = {
    "client_id": "client_id",
    "object_id": "object_id",
    "principal_id": "object_id",
    "mi_res_id": "resource_id",
}
_IMDS_NAMES: Mapping[str, Selector] = {
    "client_id": "client_id",
    "object_id": "object_id",
    "msi_res_id": "resource_id",
}


def app_service_token(
    request: web.Request, registry: IdentityRegistry, issue: IssueToken, header: str
) -> web.Response:
    """``GET /msi/token``: identity header, api-version, resource, identity; then the token."""
    try:
        presented = request.headers.get(IDENTITY_HEADER)
        if presented is None:
            raise FormError(400, "", f"The {IDENTITY_HEADER} header is missing.")
        if not hmac.compare_digest(presented.encode(), header.encode()):
            raise FormError(401, "", f"The {IDENTITY_HEADER} header value is not valid.")
        version = request.query.get("api-version")
        if version != APP_SERVICE_API_VERSION:
            raise FormError(
                400, "", f"api-version {version!r} is not supported; use {APP_SERVICE_API_VERSION}."
            )
        unknown = FormError(400, "", "Unable to load the proper Managed Identity.")
        identity, resource, minted = _issue(
            request, registry, issue, names=_APP_SERVICE_NAMES, unknown=unknown
        )
    except FormError as error:
        return web.json_response(
            app_service_error(error.status, error.message), status=error.status
        )
    return web.json_response(
        {
            "access_token": minted.token,
            "expires_on": str(minted.expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
    )


def imds_token(request: web.Request, registry: IdentityRegistry, issue: IssueToken) -> web.Response:
    """``GET /metadata/identity/oauth2/token``: ``Metadata: true``, api-version, resource,
    identity; then the token."""
    try:
        if request.headers.get("Metadata") != "true":
            raise FormError(400, "bad_request_102", "Required metadata header not specified")
        version = request.query.get("api-version", "")
        if not _DATE_VERSION.fullmatch(version) or version < IMDS_API_VERSION:
            raise FormError(
                400,
                "invalid_request",
                f"api-version {version!r} is not supported; use {IMDS_API_VERSION} or later.",
            )
        unknown = FormError(400, "invalid_request", "Identity not found")
        identity, resource, minted = _issue(
            request, registry, issue, names=_IMDS_NAMES, unknown=unknown
        )
    except FormError as error:
        return web.json_response(imds_error(error.code, error.message), status=error.status)
    return web.json_response(
        {
            "access_token": minted.token,
            "client_id": identity.client_id,
            "expires_in": str(minted.expires_in),
            "expires_on": str(minted.expires_on),
            "ext_expires_in": str(minted.expires_in),
            "not_before": str(minted.issued_at),
            "resource": resource,
            "token_type": "Bearer",
        }
    )
