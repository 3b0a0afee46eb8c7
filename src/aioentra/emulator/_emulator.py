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
from ._registry import track
from ._requestlog import RequestLog
from ._state import EmulatorState, secret_expiry, validate_token_lifetime
from .identity import ManagedIdentityServer, TokenMinter
from .identity._discovery import add_discovery_routes
from .identity._minting import MINTER
from .identity._token_endpoint import add_token_routes
from .keyvault import KeyVault, is_vault_path, vault_for

__all__ = ["Emulator"]

DEFAULT_DOMAIN = "contoso.onmicrosoft.com"


class Emulator(AppCredentials):
    """A local Entra ID (identity platform v2.0) for tests and local development.

    Examples:
        >>> async with Emulator() as emu:                                # doctest: +SKIP
        ...     app = emu.add_app("daemon")
        ...     cca = msal.ConfidentialClientApplication(
        ...         app.client_id, client_credential=app.secret, authority=emu.authority,
        ...         instance_discovery=False, http_client=session_trusting(emu.ca_file))

    Args:
        tenant_id: The default tenant's GUID (default: a new one).
        domain: The default tenant's domain (default ``contoso.onmicrosoft.com``).
        port: The HTTPS port on 127.0.0.1 and ::1 (default: an ephemeral one).
        token_lifetime: Access-token lifetime in seconds (default 3599); must be > 300.
        refresh_in: The ``refresh_in`` sent with each token; ``None`` sends none.
        clock_skew: Tolerance in seconds of the ``exp``/``nbf`` checks (default 300).
        reject_replayed_assertions: Refuse a client assertion whose ``jti`` was seen before
            (off by default: msal reuses one assertion for minutes, and Entra accepts that).
        subject_alt_names: More DNS names for the server certificate.
        config: Registrations and settings from a file (see ``EmulatorConfig``); the other
            arguments win over its settings.

    Raises:
        ValueError: An invalid setting or registration (a tenant id that is not a GUID, a
            token lifetime of 300 s or less, ...).
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
        """The directory and token service behind these methods: registrations, grants,
        signing keys. Prefer the methods here; ``state`` is for what they do not cover."""
        self.faults = FaultPlan()
        """The queued faults: ``emu.faults.add(Fault("token", "status", status=503))``."""
        self.requests = RequestLog()
        """Every request answered (or dropped), e.g. ``emu.requests.count("token")``."""
        self._minter = TokenMinter(self.state)
        self.vault: KeyVault = vault_for(self)
        """The Key Vault data plane, served at ``base_url``; usable before ``start()``."""
        self.managed_identity = ManagedIdentityServer(
            register=self._register_identity,
            issue=lambda app, resource, claims: self._minter.for_identity(
                app, resource, claims=claims
            ),
            middlewares=self.middlewares_for,
        )
        """The managed-identity host (plain HTTP on 127.0.0.1: the App Service and IMDS
        forms); identities can be added before ``start()``."""
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
        track(self)  # so that a test's leak check finds it (aioentra_secret_guard)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        tenant_id: str | None = None,
        domain: str | None = None,
        port: int | None = None,
        token_lifetime: int | None = None,
        refresh_in: int | None = None,
        clock_skew: int | None = None,
        reject_replayed_assertions: bool = False,
        subject_alt_names: Sequence[str] = (),
    ) -> Emulator:
        """An emulator registered from a JSON (or, on Python 3.11+, TOML) file.

        Args:
            path: The registration file (see ``EmulatorConfig``); certificate paths in it
                are relative to its directory.
            tenant_id: Overrides the file's ``tenant_id`` (as every keyword argument here,
                which are those of ``Emulator``, overrides the file's setting).
            domain: Overrides the file's ``domain``.
            port: Overrides the file's ``port``.
            token_lifetime: Overrides the file's ``token_lifetime``.
            refresh_in: Overrides the file's ``refresh_in``.
            clock_skew: Overrides the file's ``clock_skew``.
            reject_replayed_assertions: Refuse replayed client assertions.
            subject_alt_names: More DNS names for the server certificate.

        Raises:
            ValueError: The file is not valid JSON/TOML or describes something invalid (the
                message names the key, e.g. ``emulator.json.apps[0].name: required``).
            OSError: The file (or a certificate it names) cannot be read.
        """
        return cls(
            tenant_id=tenant_id,
            domain=domain,
            port=port,
            token_lifetime=token_lifetime,
            refresh_in=refresh_in,
            clock_skew=clock_skew,
            reject_replayed_assertions=reject_replayed_assertions,
            subject_alt_names=subject_alt_names,
            config=EmulatorConfig.load(path),
        )

    # -- addresses ----------------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        """The default tenant's GUID (the ``tid`` of its tokens)."""
        return self._tenant.tenant_id

    @property
    def domain(self) -> str:
        """The default tenant's domain; it works in place of the GUID in every URL."""
        return self._tenant.domain

    @property
    def base_url(self) -> str:
        """``https://localhost:{port}`` (after ``start()``)."""
        if self.state.base_url is None:
            raise RuntimeError("the emulator is not started")
        return self.state.base_url

    @property
    def port(self) -> int:
        """The HTTPS port it listens on (after ``start()``)."""
        return self.state.port

    @property
    def authority(self) -> str:
        """``{base_url}/{tenant_id}``: the ``authority`` of msal, the tenant's URL for others."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        """The default tenant's v2.0 token endpoint, ``{authority}/oauth2/v2.0/token``."""
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

        Serve a local test API with it (``web.TCPSite(runner, "localhost", port,
        ssl_context=emu.server_ssl_context())``) and clients that trust ``ca_file`` trust the
        API too: one CA for the identity provider, the vault and the API under test.

        Raises:
            RuntimeError: The emulator is not started (the certificate is made by ``start()``).
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
        secret_expires_at: datetime | float | None = None,
        client_id: str | None = None,
        object_id: str | None = None,
    ) -> App:
        """Register a daemon app (a confidential client) and its service principal.

        Args:
            name: The display name.
            secret: ``True`` generates a client secret (``app.secret``), a string registers
                that value, ``False`` registers none.
            certificate: Also register a generated certificate credential
                (``app.certificate``).
            tenant: The home tenant, by GUID or domain (default: the default tenant).
            secret_expires_at: When the secret expires: an aware ``datetime`` or Unix seconds
                (an expired secret is refused with AADSTS7000222); ``None``: never.
            client_id: The application id (default: a new GUID); lower-cased.
            object_id: The service principal's object id, ``oid``/``sub`` of its tokens
                (default: a new GUID); lower-cased.

        Returns:
            The registered app.

        Raises:
            ValueError: An id that is not a GUID or is taken, an unknown tenant, a naive
                ``secret_expires_at`` (no time zone), or ``secret_expires_at`` with
                ``secret=False``.
            TypeError: ``secret_expires_at`` of another type.
        """
        expiry = secret_expiry(secret_expires_at, "secret_expires_at")
        if expiry is not None and secret is False:
            raise ValueError("secret_expires_at needs a secret (secret=True or a value)")
        app = self.state.add_app(
            name, tenant_id=self._tenant_id(tenant), client_id=client_id, object_id=object_id
        )
        if secret is not False:
            self.add_secret(app, secret if isinstance(secret, str) else None, expires_at=expiry)
        if certificate:
            self.add_certificate(app)
        return app

    def remove_app(self, app: App | str) -> None:
        """Unregister ``app`` (or the app with that client id) and its grants.

        Its token requests then fail as an unknown client's (AADSTS700016).
        """
        self.state.remove_app(self._app(app))

    def remove_api(self, api: Api) -> None:
        """Unregister ``api`` and the grants on it (its identifier URI can be reused)."""
        self.state.remove_api(api)

    def consent(self, app: App | str, tenant: str) -> None:
        """Admin consent of a multi-tenant ``app`` in another ``tenant``.

        Consent creates a service principal of the app in that tenant, so that the app gets
        tokens from that tenant's token endpoint too (``tid`` = that tenant), with the same
        credentials. The app keeps its object id. Grant it roles on that tenant's APIs with
        ``grant`` as usual.

        Args:
            app: The app, or its client id.
            tenant: The other tenant, by GUID or domain.

        Raises:
            KeyError: No app with that client id.
            ValueError: An unknown tenant.
        """
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
        """The app or managed identity with this client id and/or object id (both must match
        when both are given; case-insensitive), or ``None``."""
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

    # -- leak checks --------------------------------------------------------------------------
    def known_secrets(self) -> frozenset[str]:
        """Every secret value this emulator knows, for a test that fails on a leaked one.

        The apps' client secrets and generated certificate private keys (PEM), also of apps
        removed since (the last 1024 such values); the Key Vault's secret values (every
        version, soft-deleted ones too); the managed-identity ``IDENTITY_HEADER``; the TLS
        server's private key; the last 256 access tokens minted and client assertions and
        secrets received. A thread-safe snapshot: the pytest plugin's
        ``aioentra_secret_guard`` fails a test whose log records contain any of them.
        """
        values = set(self.state.secret_values())
        values.update(self.vault.secret_values())
        values.add(self.managed_identity.header)
        if self._ca is not None:
            values.add(self._ca.server_key_pem.decode("ascii"))
        return frozenset(values)

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
