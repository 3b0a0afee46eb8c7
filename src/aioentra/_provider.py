"""TokenProvider: the warm path, the lifecycle, and the msal engine behind a single-flight cell.

* **Warm hits are O(1)**: a dict lookup and a monotonic clock read on the event loop, no
  thread hop and no lock.
* **Everything else is the cell's** (:mod:`aioentra._flight`): one request in flight per key
  (scope, tenant, claims), refresh-ahead with the current token served meanwhile, callers
  waiting together past the usable window, per-key back-off, the renewal limit.
* **The fetch** is one token request through :class:`~aioentra._engine.MsalEngine`, bounded
  by ``RetryPolicy.total_timeout``, with one reload-and-retry when the token endpoint says the
  credential is stale (:data:`~aioentra.credentials.RELOAD_CODES`).
* **Lifecycle**: entering the provider starts its credential; :meth:`TokenProvider.close`
  ends every task, thread and session the provider or its credential started.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, cast
from urllib.parse import urlsplit

import aiohttp

from ._authority import AZURE_PUBLIC_CLOUD, Authority, TenantRules, validate_scope
from ._engine import MsalEngine
from ._errors import (
    AioEntraError,
    ConfigurationError,
    CredentialRejectedError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    InvalidScopeError,
    ProviderClosedError,
    raises_cleanly,
)
from ._flight import Clock, Fetched, Flight, Reason, SystemClock
from ._policy import RefreshPolicy, RetryPolicy
from ._token import AccessToken, TokenResponse
from ._transport import LoopTransport
from ._workers import WorkerPool
from .credentials import RELOAD_CODES, Credential, ReloadReason
from .credentials._base import close_credential, reload_credential, start_credential

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Unpack

    from ._azure import AzureCredential

__all__ = ["ProviderOptions", "TokenProvider"]

logger = logging.getLogger("aioentra.provider")
T = TypeVar("T")
_monotonic = time.monotonic
_NOTHING: dict[Any, Any] = {}
"""The warm path's view once the provider's loop has shut down (never written to)."""

MAX_CLAIMS_ENTRIES = 64
"""Tokens kept for claims challenges: each CAE challenge carries new claims, and a long-lived
daemon must not keep one entry per challenge forever."""

MAX_CLAIMS_LENGTH = 16 * 1024
"""Longest claims JSON accepted (real CAE challenges carry a few hundred bytes)."""

Key = Hashable
"""A scope (default tenant, no claims: the warm path's key) or ``(scope, tenant, claims)``."""


class ProviderOptions(TypedDict, total=False):
    """The keyword options of :class:`TokenProvider` that configuration files do not set."""

    ca_file: str | None
    ssl_context: ssl.SSLContext | None
    session: aiohttp.ClientSession | None
    allow_insecure_http: bool
    additionally_allowed_tenants: Iterable[str]
    client_capabilities: Sequence[str]
    retry: RetryPolicy | None
    refresh: RefreshPolicy | None
    max_workers: int
    trust_env: bool
    close_credential: bool
    clock: Clock | None


class TokenProvider:
    """Gets, caches and refreshes app-only tokens for one app (client id) in one tenant.

    >>> async with TokenProvider(ClientSecret(secret), tenant_id=tid, client_id=cid) as p:
    ...     token = await p.get_token("api://my-api/.default")  # doctest: +SKIP

    The constructor validates everything and does no I/O. Entering the provider (or its first
    token request) starts the credential; the first request opens an aiohttp session (or uses
    ``session``) and a few worker threads for msal. :meth:`close` ends all of them, and closes
    the credential too unless ``close_credential=False`` (for a credential shared with others).

    ``clock`` replaces the clocks every due time is read from (a
    :class:`~aioentra.testing.ManualClock` in tests).
    """

    # Slots: attribute loads on the warm path stay the fastest kind (and a typo fails loudly).
    __slots__ = (
        "_authority",
        "_ca_file",
        "_capabilities",
        "_claims_keys",
        "_client_id",
        "_clock",
        "_close_credential",
        "_closed",
        "_closing",
        "_credential",
        "_engine",
        "_flight",
        "_guard",
        "_lookup",
        "_loop",
        "_loop_alive",
        "_max_workers",
        "_owns_session",
        "_refresh",
        "_reloading",
        "_retry",
        "_session",
        "_session_ready",
        "_ssl_context",
        "_started",
        "_tenants",
        "_transport",
        "_trust_env",
        "_valid_scopes",
        "_workers",
    )

    def __new__(cls, *args: Any, clock: Clock | None = None, **kwargs: Any) -> TokenProvider:
        # An injected clock gets the subclass whose warm path reads it; the default warm path
        # reads time.monotonic as a module global, about 40 ns cheaper than an attribute's.
        chosen = _ClockedTokenProvider if clock is not None and cls is TokenProvider else cls
        return super().__new__(chosen)

    @raises_cleanly
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
        close_credential: bool = True,
        clock: Clock | None = None,
    ) -> None:
        _check_credential(credential)
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError(
                "client_id is missing",
                hint="set AZURE_CLIENT_ID to the app's Application (client) ID.",
            )
        client_id = client_id.strip()
        if any(c.isspace() or c == "/" or not c.isprintable() for c in client_id):
            raise ConfigurationError(
                "client_id is malformed",
                hint="set AZURE_CLIENT_ID to the app's Application (client) ID.",
            )
        if ssl_context is not None and ca_file is not None:
            raise ConfigurationError("pass ca_file or ssl_context, not both")
        if ssl_context is not None:
            _check_verifying(ssl_context, "ssl_context")
        if ca_file is not None and (not isinstance(ca_file, str) or not os.path.isfile(ca_file)):
            raise ConfigurationError(
                f"ca_file {ca_file!r} does not exist",
                hint="give the path of a PEM file with the CA certificates to trust.",
            )
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigurationError("max_workers must be an int of at least 1")
        if isinstance(client_capabilities, str) or isinstance(additionally_allowed_tenants, str):
            raise ConfigurationError(
                "client_capabilities and additionally_allowed_tenants take lists of strings",
                hint="e.g. client_capabilities=['CP1'], additionally_allowed_tenants=['*'].",
            )
        for name, value, kind in (
            ("retry", retry, RetryPolicy),
            ("refresh", refresh, RefreshPolicy),
        ):
            if value is not None and not isinstance(value, kind):
                raise ConfigurationError(f"{name} must be a {kind.__name__}")
        if clock is not None and not (
            callable(getattr(clock, "monotonic", None)) and callable(getattr(clock, "time", None))
        ):
            raise ConfigurationError("clock must have monotonic() and time() methods")
        kinds = getattr(credential, "proof_kinds", None)
        self._authority = Authority.parse(
            authority,
            tenant_id,
            allow_insecure_http=allow_insecure_http,
            secret_credential=kinds is None or "client_secret" in kinds,
        )
        self._credential = credential
        self._close_credential = close_credential
        self._client_id = client_id
        self._tenants = TenantRules.build(self._authority, additionally_allowed_tenants)
        self._capabilities = tuple(client_capabilities)
        self._retry = retry or RetryPolicy()
        self._refresh = refresh or RefreshPolicy()
        self._clock: Clock = clock or SystemClock()
        self._max_workers = max_workers
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._trust_env = trust_env
        self._session = _checked_session(session)
        self._owns_session = session is None
        self._workers = WorkerPool(max_workers, name="aioentra-msal")
        self._transport: LoopTransport | None = None
        self._engine: MsalEngine | None = None
        self._flight: Flight[Key, AccessToken] = Flight(
            self._fetch,
            policy=self._refresh,
            clock=self._clock,
            observer=_Log(self),
            same=_same_token,
            closed_error=lambda: ProviderClosedError("the TokenProvider was closed"),
        )
        self._lookup = self._flight.slots.get  # the warm path's dict lookup, pre-bound
        self._claims_keys: OrderedDict[Key, None] = OrderedDict()
        self._valid_scopes: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_alive = False
        self._guard: AsyncGenerator[None, None] | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._session_ready: asyncio.Future[aiohttp.ClientSession] | None = None
        self._reloading: asyncio.Task[bool] | None = None

    # -- public API ----------------------------------------------------------------------------

    @classmethod
    @raises_cleanly
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[ProviderOptions]
    ) -> TokenProvider:
        """Build from azure-identity's variables (``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ...)."""
        from ._config import Settings

        return Settings.from_environment(environ).provider(**options)

    @classmethod
    @raises_cleanly
    def from_file(
        cls, path: str | os.PathLike[str], **options: Unpack[ProviderOptions]
    ) -> TokenProvider:
        """Build from msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd``)."""
        from ._config import Settings

        return Settings.from_file(path).provider(**options)

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

    @property
    def credential(self) -> Credential:
        return self._credential

    async def get_token(
        self,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        """Return a valid token for ``scope`` (one ``{resource}/.default``).

        ``claims`` answers a claims challenge (CAE); the token is then cached for those claims
        and also replaces the plain token for ``scope``. A new claims challenge for a scope is
        answered at most once per ``RefreshPolicy.renewal_interval``; within it the newest
        token is returned. ``force_refresh`` skips the cache (joining a request already in
        flight).
        """
        # The warm path: one dict lookup and one clock read. (Once the provider's loop has shut
        # down, _lookup finds nothing, so a provider carried into another loop takes the slow
        # path, which refuses it: see _bind.)
        try:
            slot = self._lookup(scope)
        except TypeError:
            slot = None  # not hashable: the slow path says what is wrong
        if (
            slot is not None
            and _monotonic() < slot.fresh_until  # a module global: the cheapest call there is
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            return slot.value
        return await self._get_token(scope, claims, tenant_id, force_refresh, None)

    async def renew_token(
        self, scope: str, *, rejected: AccessToken, tenant_id: str | None = None
    ) -> AccessToken:
        """Return a token other than ``rejected`` (which a resource refused with a 401).

        If the cache already holds a newer token it is returned; otherwise one request is
        made, shared by every caller that reports the same rejected token. Renewals are
        limited to one per ``RefreshPolicy.renewal_interval`` per key: within it, the current
        token is returned. While the key backs off after a failure, the failure is raised.
        """
        if not isinstance(rejected, AccessToken):
            raise ConfigurationError("renew_token(rejected=) takes the AccessToken that failed")
        return await self._get_token(scope, None, tenant_id, False, rejected)

    async def close(self) -> None:
        """Stop background refreshes, worker threads, the owned HTTP session and credential.

        Safe to call more than once and to cancel: the shutdown runs to its end in a task of
        its own, which every call waits for.
        """
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        if self._transport is not None:
            self._transport.cancel_pending()  # releases worker threads waiting on the loop
        reloading = self._reloading
        if reloading is not None:
            reloading.cancel()
        await self._flight.close()
        left = await self._workers.close()
        if left:
            logger.warning(
                "%d aioentra worker thread(s) still busy in a credential call at close(); "
                "they end when that call returns",
                left,
            )
        if reloading is not None:
            await asyncio.gather(reloading, return_exceptions=True)
        if self._started is not None and not self._started.done():
            self._started.cancel()
        if self._close_credential:
            try:
                await close_credential(self._credential)
            except Exception as exc:  # a credential's own close failing must not stop ours
                logger.warning("closing %r failed: %s", self._credential, type(exc).__name__)
        self._claims_keys.clear()
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> TokenProvider:
        await self._check_open()
        await self._ensure_started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.close()

    def as_azure_credential(self) -> AzureCredential:
        """An azure-core ``AsyncTokenCredential`` view, for any async Azure SDK client."""
        from ._azure import AzureCredential

        return AzureCredential(self)

    def __repr__(self) -> str:
        authority = getattr(self, "_authority", None)
        return (
            f"TokenProvider(client_id={getattr(self, '_client_id', None)!r}, "
            f"authority={authority.url if authority is not None else None!r}, "
            f"credential={getattr(self, '_credential', None)!r})"
        )

    # -- the slow path -------------------------------------------------------------------------

    async def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError("this TokenProvider is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            await self._bind()
        elif self._loop is not loop or not self._loop_alive:
            raise ProviderClosedError(
                "this TokenProvider belongs to another event loop",
                hint="create one provider per event loop (asyncio.run() makes a new loop).",
            )

    async def _bind(self) -> None:
        """Tie the provider to this loop, and its warm path to the loop's life.

        The warm path makes no loop check of its own (``asyncio.get_running_loop()`` would
        cost it about 190 ns on CPython 3.11, a thread-id compare about 35 ns). Instead, when
        the loop shuts down its async generators (``asyncio.run`` does), the guard below
        empties the warm path's view, so a provider carried into a later loop takes the slow
        path at once, which refuses it. Used from a loop in another thread while its own loop
        runs, a provider hands out cached tokens (a read of immutable values) and refuses
        everything else.
        """
        self._loop_alive = True

        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                self._loop_alive = False
                self._lookup = _NOTHING.get

        self._guard = guard()
        await self._guard.__anext__()

    async def _get_token(
        self,
        scope: str,
        claims: str | None,
        tenant_id: str | None,
        force: bool,
        rejected: AccessToken | None,
    ) -> AccessToken:
        await self._check_open()
        self._check_scope(scope)
        if claims is not None and (
            not isinstance(claims, str) or not claims.strip() or len(claims) > MAX_CLAIMS_LENGTH
        ):
            raise ConfigurationError(
                "claims must be a non-empty JSON string of at most "
                f"{MAX_CLAIMS_LENGTH} characters, or None"
            )
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise ConfigurationError("tenant_id must be a string, or None")
        tenant = self._tenants.resolve(tenant_id)
        plain = _key(scope, tenant, None)
        if claims is not None:
            key = _key(scope, tenant, claims)
            self._remember_claims(key)
            return await self._flight.renew(key, budget=("claims", plain), fallback=plain)
        if rejected is not None:
            return await self._flight.renew(plain, rejected)
        return await self._flight.get(plain, force=force)

    def _check_scope(self, scope: object) -> None:
        if isinstance(scope, str) and scope in self._valid_scopes:
            return
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

    def _remember_claims(self, key: Key) -> None:
        keys = self._claims_keys
        if key in keys:
            keys.move_to_end(key)
            return
        keys[key] = None
        while len(keys) > MAX_CLAIMS_ENTRIES:
            oldest = next(iter(keys))
            if not self._flight.discard(oldest):
                break  # in use: keep it (and the rest) for now
            del keys[oldest]

    # -- the fetch: one token request ------------------------------------------------------------

    async def _fetch(self, key: Key) -> Fetched[AccessToken]:
        scope, tenant, claims = _unkey(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry.total_timeout
        clock = self._clock
        started, wall = clock.monotonic(), clock.time()
        await self._within(deadline, self._ensure_started(), "starting the credential")
        await self._within(deadline, self._get_session(), "opening the session")
        engine = self._get_engine()
        try:
            response = await engine.acquire(scope, claims=claims, tenant=tenant, deadline=deadline)
        except CredentialRejectedError as error:
            if not RELOAD_CODES.intersection(error.error_codes):
                raise
            if not await self._within(deadline, self._reload(error), "reloading the credential"):
                raise
            logger.info(
                "the token endpoint rejected %r (codes %s); it reloaded, trying once more",
                self._credential,
                list(error.error_codes),
            )
            response = await engine.acquire(scope, claims=claims, tenant=tenant, deadline=deadline)
        fetched = self._fetched(scope, response, started, wall)
        if claims is not None:
            # The resource refused the plain token with this challenge: the claims token
            # supersedes it.
            self._flight.put(_key(scope, tenant, None), fetched)
        return fetched

    def _fetched(
        self, scope: str, response: TokenResponse, started: float, wall: float
    ) -> Fetched[AccessToken]:
        refresh_after, usable_for = self._refresh.windows(response.expires_in, response.refresh_in)
        token = AccessToken(
            token=response.access_token,
            expires_on=wall + response.expires_in,
            refresh_on=wall + refresh_after,
            scope=scope,
            token_type="Bearer",
        )
        return Fetched(token, started + refresh_after, started + usable_for)

    async def _within(self, deadline: float, work: Awaitable[T], what: str) -> T:
        """``work`` by the request's deadline; shielded, since others may share it."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(asyncio.shield(work), max(0.0, remaining))
        except asyncio.TimeoutError:
            raise IdentityProviderUnavailableError(
                "the token request did not finish within RetryPolicy.total_timeout "
                f"({self._retry.total_timeout:g}s)",
                hint=f"{what} took too long.",
            ) from None

    async def _reload(self, error: AioEntraError) -> bool:
        """Ask the credential to reload (one reload at a time, shared by every key)."""
        task = self._reloading
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run_reload(error))
            self._reloading = task

            def done(finished: asyncio.Task[bool]) -> None:
                if self._reloading is finished:
                    self._reloading = None

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _run_reload(self, error: AioEntraError) -> bool:
        try:
            return await reload_credential(self._credential, ReloadReason.from_error(error))
        except Exception as exc:
            logger.warning(
                "reloading %r after a rejection failed: %s", self._credential, type(exc).__name__
            )
            return False

    async def _ensure_started(self) -> None:
        """Start the credential once; a failed start is tried again by the next request."""
        started = self._started
        if started is None:
            started = self._started = asyncio.ensure_future(self._start_credential())
        try:
            await asyncio.shield(started)
        except Exception:
            if self._started is started:
                self._started = None
            raise

    async def _start_credential(self) -> None:
        try:
            await start_credential(self._credential)
        except AioEntraError:
            raise
        except Exception as exc:
            raise CredentialUnavailableError(
                f"starting {self._credential!r} failed: {type(exc).__name__}",
                hint="the credential could not load its material; see its documentation.",
            ) from None

    def _get_engine(self) -> MsalEngine:
        if self._engine is None:
            loop = asyncio.get_running_loop()
            authority = self._authority
            insecure = None if authority.is_https else urlsplit(authority.host).netloc
            self._transport = LoopTransport(
                loop,
                self._get_session,
                attempt_timeout=self._retry.attempt_timeout,
                insecure_origin=insecure,
            )
            self._engine = MsalEngine(
                credential=self._credential,
                client_id=self._client_id,
                authority=authority,
                transport=self._transport,
                workers=self._workers,
                loop=loop,
                policy=self._retry,
                client_capabilities=self._capabilities,
            )
        return self._engine

    async def _get_session(self) -> aiohttp.ClientSession:
        """The session for token requests, created once (its TLS context read off the loop).

        Awaited before a request is handed to a worker thread, never from one: creating it
        uses a worker thread, which a waiting worker would otherwise deadlock on.
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
            # Reading the CA bundle is disk I/O: not on the event loop, and in the provider's
            # own threads, which close() ends.
            try:
                context = await self._workers.run(
                    functools.partial(ssl.create_default_context, cafile=self._ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                self._session_ready = None
                raise ConfigurationError(
                    f"ca_file {self._ca_file!r} could not be loaded: {type(exc).__name__}",
                    hint="give a readable PEM file with the CA certificates to trust.",
                ) from None
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=self._max_workers * 2),
            trust_env=self._trust_env,
        )
        return self._session


class _ClockedTokenProvider(TokenProvider):
    """A :class:`TokenProvider` built with ``clock=``: its warm path reads that clock."""

    __slots__ = ()

    async def get_token(
        self,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        try:
            slot = self._lookup(scope)
        except TypeError:
            slot = None
        if (
            slot is not None
            and self._clock.monotonic() < slot.fresh_until
            and claims is None
            and tenant_id is None
            and not force_refresh
        ):
            return slot.value
        return await self._get_token(scope, claims, tenant_id, force_refresh, None)


class _Log:
    """The cell's observer: what the provider's fetches did, in the provider's log."""

    __slots__ = ("_provider",)

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def fetched(self, key: Key, reason: Reason, seconds: float) -> None:
        scope, tenant, claims = _unkey(key)
        logger.debug(
            "got a token for %s (client %s, tenant %s%s) in %.3fs: %s",
            scope,
            self._provider.client_id,
            tenant or self._provider.tenant_id,
            ", with claims" if claims else "",
            seconds,
            reason.value,
        )

    def failed(
        self, key: Key, reason: Reason, error: Exception, backoff: float, serving: bool
    ) -> None:
        scope, tenant, _ = _unkey(key)
        code = getattr(error, "error", None) or type(error).__name__
        codes = getattr(error, "error_codes", ())
        correlation = getattr(error, "correlation_id", None)
        logger.warning(
            "token request for %s (client %s, tenant %s) failed: %s%s%s; no new request for "
            "this token for %.1fs%s",
            scope,
            self._provider.client_id,
            tenant or self._provider.tenant_id,
            code,
            f", codes {list(codes)}" if codes else "",
            f", correlation id {correlation}" if correlation else "",
            backoff,
            ", serving the cached token meanwhile" if serving else "",
        )


def _key(scope: str, tenant: str | None, claims: str | None) -> Key:
    return scope if claims is None and tenant is None else (scope, tenant, claims)


def _unkey(key: Key) -> tuple[str, str | None, str | None]:
    if isinstance(key, str):
        return key, None, None
    return cast("tuple[str, str | None, str | None]", key)


def _same_token(a: AccessToken, b: AccessToken) -> bool:
    return a.token == b.token


def _check_credential(credential: object) -> None:
    if isinstance(credential, Credential):
        return
    legacy = hasattr(credential, "get_secret") or hasattr(credential, "get_assertion")
    raise ConfigurationError(
        f"{type(credential).__name__} is not a credential",
        hint=(
            "a credential has get_proof(context) returning Proof.secret(...) or "
            "Proof.assertion(...); wrap a secret in ClientSecret and an assertion callable in "
            "ClientAssertion."
            if legacy
            else "use ClientSecret, Certificate, ClientAssertion, ManagedIdentityAssertion, or "
            "an object with get_proof(context)."
        ),
    )


def _checked_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    """Refuse a session that would send its own credentials to the identity provider, or send
    ours without verifying TLS."""
    if session is None:
        return None
    if not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError("session must be an aiohttp.ClientSession")
    if session.auth is not None or any(name.lower() == "authorization" for name in session.headers):
        raise ConfigurationError(
            "the session passed to TokenProvider has default credentials",
            hint="its Authorization header or auth would go to the token endpoint: pass a "
            "session without them (or none, and the provider makes its own).",
        )
    # aiohttp keeps the connector's TLS setting private; read it defensively.
    verify = getattr(session.connector, "_ssl", True)
    if verify is False:  # (an aiohttp.Fingerprint pins the certificate: that verifies too)
        raise ConfigurationError(
            "the session passed to TokenProvider does not verify TLS certificates",
            hint="the client secret or assertion would go to an unverified server: use a "
            "session whose connector verifies (ssl=True or a verifying SSLContext).",
        )
    if isinstance(verify, ssl.SSLContext):
        _check_verifying(verify, "the session's SSL context")
    return session


def _check_verifying(context: object, what: str) -> None:
    if not isinstance(context, ssl.SSLContext):
        raise ConfigurationError(f"{what} must be an ssl.SSLContext")
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ConfigurationError(
            f"{what} does not verify certificates and host names",
            hint="TLS verification is never turned off for token requests: trust a test "
            "server's CA with ca_file= (or load_verify_locations) instead.",
        )
