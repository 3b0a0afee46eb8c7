"""The managed identity endpoint, in its Azure App Service form.

App Service (and Functions, Container Apps) hand a process two environment variables,
``IDENTITY_ENDPOINT`` (a plain-``http`` loopback URL) and ``IDENTITY_HEADER`` (a secret),
and serve (API version 2019-08-01)::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource={resource}
        [&client_id=…|&object_id=…|&principal_id=…|&mi_res_id=…]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

    200 {"access_token": "…", "expires_on": "1586984735", "resource": "…",
         "token_type": "Bearer", "client_id": "…"}

``expires_on`` is Unix seconds **as a string**; azure-identity (``int(content["expires_on"])``,
``_internal/managed_identity_client.py``) and msal (``_obtain_token_on_app_service``) both
read it that way. Errors are ``{"statusCode": …, "message": …, "correlationId": …}`` (the
shape msal parses); an unknown identity answers 400 "Unable to load the proper Managed
Identity." as the real endpoint does (Azure/azure-sdk-for-net#43691).

Without an identity parameter the system-assigned identity answers; user-assigned ones
are picked by ``client_id``, ``object_id``/``principal_id`` or ``mi_res_id``. Tokens are
minted by the emulator's registry, so the vault and APIs accept them, and a token for
``api://AzureADTokenExchange`` can be a federated client assertion of another app whose
federated credential names ``(emu issuer, identity object id)``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ._errors import EntraError
from ._model import TOKEN_EXCHANGE_AUDIENCE, App
from ._requestlog import log_info

if TYPE_CHECKING:
    from . import Emulator

__all__ = ["API_VERSION", "ENDPOINT", "ManagedIdentity", "ManagedIdentityServer"]

API_VERSION = "2019-08-01"
"""The App Service managed-identity API version azure-identity and msal send."""

ENDPOINT = "managed_identity"
"""The emulator endpoint name of the token route (fault injection, request log)."""

IDENTITY_HEADER = "X-IDENTITY-HEADER"

_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
_LOG = logging.getLogger("aioentra.emulator.managed_identity")


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity: a service principal without credentials of its own.

    ``app`` is its registration in the emulator's directory (grant it API roles with
    the emulator's ``grant`` like any app); ``resource_id`` is what ``mi_res_id`` names.
    """

    app: App
    resource_id: str
    system_assigned: bool = False

    @property
    def client_id(self) -> str:
        """The identity's client (application) id: the ``azp`` of its tokens."""
        return self.app.client_id

    @property
    def object_id(self) -> str:
        """The service principal's object id: the ``oid``/``sub`` of its tokens."""
        return self.app.object_id

    @property
    def name(self) -> str:
        return self.app.name

    @property
    def tenant_id(self) -> str:
        return self.app.tenant_id


