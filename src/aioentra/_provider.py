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
import functools
import logging
import os
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from ._authority import AZURE_PUBLIC_CLOUD, Authority, TenantRules, validate_scope
from ._cache import CacheEntry, TokenCache
from ._engine import MsalEngine
from ._errors import AioEntraError, ConfigurationError, InvalidScopeError, ProviderClosedError
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
        if ca_file is not None and not os.path.isfile(ca_file):
            raise ConfigurationError(
                f"ca_file {ca_file!r} does not exist",
                hint="give the path of a PEM file with the CA certificates to trust.",
            )
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
        self._tenants = TenantRules.build(self._authority, additionally_allowed_tenants)
        self._capabilities = tuple(client_capabilities)
        self._retry = retry or RetryPolicy()
        self._refresh = refresh or RefreshPolicy()
        self._max_workers = max_workers
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._trust_env = trust_env
        self._session = _checked_session(session)
        self._owns_session = session is None
        self._engine: MsalEngine | None = None
        self._cache = TokenCache(self._refresh)
        self._valid_scopes: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._session_ready: asyncio.Future[aiohttp.ClientSession] | None = None

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
        # The warm path: one dict lookup and one clock read.
        try:
            entry = self._cache.entries.get(scope)
        except TypeError:
            entry = None  # not hashable: the slow path says what is wrong
        if (
            entry is not None
            and _now() < entry.refresh_at
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            return entry.token  # type: ignore[return-value]
        return await self._get_token(scope, claims or None, tenant_id, force_refresh, None)

    async def renew_token(
        self, scope: str, *, rejected: AccessToken, tenant_id: str | None = None
    ) -> AccessToken:
        """Return a token other than ``rejected`` (which a resource refused with a 401).

        If the cache already holds a newer token it is returned; otherwise one request
        is made, shared by every caller that reports the same rejected token. While the
        key backs off after a failure, the failure is raised instead.
        """
        return await self._get_token(scope, None, tenant_id, False, rejected)

    async def close(self) -> None:
        """Stop background refreshes, worker threads and the owned HTTP session.

        Safe to call more than once and to cancel: the shutdown runs to its end in a
        task of its own, which every call waits for.
        """
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        entries = list(self._cache.entries.values())
        tasks = [e.inflight for e in entries if e.inflight is not None]
        for task in tasks:
            task.cancel()
        if self._engine is not None:
            await self._engine.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._cache.clear()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> TokenProvider:
        self._check_open()
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

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError("this TokenProvider is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ProviderClosedError(
                "this TokenProvider belongs to another event loop",
                hint="create one provider per event loop (asyncio.run() makes a new loop).",
            )

    async def _get_token(
        self,
        scope: str,
        claims: str | None,
        tenant_id: str | None,
        force: bool,
        rejected: AccessToken | None,
    ) -> AccessToken:
        self._check_open()
        entry = self._entry_for(scope, claims, tenant_id)
        now = _now()
        token = entry.token
        usable = entry.usable(now)
        if rejected is not None and token is not None and token.token == rejected.token:
            usable = False
        if usable and not force:
            assert token is not None
            if now >= entry.refresh_at and entry.inflight is None and now >= entry.blocked_until:
                logger.debug("refreshing %s ahead of expiry", entry.scope)
                self._start_request(entry)
            return token
        task = entry.inflight
        if task is None:
            if now < entry.blocked_until and entry.last_error is not None:
                # The key backs off after a failure (or the server's Retry-After): new
                # callers, forced refreshes and renewals included, get that failure.
                raise copy.copy(entry.last_error)
            task = self._start_request(entry)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._closed and not _cancelling():
                raise ProviderClosedError("the TokenProvider was closed") from None
            raise

    def _entry_for(self, scope: str, claims: str | None, tenant_id: str | None) -> CacheEntry:
        if scope not in self._valid_scopes:
            if not isinstance(scope, str):
                raise InvalidScopeError(
                    f"the scope must be a string, got {type(scope).__name__}",
                    hint="pass one '{resource}/.default' string.",
                )
            if validate_scope(scope) != scope:
                raise InvalidScopeError(
                    f"scope {scope!r} has surrounding white space", hint="strip it."
                )
            self._valid_scopes.add(scope)
        return self._cache.entry(scope, self._tenants.resolve(tenant_id), claims)

    def _start_request(self, entry: CacheEntry) -> asyncio.Task[AccessToken]:
        task = asyncio.get_running_loop().create_task(self._request(entry, entry.generation))
        entry.inflight = task
        task.add_done_callback(lambda t: self._request_done(entry, t))
        return task

    @staticmethod
    def _request_done(entry: CacheEntry, task: asyncio.Task[AccessToken]) -> None:
        if entry.inflight is task:
            entry.inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here: background failures are logged, not lost

    async def _request(self, entry: CacheEntry, generation: int) -> AccessToken:
        engine = self._get_engine()
        started = time.monotonic()
        try:
            await self._get_session()
            response = await engine.acquire(entry.scope, claims=entry.claims, tenant=entry.tenant)
        except AioEntraError as error:
            entry.failures += 1
            delay = self._refresh.failure_delay(entry.failures, error.retry_after)
            entry.blocked_until = _now() + delay
            entry.last_error = error
            logger.warning(
                "token request for %s failed (%s%s); next attempt in %.1fs%s",
                entry.scope,
                error.error or type(error).__name__,
                f", codes {list(error.error_codes)}" if error.error_codes else "",
                delay,
                ", serving the cached token meanwhile" if entry.usable(_now()) else "",
            )
            raise
        entry.failures = 0
        entry.blocked_until = 0.0
        entry.last_error = None
        token = self._cache.store(
            entry,
            access_token=response.access_token,
            token_type=response.token_type,
            issued_at=response.issued_at,
            expires_in=response.expires_in,
            refresh_in=response.refresh_in,
            generation=generation,
        )
        logger.debug(
            "got a token for %s in %.3fs, valid %.0fs",
            entry.scope,
            time.monotonic() - started,
            response.expires_in,
        )
        return token

    def _get_engine(self) -> MsalEngine:
        if self._engine is None:
            loop = asyncio.get_running_loop()
            authority = self._authority
            insecure = None if authority.is_https else urlsplit(authority.host).netloc
            transport = LoopTransport(
                loop,
                self._get_session,
                attempt_timeout=self._retry.attempt_timeout,
                insecure_origin=insecure,
            )
            self._engine = MsalEngine(
                credential=self._credential,
                client_id=self._client_id,
                authority=authority,
                transport=transport,
                loop=loop,
                policy=self._retry,
                max_workers=self._max_workers,
                client_capabilities=self._capabilities,
            )
        return self._engine

    async def _get_session(self) -> aiohttp.ClientSession:
        """The session for token requests, created once (its TLS context read off the loop).

        Awaited before a request is handed to a worker thread, never from one: creating
        it uses a worker thread, which a waiting worker would otherwise deadlock on.
        """
        if self._session is not None:
            return self._session
        if self._closed:
            raise ProviderClosedError("this TokenProvider is closed; create a new one")
        if self._session_ready is None:
            self._session_ready = asyncio.ensure_future(self._create_session())
        return await asyncio.shield(self._session_ready)

    async def _create_session(self) -> aiohttp.ClientSession:
        context = self._ssl_context
        if context is None:
            # Reading the CA bundle is disk I/O: not on the event loop, and in the
            # provider's own threads, which close() ends.
            try:
                context = await self._get_engine().run_blocking(
                    functools.partial(ssl.create_default_context, cafile=self._ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(
                    f"ca_file {self._ca_file!r} could not be loaded: {type(exc).__name__}",
                    hint="give a readable PEM file with the CA certificates to trust.",
                ) from None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=self._max_workers * 2),
            trust_env=self._trust_env,
        )
        return self._session


def _checked_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    """Refuse a session that would send its own credentials to the identity provider."""
    if session is not None and (
        session.auth is not None or any(name.lower() == "authorization" for name in session.headers)
    ):
        raise ConfigurationError(
            "the session passed to TokenProvider has default credentials",
            hint="its Authorization header or auth would go to the token endpoint: pass a "
            "session without them (or none, and the provider makes its own).",
        )
    return session


def _cancelling() -> int:
    """How many cancellations the current task has pending (0 on Python 3.10)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0
