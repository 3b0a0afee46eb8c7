"""The checks every vault operation starts with, and the JSON response helpers.

Before any operation: ``api-version`` must be present (any version the SDKs send is
accepted), then the caller is authenticated (:mod:`._auth`) and authorised by the access
policy of the operation's kind (:mod:`._policies`). Every error is a ``KeyVaultError``
JSON body; every 401 carries the bearer challenge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._auth import Caller, TokenVerifier, authenticate, challenge_header
from ._errors import KeyVaultError
from ._policies import AccessPolicies, Kind

__all__ = ["ENDPOINT", "Gate", "Handler", "is_vault_path", "json_body", "read_json", "vault_url"]

ENDPOINT = "keyvault"
"""The emulator endpoint name of every vault route (fault injection, request log)."""

_API_VERSION = re.compile(r"\d+\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_COLLECTIONS = frozenset(
    {
        "secrets",
        "deletedsecrets",
        "keys",
        "deletedkeys",
        "certificates",
        "deletedcertificates",
        "storage",
        "deletedstorage",
    }
)


def is_vault_path(path: str) -> bool:
    """Whether ``path`` is under one of the vault data plane's collections (any case)."""
    return path.lstrip("/").split("/", 1)[0].lower() in _COLLECTIONS


def vault_url(request: web.Request) -> str:
    """``scheme://host[:port]`` as the client addressed us: ids and links are built on it."""
    return f"{request.scheme}://{request.host}"


def _vault_name(request: web.Request) -> str:
    """The vault name the service puts in a 403: the first label of the host."""
    return request.host.split(":", 1)[0].split(".", 1)[0]


def json_body(body: Any, status: int = 200) -> web.Response:
    """A vault JSON response with the service's no-cache headers."""
    return web.json_response(
        body,
        status=status,
        headers={"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "-1"},
        dumps=lambda value: json.dumps(value, separators=(",", ":")),
    )


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty); 400 ``BadParameter`` otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise KeyVaultError.bad_parameter("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise KeyVaultError.bad_parameter("The request body must be a JSON object.")
    return body


class Gate:
    """Authentication, authorisation and error rendering shared by every vault route."""

    def __init__(
        self,
        policies: AccessPolicies,
        *,
        tenant_id: Callable[[], str],
        authority: Callable[[], str],
        verify: TokenVerifier,
        signature_valid: Callable[[str], bool],
        clock_skew: Callable[[], float] = lambda: 300,
        location: str = "local",
    ) -> None:
        self._policies = policies
        self._tenant_id = tenant_id
        self._authority = authority
        self._verify = verify
        self._signature_valid = signature_valid
        self._clock_skew = clock_skew
        self._location = location

    def error_response(self, error: KeyVaultError) -> web.Response:
        """The service's error response (a 401 carries the bearer challenge)."""
        response = json_body(error.body(), status=error.status)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = challenge_header(
                self._authority(), self._tenant_id()
            )
        return response

    def guard(self, handler: Handler) -> Handler:
        """Turn :class:`KeyVaultError` raised by ``handler`` into its error response."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except KeyVaultError as error:
                return self.error_response(error)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    def authorize(self, request: web.Request, kind: Kind, permission: str) -> Caller:
        """api-version present, then a valid vault token, then the access-policy permission."""
        if not _API_VERSION.fullmatch(request.query.get("api-version", "")):
            version = request.query.get("api-version")
            raise KeyVaultError.bad_parameter(
                "The api-version query parameter (?api-version=) is required for all requests."
                if not version
                else f"The specified version ({version}) is not recognized."
            )
        caller = authenticate(
            request.headers.get("Authorization"),
            verify=self._verify,
            signature_valid=self._signature_valid,
            tenant_id=self._tenant_id(),
            clock_skew=self._clock_skew(),
        )
        self._policies.check(
            caller, kind, permission, vault_name=_vault_name(request), location=self._location
        )
        return caller

    def routes(self, table: list[tuple[str, str, Handler, str]]) -> list[web.RouteDef]:
        """Guarded routes named ``keyvault:<operation>`` from ``(method, path, handler, op)``."""
        return [
            web.route(method, path, self.guard(handler), name=f"{ENDPOINT}:{name}")
            for method, path, handler, name in table
        ]