class _IdentityError(Exception):
    """An App Service identity-endpoint error: ``statusCode`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @classmethod
    def from_entra(cls, error: EntraError) -> _IdentityError:
        """An AADSTS failure of the token issue, passed on as a 400 with its message."""
        return cls(400, str(error))


def _error(status: int, message: str) -> web.Response:
    body = {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    return web.json_response(body, status=status)


class ManagedIdentityServer:
    """A plain-HTTP loopback server playing App Service's identity endpoint.

    The emulator creates it, ``await``\\ s :meth:`start` once its HTTPS server runs and
    :meth:`close` on shutdown. Point azure-identity at it with
    ``monkeypatch.setenv`` of :attr:`environ` before constructing the credential.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self.header = secrets.token_hex(16)
        """The ``IDENTITY_HEADER`` value requests must echo in ``X-IDENTITY-HEADER``."""
        self._identities: list[ManagedIdentity] = []
        self._lock = threading.RLock()  # registration may come from a test thread
        self._runner: web.AppRunner | None = None
        self._endpoint: str | None = None

    # -- identities ------------------------------------------------------------------------

    @property
    def system_assigned(self) -> ManagedIdentity:
        """The system-assigned identity (registered on first use)."""
        with self._lock:
            for identity in self._identities:
                if identity.system_assigned:
                    return identity
            return self._register("system-assigned", None, None, system_assigned=True)

    @property
    def identities(self) -> tuple[ManagedIdentity, ...]:
        """Every identity the endpoint serves, system-assigned first once it exists."""
        with self._lock:
            return tuple(sorted(self._identities, key=lambda item: not item.system_assigned))

    def add_identity(
        self,
        client_id: str | None = None,
        *,
        object_id: str | None = None,
        name: str | None = None,
    ) -> ManagedIdentity:
        """Register a user-assigned identity (new GUIDs unless given) and return it."""
        with self._lock:
            label = name or f"user-assigned-{len(self._identities) + 1}"
            return self._register(label, client_id, object_id, system_assigned=False)

    def _register(
        self, name: str, client_id: str | None, object_id: str | None, *, system_assigned: bool
    ) -> ManagedIdentity:
        state = self._emulator.state
        if object_id is not None and state.find_identity(object_id=object_id) is not None:
            raise ValueError(f"object id {object_id} already exists")
        app = state.add_app(name, tenant_id=self._emulator.tenant_id, client_id=client_id)
        if object_id is not None:
            app.object_id = object_id.lower()
        provider = (
            f"Microsoft.Web/sites/{name}"
            if system_assigned
            else f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )
        identity = ManagedIdentity(
            app=app,
            resource_id=f"/subscriptions/{_SUBSCRIPTION}/resourceGroups/emulator/providers/{provider}",
            system_assigned=system_assigned,
        )
        self._identities.append(identity)
        return identity

    def _select(self, query: Mapping[str, str]) -> ManagedIdentity:
        """The identity a token request names (at most one selector), else 400."""
        selectors = {
            key: query[key]
            for key in ("client_id", "object_id", "principal_id", "mi_res_id")
            if query.get(key)
        }
        if len(selectors) > 1:
            raise _IdentityError(
                400, f"Only one of {', '.join(sorted(selectors))} may identify the identity."
            )
        if not selectors:
            return self.system_assigned
        key, wanted = next(iter(selectors.items()))
        for identity in self.identities:
            value = {
                "client_id": identity.client_id,
                "object_id": identity.object_id,
                "principal_id": identity.object_id,
                "mi_res_id": identity.resource_id,
            }[key]
            if value.lower() == wanted.lower():
                return identity
        raise _IdentityError(400, "Unable to load the proper Managed Identity.")

    # -- the endpoint ----------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """``GET /msi/token``: check header, api-version, resource and identity; mint a token."""
        try:
            return web.json_response(self._issue(request))
        except _IdentityError as error:
            return _error(error.status, error.message)

    def _issue(self, request: web.Request) -> dict[str, str]:
        presented = request.headers.get(IDENTITY_HEADER)
        if presented is None:
            raise _IdentityError(400, f"The {IDENTITY_HEADER} header is missing.")
        if not hmac.compare_digest(presented.encode(), self.header.encode()):
            raise _IdentityError(401, f"The {IDENTITY_HEADER} header value is not valid.")
        version = request.query.get("api-version")
        if version != API_VERSION:
            raise _IdentityError(
                400, f"api-version {version!r} is not supported; use {API_VERSION}."
            )
        resource = request.query.get("resource", "")
        if not resource:
            raise _IdentityError(400, "The resource parameter is required.")
        identity = self._select(request.query)
        info = log_info(request, ENDPOINT)
        info.client_id, info.tenant, info.scope = identity.client_id, identity.tenant_id, resource
        target, roles = self._roles(identity, resource)
        token, expires_in = self._emulator.state.issue_access_token(
            tenant_id=identity.tenant_id,
            client_id=identity.client_id,
            object_id=identity.object_id,
            resource=target,
            roles=roles,
            azpacr="2",
            claims={"xms_mirid": identity.resource_id},
        )
        _LOG.debug(
            "issued a managed identity token: client_id=%s resource=%s",
            identity.client_id,
            resource,
        )
        return {
            "access_token": token,
            "expires_on": str(int(time.time()) + expires_in),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }

    def _roles(self, identity: ManagedIdentity, resource: str) -> tuple[str, tuple[str, ...]]:
        """The resource to issue for and the roles granted on it, as the token endpoint decides.

        ``api://AzureADTokenExchange`` (the federated-credential audience) is always
        available; any other resource must be registered in the identity's tenant
        (AADSTS500011), and an API requiring assignment needs a grant (AADSTS501051). The
        AADSTS message comes back in App Service's error shape.
        """
        if resource == TOKEN_EXCHANGE_AUDIENCE:
            return resource, ()
        state = self._emulator.state
        tenant_id = identity.tenant_id
        api = state.find_api(tenant_id, resource) or state.find_api(tenant_id, resource.rstrip("/"))
        if api is None:
            tenant = state.resolve_tenant(tenant_id)
            raise _IdentityError.from_entra(
                EntraError(500011, resource=resource, tenant=tenant.domain if tenant else tenant_id)
            )
        granted = state.granted_roles(identity.client_id, api)
        if api.assignment_required and not granted:
            raise _IdentityError.from_entra(
                EntraError(
                    501051,
                    app_id=identity.client_id,
                    app_name=identity.name,
                    resource_app_id=api.app_id,
                    resource_name=api.name,
                )
            )
        return api.identifier_uri, tuple(sorted(granted or ()))

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The ``IDENTITY_ENDPOINT`` URL (``http://127.0.0.1:{port}/msi/token``)."""
        if self._endpoint is None:
            raise RuntimeError("The managed identity endpoint is not started.")
        return self._endpoint

    @property
    def environ(self) -> dict[str, str]:
        """``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, ready for ``monkeypatch.setenv``."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header}

    def application(self) -> web.Application:
        """The aiohttp app serving ``GET /msi/token``, logged and fault-injectable as
        endpoint ``"managed_identity"`` like the emulator's own routes."""
        app = web.Application(middlewares=self._emulator.middlewares_for(ENDPOINT))
        app.router.add_get("/msi/token", self.token, name=f"{ENDPOINT}:token")
        return app

    async def start(self, host: str = "127.0.0.1") -> None:
        """Listen on an ephemeral port of one loopback address (``localhost`` → 127.0.0.1)."""
        if self._runner is not None:
            return
        bind = "127.0.0.1" if host in ("localhost", "") else host
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, bind, 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        shown = f"[{bind}]" if ":" in bind else bind
        self._endpoint = f"http://{shown}:{port}/msi/token"
        self.system_assigned  # noqa: B018 - make sure the default identity exists

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        runner, self._runner, self._endpoint = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
