"""TokenProvider: the cache, single-flight requests and refresh-ahead for app-only tokens.

Rules implemented:

* **Warm hits are O(1)**: a dict lookup and a clock read on the event loop, no
  thread hop and no lock.
* **Single-flight**: per key (scope, tenant, claims) at most one token request is
  in flight; every caller awaits the same task through ``asyncio.shield``, so a
  cancelled caller never cancels the request for the others.
* **Refresh-ahead**: after ``refresh_in`` (or a jittered fraction of the lifetime)
  a caller triggers a background refresh and keeps the current token; while the
  refresh fails and the token is still valid, callers keep getting it.
* **Per-key backoff**: after a failure the key waits before its next request, so a
  failing identity provider is not hammered by new callers.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from ._authority import AZURE_PUBLIC_CLOUD, Authority, validate_scope
from ._engine import MsalEngine, TokenResponse
from ._errors import AioEntraError, ConfigurationError
from ._policy import RefreshPolicy, RetryPolicy
from ._token import AccessToken
from ._transport import LoopTransport
from .credentials import AssertionCredential, Credential, SecretCredential

if TYPE_CHECKING:
    from types import TracebackType

    from ._azure import AzureCredential

__all__ = ["TokenProvider"]

logger = logging.getLogger("aioentra")
_now = time.time


class _KeyState:
    """Everything the provider knows about one cache key."""

    __slots__ = (
        "blocked_until",
        "claims",
        "failures",
        "inflight",
        "last_error",
        "refresh_at",
        "scope",
        "tenant",
        "token",
    )

    def __init__(self, scope: str, tenant: str | None, claims: str | None) -> None:
        self.scope = scope
        self.tenant = tenant
        self.claims = claims
        self.token: AccessToken | None = None
        self.refresh_at = 0.0
        self.inflight: asyncio.Task[AccessToken] | None = None
        self.failures = 0
        self.blocked_until = 0.0
        self.last_error: AioEntraError | None = None


class TokenProvider:
    """Gets, caches and refreshes app-only tokens for one app (client id) in one tenant.

    >>> async with TokenProvider(ClientSecret(secret), tenant_id=tid, client_id=cid) as p:
    ...     token = await p.get_token("api://my-api/.default")  # doctest: +SKIP

    The constructor validates everything and does no I/O. The first request opens an
    aiohttp session (or uses ``session``) and a small pool of worker threads for msal;
    :meth:`close` ends both.
    """

    def __init__(
        self,
        credential: Credential,
        *,
        tenant_id: str | None = None,
        client_id: str,
        authority: str = AZURE_PUBLIC_CLOUD,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        additionally_allowed_tenants: Iterable[str] = (),
        client_capabilities: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        refresh: RefreshPolicy | None = None,
        max_workers: int = 4,
        trust_env: bool = True,
    ) -> None:
        if not isinstance(credential, (SecretCredential, AssertionCredential)):
            raise ConfigurationError(
                f"{type(credential).__name__} is not a credential",
                hint="use ClientSecret, Certificate, ClientAssertion, or an object with "
                "get_secret() or get_assertion(context).",
            )
        client_id = (client_id or "").strip()
        if not client_id or any(c.isspace() or c == "/" for c in client_id):
            raise ConfigurationError(
                "client_id is missing or malformed",
                hint="set AZURE_CLIENT_ID to the app's Application (client) ID.",
            )
        if ssl_context is not None and ca_file is not None:
            raise ConfigurationError("pass ca_file or ssl_context, not both")
        if max_workers < 1:
            raise ConfigurationError("max_workers must be at least 1")
        self._authority = Authority.parse(
            authority,
            tenant_id,
            allow_insecure_http=allow_insecure_http,
            secret_credential=isinstance(credential, SecretCredential),
        )
        self._credential = credential
        self._client_id = client_id
        self._allowed_tenants = frozenset(t.lower() for t in additionally_allowed_tenants)
        self._capabilities = tuple(client_capabilities)
        self._retry = retry or RetryPolicy()
        self._refresh = refresh or RefreshPolicy()
        self._max_workers = max_workers
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._trust_env = trust_env
        self._session = session
        self._owns_session = session is None
        self._engine: MsalEngine | None = None
        self._states: dict[Any, _KeyState] = {}
        self._valid_scopes: set[str] = set()
        self._closed = False

    # -- public API ----------------------------------------------------------------------------

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> TokenProvider:
        """Build from azure-identity's variables (``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ...)."""
        from ._config import Settings

        return Settings.from_environment(environ).provider(**kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> TokenProvider:
        """Build from msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd``)."""
        from ._config import Settings

        return Settings.from_file(path).provider(**kwargs)

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def tenant_id(self) -> str:
        return self._authority.tenant

    @property
    def authority(self) -> str:
        """The tenanted authority URL, e.g. ``https://login.microsoftonline.com/{tenant}``."""
        return self._authority.url

    async def get_token(
        self,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        """Return a valid token for ``scope`` (one ``{resource}/.default``).

        ``claims`` answers a claims challenge (CAE); the token is then cached for
        those claims and also replaces the plain token for ``scope``.
        ``force_refresh`` skips the cache (joining a request already in flight).
        """
        # The warm path: one dict lookup and one clock read. ``refresh_at`` is 0 until a
        # token is stored, so a future ``refresh_at`` implies a token.
        state = self._states.get(scope)
        if (
            state is not None
            and _now() < state.refresh_at
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            return state.token  # type: ignore[return-value]
        return await self._get_token(scope, claims, tenant_id, force_refresh, None)

    async def renew_token(
        self, scope: str, *, rejected: AccessToken, tenant_id: str | None = None
    ) -> AccessToken:
        """Return a token other than ``rejected`` (which a resource refused with a 401).

        If the cache already holds a newer token it is returned; otherwise one request
        is made, shared by every caller that reports the same rejected token.
        """
        return await self._get_token(scope, None, tenant_id, False, rejected)

    async def close(self) -> None:
        """Stop background refreshes, worker threads and the owned HTTP session."""
        if self._closed:
            return
        self._closed = True
        tasks = [s.inflight for s in self._states.values() if s.inflight is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._states.clear()
        if self._engine is not None:
            await self._engine.close()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> TokenProvider:
        if self._closed:
            raise ConfigurationError("this TokenProvider is closed; create a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def as_azure_credential(self) -> AzureCredential:
        """An azure-core ``AsyncTokenCredential`` view, for any async Azure SDK client."""
        from ._azure import AzureCredential

        return AzureCredential(self)

    def __repr__(self) -> str:
        return (
            f"TokenProvider(client_id={self._client_id!r}, authority={self._authority.url!r}, "
            f"credential={self._credential!r})"
        )

    # -- the slow path -------------------------------------------------------------------------

    async def _get_token(
        self,
        scope: str,
        claims: str | None,
        tenant_id: str | None,
        force: bool,
        rejected: AccessToken | None,
    ) -> AccessToken:
        if self._closed:
            raise ConfigurationError("this TokenProvider is closed; create a new one")
        state = self._state_for(scope, claims, tenant_id)
        now = time.time()
        token = state.token
        usable = token is not None and now < token.expires_on - self._refresh.expiry_margin
        if rejected is not None and token is not None and token.token == rejected.token:
            usable = False
        if usable and not force:
            assert token is not None
            if now >= state.refresh_at and state.inflight is None and now >= state.blocked_until:
                logger.debug("refreshing %s ahead of expiry", state.scope)
                self._start_request(state)
            return token
        if state.inflight is None:
            if not force and rejected is None and now < state.blocked_until:
                assert state.last_error is not None
                raise copy.copy(state.last_error)
            self._start_request(state)
        assert state.inflight is not None
        return await asyncio.shield(state.inflight)

    def _state_for(self, scope: str, claims: str | None, tenant_id: str | None) -> _KeyState:
        if scope not in self._valid_scopes:
            if validate_scope(scope) != scope:
                raise ConfigurationError(
                    f"scope {scope!r} has surrounding white space", hint="strip it."
                )
            self._valid_scopes.add(scope)
        tenant = self._check_tenant(tenant_id)
        key: Any = scope if claims is None and tenant is None else (scope, tenant, claims)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _KeyState(scope, tenant, claims)
        return state

    def _check_tenant(self, tenant_id: str | None) -> str | None:
        own = self._authority.tenant
        if tenant_id is None or tenant_id.lower() == own.lower():
            if own.lower() == "organizations":
                raise ConfigurationError(
                    "the 'organizations' authority needs a tenant per request",
                    hint="pass tenant_id= with each get_token() call (the customer's tenant).",
                )
            return None
        if own.lower() == "organizations" or "*" in self._allowed_tenants:
            return Authority(self._authority.host, own).with_tenant(tenant_id).tenant
        if tenant_id.lower() not in self._allowed_tenants:
            raise ConfigurationError(
                f"tenant {tenant_id!r} is not allowed for this provider",
                hint="add it to additionally_allowed_tenants (or '*' for any tenant).",
            )
        return tenant_id

    def _start_request(self, state: _KeyState) -> None:
        task = asyncio.get_running_loop().create_task(self._request(state))
        state.inflight = task
        task.add_done_callback(lambda t: self._request_done(state, t))

    def _request_done(self, state: _KeyState, task: asyncio.Task[AccessToken]) -> None:
        if state.inflight is task:
            state.inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here: background failures are logged, not lost

    async def _request(self, state: _KeyState) -> AccessToken:
        engine = self._get_engine()
        started = time.monotonic()
        try:
            response = await engine.acquire(state.scope, claims=state.claims, tenant=state.tenant)
        except AioEntraError as error:
            state.failures += 1
            delay = self._refresh.failure_delay(state.failures, error.retry_after)
            state.blocked_until = time.time() + delay
            state.last_error = error
            has_token = state.token is not None and time.time() < state.token.expires_on
            logger.warning(
                "token request for %s failed (%s%s); next attempt in %.1fs%s",
                state.scope,
                error.error or type(error).__name__,
                f", codes {list(error.error_codes)}" if error.error_codes else "",
                delay,
                ", serving the cached token meanwhile" if has_token else "",
            )
            raise
        token = self._store(state, response)
        logger.debug(
            "got a token for %s in %.3fs, valid %.0fs",
            state.scope,
            time.monotonic() - started,
            response.expires_in,
        )
        return token

    def _store(self, state: _KeyState, response: TokenResponse) -> AccessToken:
        token = AccessToken(
            token=response.access_token,
            expires_on=response.issued_at + response.expires_in,
            refresh_on=self._refresh.refresh_at(
                response.issued_at, response.expires_in, response.refresh_in
            ),
            scope=state.scope,
            token_type=response.token_type,
        )
        state.token = token
        state.refresh_at = token.refresh_on
        state.failures = 0
        state.blocked_until = 0.0
        state.last_error = None
        if state.claims is not None:
            # A token issued for a claims challenge supersedes the plain one, which the
            # resource has just refused.
            plain: Any = state.scope if state.tenant is None else (state.scope, state.tenant, None)
            base = self._states.get(plain)
            if base is not None:
                base.token = token
                base.refresh_at = token.refresh_on
        return token

    def _get_engine(self) -> MsalEngine:
        if self._engine is None:
            loop = asyncio.get_running_loop()
            authority = self._authority
            insecure = None if authority.is_https else urlsplit(authority.host).netloc
            transport = LoopTransport(
                loop, self._get_session, self._retry, insecure_origin=insecure
            )
            self._engine = MsalEngine(
                credential=self._credential,
                client_id=self._client_id,
                authority=authority,
                transport=transport,
                loop=loop,
                max_workers=self._max_workers,
                client_capabilities=self._capabilities,
            )
        return self._engine

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise ConfigurationError("this TokenProvider is closed; create a new one")
            context = self._ssl_context
            if context is None:
                context = ssl.create_default_context(cafile=self._ca_file)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=self._max_workers * 2),
                trust_env=self._trust_env,
            )
        return self._session
