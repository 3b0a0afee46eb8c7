"""The :class:`Emulator`: a local Microsoft Entra ID identity platform over HTTPS on loopback.

It serves the Entra v2.0 paths the unmodified clients use -- OIDC discovery, the JWKS, instance
discovery and the client-credentials token endpoint -- for one or more tenants, with a private CA
the caller trusts (``ca_file`` / ``ssl_context()``). Registration methods are synchronous and
thread-safe: they may be called before ``start()``, and from other threads while it runs
(see ``serve_in_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from ._app_credentials import AppCredentials
from ._certs import CertificateAuthority
from ._config import EmulatorConfig
from ._fallback import not_served_middleware
from ._faults import FaultPlan
from ._http import STATE, observe_middleware
from ._model import Api, App, Tenant
from ._net import bind_loopback, run_in_thread
from ._registration import register_config
from ._requestlog import RequestLog
from ._state import EmulatorState, validate_token_lifetime
from .identity import ManagedIdentityServer, TokenMinter
from .identity._discovery import add_discovery_routes
from .identity._minting import MINTER
from .identity._token_endpoint import add_token_routes
from .keyvault import KeyVault, is_vault_path, vault_for

__all__ = ["Emulator"]

DEFAULT_DOMAIN = "contoso.onmicrosoft.com"


class Emulator(AppCredentials):
    """A local Entra ID (identity platform v2.0) for tests and local development.

    >>> async with Emulator() as emu:                                    # doctest: +SKIP
    ...     app = emu.add_app("daemon")
    ...     cca = msal.ConfidentialClientApplication(
    ...         app.client_id, client_credential=app.secret, authority=emu.authority,
    ...         instance_discovery=False, http_client=session_trusting(emu.ca_file))
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        domain: str | None = None,
        port: int | None = None,
        token_lifetime: int | None = None,
        refresh_in: int | None = None,
        clock_skew: int | None = None,
        reject_replayed_assertions: bool = False,
        subject_alt_names: Sequence[str] = (),
        config: EmulatorConfig | None = None,
    ) -> None:
        cfg = config or EmulatorConfig()
        self.state = EmulatorState(
            token_lifetime=token_lifetime or cfg.token_lifetime or 3599,
            refresh_in=refresh_in if refresh_in is not None else cfg.refresh_in,
            clock_skew=clock_skew if clock_skew is not None else (cfg.clock_skew or 300),
            reject_replayed_assertions=reject_replayed_assertions,
        )
        self.faults = FaultPlan()
        self.requests = RequestLog()
        self._minter = TokenMinter(self.state)
        #: The Key Vault data plane, served at :attr:`base_url`; usable before ``start()``.
        self.vault: KeyVault = vault_for(self)
        #: The managed-identity host (plain http on 127.0.0.1: App Service and IMDS forms);
        #: identities can be added before ``start()``.
        self.managed_identity = ManagedIdentityServer(
            register=self._register_identity,
            issue=lambda app, resource, claims: self._minter.for_identity(
                app, resource, claims=claims
            ),
            middlewares=self.middlewares_for,
        )
        self._port = port if port is not None else (cfg.port or 0)
        self._names = tuple(subject_alt_names)
        self.state.server_names = frozenset(name.lower() for name in self._names)
        default = self.state.add_tenant(
            tenant_id or cfg.tenant_id, domain or cfg.domain or DEFAULT_DOMAIN
        )
        self._tenant = default
        self._runner: web.AppRunner | None = None
        self._tmp: str | None = None
        self._ca: CertificateAuthority | None = None
        self._server_context: ssl.SSLContext | None = None
        register_config(self, cfg)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Emulator:
        """An emulator registered from a JSON/TOML file (see :class:`EmulatorConfig`)."""
        return cls(config=EmulatorConfig.load(path), **kwargs)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self._tenant.tenant_id

    @property
    def domain(self) -> str:
        return self._tenant.domain

    @property
    def base_url(self) -> str:
        """``https://localhost:{port}`` (after ``start()``)."""
        if self.state.base_url is None:
            raise RuntimeError("the emulator is not started")
        return self.state.base_url

    @property
    def port(self) -> int:
        return self.state.port

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def ca_file(self) -> str:
        """Path of the CA certificate PEM to trust (deleted by ``close()``)."""
        if self._tmp is None:
            raise RuntimeError("the emulator is not started")
        return os.path.join(self._tmp, "ca.pem")

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts only the emulator's CA."""
        if self._ca is None:
            raise RuntimeError("the emulator is not started")
        return self._ca.client_context()

    def server_ssl_context(self) -> ssl.SSLContext:
        """The emulator's own server TLS context (certificate for localhost, 127.0.0.1, ::1).

        Serve a local test API with it and clients that trust :attr:`ca_file` trust the API too.
        """
        if self._server_context is None:
            raise RuntimeError("the emulator is not started")
        return self._server_context

    # -- token settings -----------------------------------------------------------------------
    @property
    def token_lifetime(self) -> int:
        """Access-token lifetime in seconds; must be > 300 (msal treats < 5 min left as expired)."""
        return self.state.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self.state.token_lifetime = validate_token_lifetime(seconds)

    @property
    def refresh_in(self) -> int | None:
        """``refresh_in`` sent with every token (ESTS proactive refresh); ``None`` omits the
        field.
        """
        return self.state.refresh_in

    @refresh_in.setter
    def refresh_in(self, seconds: int | None) -> None:
        self.state.refresh_in = seconds

    @property
    def clock_skew(self) -> int:
        """Tolerance in seconds for client-assertion and access-token ``exp``/``nbf`` checks."""
        return self.state.clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: int) -> None:
        self.state.clock_skew = seconds

    # -- registration -------------------------------------------------------------------------
    def _tenant_id(self, tenant: str | None) -> str:
        return self.state.tenant(tenant, self.tenant_id).tenant_id

    def add_tenant(self, tenant_id: str | None = None, domain: str | None = None) -> Tenant:
        """Another directory, with Key Vault and Microsoft Graph pre-registered."""
        return self.state.add_tenant(tenant_id, domain)

    def add_api(
        self,
        identifier_uri: str,
        roles: Sequence[str] = (),
        *,
        tenant: str | None = None,
        name: str | None = None,
        app_id: str | None = None,
        assignment_required: bool = False,
        access_token_version: Literal[1, 2] = 2,
    ) -> Api:
        """A resource API requested as ``{identifier_uri}/.default`` (or ``{app_id}/.default``).

        ``access_token_version`` is the manifest's ``accessTokenAcceptedVersion``. ``2`` (the
        default): v2.0 tokens, ``aud`` = the app id, ``iss`` = :meth:`issuer`, ``azp``/``azpacr``.
        ``1`` (Entra's behaviour for ``null``): v1.0 tokens from every endpoint and from
        :meth:`issue_access_token` -- ``iss`` and ``idp`` = ``https://sts.windows.net/{tid}/``,
        ``ver`` "1.0", ``appid``/``appidacr`` instead of ``azp``/``azpacr``, ``aud`` = the
        resource exactly as requested (identifier URI, or the app id for ``{app_id}/.default``)
        and ``x5t`` (= ``kid``) in the JWT header.
        """
        return self.state.add_api(
            identifier_uri,
            roles,
            tenant_id=self._tenant_id(tenant),
            name=name or identifier_uri.rstrip("/").rsplit("/", 1)[-1] or identifier_uri,
            app_id=app_id,
            assignment_required=assignment_required,
            access_token_version=access_token_version,
        )

    def add_app(
        self,
        name: str = "daemon",
        *,
        secret: bool | str = True,
        certificate: bool = False,
        tenant: str | None = None,
        secret_expires_at: datetime | None = None,
        client_id: str | None = None,
        object_id: str | None = None,
    ) -> App:
        """A daemon app; ``secret=True`` generates a secret, a string registers that value.

        ``client_id`` and ``object_id`` (the service principal: ``oid``/``sub`` of its tokens)
        default to new GUIDs; given ones must be GUIDs no other app has and are lower-cased.
        """
        app = self.state.add_app(
            name, tenant_id=self._tenant_id(tenant), client_id=client_id, object_id=object_id
        )
        if secret is not False:
            self.add_secret(
                app, secret if isinstance(secret, str) else None, expires_at=secret_expires_at
            )
        if certificate:
            self.add_certificate(app)
        return app

    def remove_app(self, app: App | str) -> None:
        self.state.remove_app(self._app(app))

    def remove_api(self, api: Api) -> None:
        """Unregister ``api`` and the grants on it (its identifier URI can be reused)."""
        self.state.remove_api(api)

    def consent(self, app: App | str, tenant: str) -> None:
        """Admin consent of a multi-tenant ``app`` in another ``tenant`` (a service principal
        there), so that it gets tokens from that tenant too. The app keeps its object id."""
        target = self._app(app)
        target.consented_tenants.add(self._tenant_id(tenant))

    def grant(self, app: App | str, api: Api | str, roles: Sequence[str]) -> None:
        """Admin consent: ``app`` holds ``roles`` on ``api`` (adds to earlier grants)."""
        target = self._app(app)
        self.state.grant(target, self._api(api, target.tenant_id), roles)

    def _app(self, app: App | str) -> App:
        if isinstance(app, App):
            return app
        found = self.state.find_identity(client_id=app)
        if found is None:
            raise KeyError(f"no app with client id {app}")
        return found

    def _api(self, api: Api | str, tenant_id: str) -> Api:
        if isinstance(api, Api):
            return api
        target = api[: -len("/.default")] if api.endswith("/.default") else api
        found = self.state.find_api(tenant_id, target)
        if found is None:
            raise KeyError(f"no API {api} in tenant {tenant_id}")
        return found

    def find_identity(
        self, client_id: str | None = None, object_id: str | None = None
    ) -> App | None:
        return self.state.find_identity(client_id=client_id, object_id=object_id)

    def _register_identity(self, name: str, client_id: str | None, object_id: str | None) -> App:
        """The directory app of a new managed identity, in the default tenant."""
        return self.state.add_app(
            name, tenant_id=self.tenant_id, client_id=client_id, object_id=object_id
        )

    # -- tokens -------------------------------------------------------------------------------
    def issue_access_token(
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
    ) -> tuple[str, int]:
        """Mint an access token without HTTP, as the token endpoint would; ``(token,
        expires_on)``.

        The one public way to mint: the token endpoint and the managed-identity endpoints use
        the same minter. ``resource`` is a registered API (identifier URI or app id,
        ``/.default`` optional) whose audience and token version are used (an API added with
        ``access_token_version=1`` gets a v1.0 token, ``aud`` = ``resource`` as given without
        ``/.default``, ``azpacr`` going into ``appidacr``), or any other string used verbatim
        as ``aud`` of a v2.0 token; ``roles`` are put in as given (the token endpoint puts the
        granted ones); ``claims`` adds or overrides claims last, after every computed one
        (``{"exp": ...}`` or ``{"nbf": ...}`` for expired or not-yet-valid tokens, ``{"scp":
        "ToDoList.Read", "idtyp": "user"}`` for a delegated-looking one); ``lifetime`` (seconds,
        any value, also < 300) defaults to :attr:`token_lifetime`. ``expires_on`` is Unix
        seconds of the computed expiry (``iat + lifetime``), not of an overriding ``exp``.
        """
        minted = self._minter.mint(
            tenant_id=tenant_id,
            client_id=client_id,
            object_id=object_id,
            resource=resource,
            roles=roles,
            azpacr=azpacr,
            claims=claims,
            lifetime=lifetime,
        )
        return minted.token, minted.expires_on

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The emulator's own check of a token it issued, v2.0 or v1.0 (see
        :meth:`EmulatorState.verify_access_token`); raises ``InvalidTokenError``."""
        return self.state.verify_access_token(token)

    def issuer(self, tenant_id: str | None = None) -> str:
        """The v2.0 issuer ``{base_url}/{tid}/v2.0`` (default tenant unless named)."""
        return self.state.issuer(self._tenant_id(tenant_id))

    def issuer_v1(self, tenant_id: str | None = None) -> str:
        """The v1.0 issuer ``https://sts.windows.net/{tid}/`` (default tenant unless named)."""
        return self.state.issuer_v1(self._tenant_id(tenant_id))

    def jwks(self, tenant_id: str | None = None) -> dict[str, Any]:
        """The JWKS document served at ``/{tenant}/discovery/v2.0/keys`` (and the v1
        ``/{tenant}/discovery/keys``): every published signing key, the current one first."""
        return self.state.signer.jwks(self.issuer(tenant_id))

    @property
    def signing_key_id(self) -> str:
        """The ``kid`` of the key tokens are signed with now."""
        return self.state.signer.kid

    def rotate_signing_key(self, *, keep_previous: bool = True) -> str:
        """Sign tokens with a new RSA key from now on; returns its ``kid``. Thread-safe.

        The JWKS lists the new key first and, with ``keep_previous`` (the default), the key it
        replaces, so tokens minted before still verify (here, at the vault and at any API
        reading the JWKS); without it only the new key is published and older tokens fail
        signature validation. Only one previous key is kept: rotating twice drops the oldest.
        """
        return self.state.rotate_signing_key(keep_previous=keep_previous)

    # -- lifecycle ----------------------------------------------------------------------------
    def middlewares_for(self, endpoint: str) -> list[Middleware]:
        """Request-log, fault and JSON-404 middlewares for another aiohttp app serving
        ``endpoint``."""
        return [
            observe_middleware(self.state, self.requests, self.faults, default_endpoint=endpoint),
            not_served_middleware(),
        ]

    def _not_served(self, request: web.Request, status: int) -> web.StreamResponse | None:
        if is_vault_path(request.path):
            return self.vault.error_response(status, request.method, request.path)
        return None  # the Entra-shaped default

    def _build_app(self) -> web.Application:
        observe = observe_middleware(
            self.state, self.requests, self.faults, default_endpoint="keyvault"
        )
        app = web.Application(middlewares=[observe, not_served_middleware(self._not_served)])
        app[STATE] = self.state
        app[MINTER] = self._minter
        add_discovery_routes(app)
        add_token_routes(app)
        app.router.add_routes(self.vault.routes())
        return app

    async def start(self) -> None:
        """Generate the CA and keys (in a worker thread), bind loopback and start serving."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        try:
            self._ca = await asyncio.to_thread(CertificateAuthority, self._names)
            await asyncio.to_thread(lambda: self.state.signer)
            self._tmp = tempfile.mkdtemp(prefix="aioentra-emulator-")
            server_context = self._server_context = self._ca.write_files(self._tmp)
            sockets = bind_loopback(self._port)
            self.state.base_url = f"https://localhost:{sockets[0].getsockname()[1]}"
            self._runner = web.AppRunner(
                self._build_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0
            )
            await self._runner.setup()
            for index, sock in enumerate(sockets):
                try:
                    await web.SockSite(self._runner, sock, ssl_context=server_context).start()
                except BaseException:
                    for unused in sockets[index:]:
                        unused.close()
                    raise
            await self.managed_identity.start("127.0.0.1")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop serving and delete the CA file; idempotent."""
        try:
            await self.managed_identity.close()
        finally:
            runner, self._runner = self._runner, None
            try:
                if runner is not None:
                    # cleanup() closes connections with a TLS close_notify that waits for the
                    # client; one a client keeps open (an idle keep-alive) would outlive the
                    # loop and warn. Abort whatever is still open once cleanup is done.
                    server = runner.server
                    transports = [c.transport for c in server.connections] if server else []
                    await runner.cleanup()
                    for transport in transports:
                        if transport is not None:
                            transport.abort()
            finally:
                if self._tmp is not None:
                    shutil.rmtree(self._tmp, ignore_errors=True)
                    self._tmp = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.contextmanager
    def serve_in_thread(self, *, timeout: float = 60.0) -> Iterator[Emulator]:
        """Serve from a private event loop on a background thread (sync code, session fixtures).

        Registration, fault and log methods are thread-safe, so the caller keeps using this object.
        """
        with run_in_thread(self.start, self.close, timeout=timeout):
            yield self
