"""Entra (ESTS) error responses: the AADSTS catalogue and the JSON error body.

Every error the emulator's identity endpoints return has the shape of a real Microsoft Entra v2.0
error (protocol-facts §1.3)::

    {"error": "invalid_client",
     "error_description": "AADSTS7000215: Invalid client secret provided. ...\\r\\nTrace ID: "
     "...\\r\\n"
                          "Correlation ID: ...\\r\\nTimestamp: 2024-01-01 00:00:00Z",
     "error_codes": [7000215], "timestamp": "2024-01-01 00:00:00Z",
     "trace_id": "...", "correlation_id": "...",
     "error_uri": "https://login.microsoftonline.com/error?code=7000215"}

``invalid_client`` answers with HTTP 401, everything else with 400 (RFC 6749 §5.2 and what Entra
does, protocol-facts §1.3). The body is always JSON because msal cannot parse anything else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["AADSTS", "EntraError", "error_body"]


@dataclass(frozen=True)
class _Code:
    error: str
    status: int
    template: str


#: The emulated AADSTS codes: ``code -> (OAuth error, HTTP status, message template)``.
#: Messages follow the wording seen from the live service (protocol-facts §1.4).
AADSTS: dict[int, _Code] = {
    50027: _Code("invalid_client", 401, "Invalid JWT token. {detail}"),
    50012: _Code("invalid_client", 401, "Authentication failed. {detail}"),
    50048: _Code(
        "invalid_client",
        401,
        "Subject mismatches Issuer. Subject: '{sub}', Issuer: '{iss}'. The client assertion "
        "'sub' and 'iss' claims must both be the client id.",
    ),
    50059: _Code(
        "invalid_request",
        400,
        "No tenant-identifying information found in either the request or implied by any "
        "provided credentials.",
    ),
    70003: _Code(
        "unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant_type}'."
    ),
    70011: _Code(
        "invalid_scope",
        400,
        "The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't "
        "valid. .default scope can't be combined with resource-specific scopes.",
    ),
    70021: _Code(
        "invalid_request",
        400,
        "No matching federated identity record found for presented assertion. Assertion Issuer: "
        "'{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.",
    ),
    90002: _Code(
        "invalid_request",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    ),
    90033: _Code(
        "temporarily_unavailable", 503, "A transient error has occurred. Please try again."
    ),
    500011: _Code(
        "invalid_resource",
        400,
        "The resource principal named {resource} was not found in the tenant named {tenant}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
    ),
    501051: _Code(
        "invalid_client",
        400,
        "Application '{app_id}'({app_name}) is not assigned to a role for the application "
        "'{resource_app_id}'({resource_name}).",
    ),
    700016: _Code(
        "unauthorized_client",
        400,
        "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This "
        "can happen if the application has not been installed by the administrator of the tenant "
        "or consented to by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant.",
    ),
    700022: _Code(
        "invalid_scope",
        400,
        "The provided value for the input parameter scope is not valid because it contains more "
        "than one resource. Scope {scope} is not valid.",
    ),
    700023: _Code(
        "invalid_client", 401, "Client assertion audience claim does not match Realm issuer."
    ),
    700024: _Code(
        "invalid_client",
        401,
        "Client assertion is not within its valid time range. Current time: {now}, assertion "
        "valid from {nbf}, expiry time of assertion {exp}. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials",
    ),
    700027: _Code(
        "invalid_client",
        401,
        "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key "
        "used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or "
        "directly use MS Graph to see configured keys for app Id '{app_id}'. Review the "
        "documentation at https://learn.microsoft.com/graph/deployments if you are not using the "
        "global endpoint.]",
    ),
    900023: _Code(
        "invalid_request",
        400,
        "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid "
        "external domain.",
    ),
    900144: _Code(
        "invalid_request", 400, "The request body must contain the following parameter: '{name}'."
    ),
    901002: _Code("invalid_request", 400, "The 'resource' request parameter isn't supported."),
    1002012: _Code(
        "invalid_scope",
        400,
        "The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI).",
    ),
    7000215: _Code(
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '{app_id}'.",
    ),
    7000218: _Code(
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    ),
    7000222: _Code(
        "invalid_client",
        401,
        "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal "
        "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
        "certificate credentials for added security: https://aka.ms/certCreds.",
    ),
}


class EntraError(Exception):
    """An AADSTS error raised by a protocol step and turned into an Entra JSON error response.

    ``EntraError(7000215, app_id="...")`` fills the catalogue message template with the keyword
    arguments; ``error`` and ``status`` override the catalogue defaults (e.g. AADSTS90002 is
    ``invalid_tenant`` on discovery but ``invalid_request`` on the token endpoint).
    """

    def __init__(
        self, code: int, *, error: str | None = None, status: int | None = None, **fields: object
    ) -> None:
        entry = AADSTS[code]
        self.code = code
        self.error = error or entry.error
        self.status = status or entry.status
        self.message = entry.template.format(**fields)
        super().__init__(f"AADSTS{code}: {self.message}")


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%SZ")


def error_body(
    error: str,
    message: str,
    codes: list[int],
    *,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build the Entra JSON error document (protocol-facts §1.3).

    ``correlation_id`` echoes the client's ``client-request-id`` header, as Entra does; a fresh
    GUID is used when the client sent none.
    """
    when = now or datetime.now(timezone.utc)
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    stamp = _timestamp(when)
    prefix = f"AADSTS{codes[0]}: " if codes else ""
    body: dict[str, Any] = {
        "error": error,
        "error_description": (
            f"{prefix}{message}\r\nTrace ID: {trace_id}"
            f"\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"
        ),
        "error_codes": codes,
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
    }
    if codes:
        body["error_uri"] = f"https://login.microsoftonline.com/error?code={codes[0]}"
    return body


def entra_error_body(exc: EntraError, *, correlation_id: str | None = None) -> dict[str, Any]:
    """The JSON error document for a raised :class:`EntraError`."""
    return error_body(exc.error, exc.message, [exc.code], correlation_id=correlation_id)
