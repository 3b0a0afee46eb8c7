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
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from . import _keyvault
from ._certs import CertificateAuthority, CertificateMaterial
from ._config import EmulatorConfig
from ._discovery import add_discovery_routes
from ._faults import FaultPlan
from ._http import STATE, observe_middleware
from ._managed_identity import ManagedIdentityServer
from ._model import TOKEN_EXCHANGE_AUDIENCE, Api, App, FederatedCredential, Tenant
from ._net import bind_loopback, run_in_thread
from ._requestlog import RequestLog
from ._state import EmulatorState, validate_token_lifetime
from ._token_endpoint import add_token_routes

__all__ = ["Emulator"]

DEFAULT_DOMAIN = "contoso.onmicrosoft.com"


class Emulator:
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
        #: The Key Vault data plane, served at :attr:`base_url`; usable before ``start()``.
        self.vault: _keyvault.KeyVault = _keyvault.vault_for(self)
        #: The managed-identity endpoint (plain http on 127.0.0.1); identities can be added
        #: before ``start()``.
        self.managed_identity = ManagedIdentityServer(self)
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
        self._register(cfg)

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
    ) -> Api:
        """A resource API requested as ``{identifier_uri}/.default`` (or ``{app_id}/.default``)."""
        return self.state.add_api(
            identifier_uri,
            roles,
            tenant_id=self._tenant_id(tenant),
            name=name or identifier_uri.rstrip("/").rsplit("/", 1)[-1] or identifier_uri,
            app_id=app_id,
            assignment_required=assignment_required,
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
    ) -> App:
        """A daemon app; ``secret=True`` generates a secret, a string registers that value."""
        app = self.state.add_app(name, tenant_id=self._tenant_id(tenant), client_id=client_id)
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

    def add_secret(
        self, app: App | str, value: str | None = None, *, expires_at: datetime | None = None
    ) -> str:
        """Register a client secret (generated when ``value`` is None) and return its value."""
        import secrets

        secret = value if value is not None else secrets.token_urlsafe(30)
        self.state.add_secret(self._app(app), secret, expires_at)
        return secret

    def add_certificate(
        self, app: App | str, certificate: CertificateMaterial | bytes | None = None
    ) -> CertificateMaterial:
        """Register a certificate credential: generated (RSA-2048) when ``None``, or a PEM
        certificate.
        """
        target = self._app(app)
        if certificate is None:
            material = CertificateMaterial.generate(target.name)
        elif isinstance(certificate, bytes):
            material = CertificateMaterial.from_pem_bundle(certificate)
        else:
            material = certificate
        self.state.add_certificate(target, material)
        return material

    def add_federated_credential(
        self, app: App | str, *, issuer: str, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE
    ) -> FederatedCredential:
        """Trust assertions with this ``iss``/``sub``/``aud`` signed by the emulator's own key."""
        credential = FederatedCredential(issuer, subject, audience)
        self.state.add_federated_credential(self._app(app), credential)
        return credential

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

    # -- tokens -------------------------------------------------------------------------------
    def issue_token(
        self,
        app: App | str,
        resource: Api | str,
        *,
        roles: Sequence[str] | None = None,
        claims: Mapping[str, Any] | None = None,
        lifetime: int | None = None,
    ) -> str:
        """Mint an access token for ``app`` directly, as the token endpoint would (for API tests).

        ``resource`` is an :class:`Api`, an identifier URI or app id (``/.default`` optional), or
        any other string used verbatim as the audience. ``roles`` defaults to the granted roles.
        """
        target = self._app(app)
        api = resource if isinstance(resource, Api) else None
        if api is None:
            with contextlib.suppress(KeyError):
                api = self._api(resource, target.tenant_id)
        if roles is None:
            roles = sorted(self.state.granted_roles(target.client_id, api) or ()) if api else ()
        token, _ = self.state.issue_access_token(
            tenant_id=target.tenant_id,
            client_id=target.client_id,
            object_id=target.object_id,
            resource=api.identifier_uri if api else str(resource),
            roles=roles,
            claims=claims,
            lifetime=lifetime,
        )
        return token

    def issue_access_token(self, **kwargs: Any) -> tuple[str, int]:
        """See :meth:`EmulatorState.issue_access_token`."""
        return self.state.issue_access_token(**kwargs)

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """See :meth:`EmulatorState.verify_access_token` (raises ``InvalidTokenError``)."""
        return self.state.verify_access_token(token)

    def issuer(self, tenant_id: str | None = None) -> str:
        return self.state.issuer(self._tenant_id(tenant_id))

    def jwks(self, tenant_id: str | None = None) -> dict[str, Any]:
        """The JWKS document served at ``/{tenant}/discovery/v2.0/keys``."""
        return {"keys": [self.state.signer.jwk(self.issuer(tenant_id))]}

    # -- configuration file -------------------------------------------------------------------
    def _register(self, cfg: EmulatorConfig) -> None:
        for tenant in cfg.tenants:
            self.add_tenant(tenant.tenant_id, tenant.domain)
        for api in cfg.apis:
            self.add_api(
                api.identifier_uri,
                api.roles,
                tenant=api.tenant,
                name=api.name,
                app_id=api.app_id,
                assignment_required=api.assignment_required,
            )
        by_name: dict[str, App] = {}
        for spec in cfg.apps:
            app = self.add_app(
                spec.name, secret=False, tenant=spec.tenant, client_id=spec.client_id
            )
            by_name[spec.name] = app
            for secret in spec.secrets:
                self.add_secret(app, secret.value, expires_at=secret.expires_at)
            for path in spec.certificates:
                self.add_certificate(app, path.read_bytes())
            for fic in spec.federated_credentials:
                self.add_federated_credential(
                    app, issuer=fic.issuer, subject=fic.subject, audience=fic.audience
                )
        for grant in cfg.grants:
            grantee = by_name.get(grant.app) or self._app(grant.app)
            named = next(
                (
                    a
                    for a in self.state.apis.values()
                    if a.tenant_id == grantee.tenant_id and a.name == grant.api
                ),
                None,
            )
            self.grant(grantee, named or grant.api, grant.roles)

    # -- lifecycle ----------------------------------------------------------------------------
    def middlewares_for(self, endpoint: str) -> list[Middleware]:
        """Request-log and fault middlewares for another aiohttp app serving ``endpoint``."""
        return [
            observe_middleware(self.state, self.requests, self.faults, default_endpoint=endpoint)
        ]

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=self.middlewares_for("keyvault"))
        app[STATE] = self.state
        add_discovery_routes(app)
        add_token_routes(app)
        _keyvault.add_routes(app, self)
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
