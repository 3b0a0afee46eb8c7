"""The managed-identity host: one plain-HTTP loopback server with both token endpoints.

``emu.managed_identity`` plays the host a workload runs on. It serves App Service's
``/msi/token`` (found through ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``, :attr:`environ`)
and a VM's IMDS ``/metadata/identity/oauth2/token`` (found through
``AZURE_POD_IDENTITY_AUTHORITY_HOST``, :attr:`imds_environ`, which both msal's
``ManagedIdentityClient`` and azure-identity read as the IMDS base URL). The request
handling is in :mod:`._mi_forms`, the identities in :mod:`._mi_identities`.

The server is given three narrow collaborators rather than the emulator: ``register``
(a directory app for a new identity), ``issue`` (a token for an identity's app by the
directory's rules — the emulator's one minter) and ``middlewares`` (the request log and
fault injection, endpoint ``"managed_identity"``). Tokens therefore come from the same
minter as the token endpoint's, so the vault and APIs accept them, and a token for
``api://AzureADTokenExchange`` can be a federated client assertion of another app whose
federated credential names ``(emu issuer, identity object id)``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .._model import App
from ._mi_forms import APP_SERVICE_API_VERSION, ENDPOINT, IMDS_PATH, app_service_token, imds_token
from ._mi_identities import IdentityRegistry, ManagedIdentity, RegisterApp
from ._minting import MintedToken

__all__ = [
    "API_VERSION",
    "ENDPOINT",
    "MANAGED_IDENTITY_VARIABLES",
    "IssueForApp",
    "ManagedIdentity",
    "ManagedIdentityServer",
]

MANAGED_IDENTITY_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)
"""The variables by which msal (and azure-identity) find a managed-identity endpoint: clear
them all before setting the emulator's :attr:`ManagedIdentityServer.environ` or
``imds_environ``, so that no other source wins."""

API_VERSION = APP_SERVICE_API_VERSION
"""The App Service managed-identity API version azure-identity and msal send."""

IssueForApp = Callable[[App, str, Mapping[str, Any]], MintedToken]
"""``issue(app, resource, extra_claims)``: a managed identity's token; raises ``EntraError``."""

_LOG = logging.getLogger("aioentra.emulator.managed_identity")


class ManagedIdentityServer:
    """A plain-HTTP loopback server playing a host's managed-identity endpoints.

    The emulator creates it, ``await``\\ s :meth:`start` once its HTTPS server runs and
    :meth:`close` on shutdown. Point clients at it with ``monkeypatch.setenv`` of
    :attr:`environ` (App Service) or :attr:`imds_environ` (IMDS) before constructing them.
    """

    def __init__(
        self,
        *,
        register: RegisterApp,
        issue: IssueForApp,
        middlewares: Callable[[str], list[Middleware]] = lambda endpoint: [],
    ) -> None:
        self._registry = IdentityRegistry(register)
        self._issue_for_app = issue
        self._middlewares = middlewares
        self.header = secrets.token_hex(16)
        """The ``IDENTITY_HEADER`` value requests must echo in ``X-IDENTITY-HEADER``."""
        self._runner: web.AppRunner | None = None
        self._origin: str | None = None

    # -- identities ------------------------------------------------------------------------

    @property
    def system_assigned(self) -> ManagedIdentity:
        """The system-assigned identity (registered on first use)."""
        return self._registry.system_assigned

    @property
    def identities(self) -> tuple[ManagedIdentity, ...]:
        """Every identity the endpoints serve, system-assigned first once it exists."""
        return self._registry.identities

    def add_identity(
        self,
        client_id: str | None = None,
        *,
        object_id: str | None = None,
        name: str | None = None,
    ) -> ManagedIdentity:
        """Register a user-assigned identity (new GUIDs unless given) and return it."""
        return self._registry.add(client_id, object_id=object_id, name=name)

    def _issue(self, identity: ManagedIdentity, resource: str) -> MintedToken:
        minted = self._issue_for_app(identity.app, resource, {"xms_mirid": identity.resource_id})
        _LOG.debug(
            "issued a managed identity token: client_id=%s resource=%s",
            identity.client_id,
            resource,
        )
        return minted

    # -- the endpoints ---------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """App Service's ``GET /msi/token``."""
        return app_service_token(request, self._registry, self._issue, self.header)

    async def imds(self, request: web.Request) -> web.StreamResponse:
        """IMDS's ``GET /metadata/identity/oauth2/token``."""
        return imds_token(request, self._registry, self._issue)

    def application(self) -> web.Application:
        """The aiohttp app serving both routes, logged and fault-injectable as endpoint
        ``"managed_identity"`` like the emulator's own routes."""
        app = web.Application(middlewares=self._middlewares(ENDPOINT))
        app.router.add_get("/msi/token", self.token, name=f"{ENDPOINT}:token")
        app.router.add_get(IMDS_PATH, self.imds, name=f"{ENDPOINT}:imds")
        return app

    # -- addresses and lifecycle -----------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:{port}`` (after the emulator started)."""
        if self._origin is None:
            raise RuntimeError("The managed identity endpoint is not started.")
        return self._origin

    @property
    def endpoint(self) -> str:
        """The ``IDENTITY_ENDPOINT`` URL (``http://127.0.0.1:{port}/msi/token``)."""
        return f"{self.origin}/msi/token"

    @property
    def imds_endpoint(self) -> str:
        """The IMDS token URL (``http://127.0.0.1:{port}/metadata/identity/oauth2/token``)."""
        return f"{self.origin}{IMDS_PATH}"

    @property
    def environ(self) -> dict[str, str]:
        """``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, ready for ``monkeypatch.setenv``."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header}

    @property
    def imds_environ(self) -> dict[str, str]:
        """``AZURE_POD_IDENTITY_AUTHORITY_HOST`` = :attr:`origin`: where msal and azure-identity
        look for IMDS (leave ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``/``MSI_ENDPOINT`` unset)."""
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.origin}

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
        self._origin = f"http://{shown}:{port}"
        self.system_assigned  # noqa: B018 - make sure the default identity exists

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        runner, self._runner, self._origin = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
