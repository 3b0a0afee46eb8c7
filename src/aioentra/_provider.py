"""TokenProvider: app-only tokens with the client-credentials grant, msal as its engine.

The warm path, the single-flight cell and the lifecycle are :class:`~aioentra._source.
TokenSourceBase`'s. This module adds who the app is (client id, authority, tenants), its
credential and that credential's lifecycle, and one token request: msal's
``acquire_token_for_client`` (:class:`~aioentra._engine.MsalEngine`), with one reload-and-retry
when the token endpoint says the credential is stale (:data:`~aioentra.credentials.RELOAD_CODES`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import urlsplit

from ._authority import AZURE_PUBLIC_CLOUD, AnyAuthority, Authority, OidcAuthority, TenantRules
from ._cache import CachedToken
from ._engine import MsalEngine
from ._errors import AioEntraError, ConfigurationError, CredentialRejectedError, raises_cleanly
from ._flight import Clock
from ._policy import RefreshPolicy, RetryPolicy
from ._source import TokenSourceBase, _key
from ._stats import error_code
from ._telemetry import Telemetry
from ._tls import checked_ssl_context, load_aiohttp
from ._token import ServedFrom, TokenResponse
from ._transport import LoopTransport
from .credentials import RELOAD_CODES, Credential, ReloadReason
from .credentials._base import close_credential, reload_credential, start_credential

if TYPE_CHECKING:
    # aiohttp loads when the provider starts (in a worker thread), msal with its first token
    # request, cryptography and PyJWT with a credential that signs: importing and building a
    # provider loads none of them.
    import aiohttp
    from typing_extensions import Unpack

    from ._cache import SharedCache

__all__ = ["ProviderOptions", "TokenProvider"]

logger = logging.getLogger("aioentra.provider")


class ProviderOptions(TypedDict, total=False):
    """The keyword options of :class:`TokenProvider` besides who the app is and its
    credential: what ``from_environment``, ``from_file`` and ``Settings.provider`` pass on,
    typed so a typo fails type checking. (``ca_file`` given here beats the file's
    ``AzureAd.CaFile`` and ``AIOENTRA_CA_FILE``.)"""

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
    cache: SharedCache | None
    close_cache: bool
    clock: Clock | None
    telemetry: Telemetry | None


class TokenProvider(TokenSourceBase):
    """Gets, caches and refreshes app-only tokens for one app (client id) in one tenant.

    >>> async with TokenProvider(ClientSecret(secret), tenant_id=tid, client_id=cid) as p:
    ...     token = await p.get_token("api://my-api/.default")  # doctest: +SKIP

    The constructor validates everything and does no I/O. Entering the provider (or its first
    token request) starts the credential; the first request opens an aiohttp session (or uses
    ``session``) and a few worker threads for msal. :meth:`close` ends all of them, and closes
    the credential too unless ``close_credential=False`` (for a credential shared with others).

    ``clock`` replaces the clocks every due time is read from (a
    :class:`~aioentra.testing.ManualClock` in tests).

    ``telemetry`` reports metrics and spans of every fetch and HTTP request, for example
    :class:`aioentra.otel.OpenTelemetry` (see ``docs/observability.md``). Without it, nothing
    is reported but the log lines and :meth:`stats`, and the warm path counts nothing.

    ``cache`` is a shared token cache behind the in-memory one, such as
    :class:`aioentra.redis.RedisCache`: replicas of a daemon then send one token request per
    key and rollover between them (see ``docs/redis.md``). A warm hit never leaves the process;
    a miss asks the shared cache, and one replica at a time fetches. The provider closes the
    cache on :meth:`close` unless ``close_cache=False``.

    ``oidc_authority`` is an OpenID Connect issuer URL to use instead of an Entra authority
    (``authority`` + ``tenant_id``, which it excludes): an Entra External ID custom URL domain
    (``https://login.contoso.com/{tenant-id}/v2.0``) or another OpenID provider. msal reads
    ``{issuer}/.well-known/openid-configuration`` on the first request, checks its ``issuer``
    and sends token requests to its ``token_endpoint``, with the credential's client secret
    (``client_secret_post``) or assertion (``private_key_jwt``). The issuer needs a path (msal
    refuses a host's root); :attr:`tenant_id` is then the issuer's first path segment, and a
    request may name no other tenant.
    """

    __slots__ = (
        "_authority",
        "_cache",
        "_capabilities",
        "_client_id",
        "_close_cache",
        "_close_credential",
        "_credential",
        "_engine",
        "_reloaded",
        "_reloading",
        "_tenants",
    )

    @raises_cleanly
    def __init__(
        self,
        credential: Credential,
        *,
        tenant_id: str | None = None,
        client_id: str,
        authority: str | None = None,
        oidc_authority: str | None = None,
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
        cache: SharedCache | None = None,
        close_cache: bool = True,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        _check_credential(credential)
        if cache is not None and not (
            callable(getattr(cache, "fetch", None)) and callable(getattr(cache, "close", None))
        ):
            raise ConfigurationError(
                "cache must be a shared token cache (fetch() and close()), such as "
                "aioentra.redis.RedisCache",
            )
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
            checked_ssl_context(ssl_context, "ssl_context")
        if ca_file is not None and (not isinstance(ca_file, str) or not os.path.isfile(ca_file)):
            raise ConfigurationError(
                f"ca_file {ca_file!r} does not exist",
                hint="give the path of a PEM file with the CA certificates to trust.",
            )
        if isinstance(client_capabilities, str) or isinstance(additionally_allowed_tenants, str):
            raise ConfigurationError(
                "client_capabilities and additionally_allowed_tenants take lists of strings",
                hint="e.g. client_capabilities=['CP1'], additionally_allowed_tenants=['*'].",
            )
        allowed = tuple(additionally_allowed_tenants)
        self._authority: AnyAuthority
        if oidc_authority is not None:
            if authority is not None or tenant_id is not None:
                raise ConfigurationError(
                    "pass oidc_authority, or authority and tenant_id, not both",
                    hint="oidc_authority is the issuer URL and names the tenant itself; "
                    "authority= and tenant_id= are for Entra ID's own authorities.",
                )
            if allowed:
                raise ConfigurationError(
                    "additionally_allowed_tenants does not apply with oidc_authority",
                    hint="an OpenID issuer is one tenant: build one provider per issuer.",
                )
            self._authority = OidcAuthority.parse(
                oidc_authority, allow_insecure_http=allow_insecure_http
            )
        else:
            kinds = getattr(credential, "proof_kinds", None)
            self._authority = Authority.parse(
                AZURE_PUBLIC_CLOUD if authority is None else authority,
                tenant_id,
                allow_insecure_http=allow_insecure_http,
                secret_credential=kinds is None or "client_secret" in kinds,
            )
        self._setup(
            retry=retry,
            refresh=refresh,
            clock=clock,
            ca_file=ca_file,
            ssl_context=ssl_context,
            session=session,
            trust_env=trust_env,
            max_workers=max_workers,
            worker_name="aioentra-msal",
            telemetry=telemetry,
        )
        self._credential = credential
        self._close_credential = close_credential
        self._cache = cache
        self._close_cache = close_cache
        self._client_id = client_id
        self._tenants = (
            TenantRules.build(self._authority, allowed)
            if isinstance(self._authority, Authority)
            else None
        )
        self._capabilities = tuple(client_capabilities)
        self._engine: MsalEngine | None = None
        self._reloading: asyncio.Task[bool] | None = None
        self._reloaded = 0  # reloads that found new material; see _acquire

    # -- public API ----------------------------------------------------------------------------

    @classmethod
    @raises_cleanly
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **options: Unpack[ProviderOptions]
    ) -> TokenProvider:
        """Build from azure-identity's variables (``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ...).

        ``options`` are the provider's other keyword arguments. The token endpoint's CA trust
        is ``ca_file`` if given, else ``AIOENTRA_CA_FILE``, else the system's trust store
        (which honours ``SSL_CERT_FILE``). (None of the credentials the environment describes
        reads Key Vault, so ``ca_file`` is the token endpoint's only.)"""
        from ._config import Settings

        return Settings.from_environment(environ).provider(**options)

    @classmethod
    @raises_cleanly
    def from_file(
        cls, path: str | os.PathLike[str], **options: Unpack[ProviderOptions]
    ) -> TokenProvider:
        """Build from msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd``).

        ``options`` are the provider's other keyword arguments. The CA trust is ``ca_file``
        (or ``ssl_context``) if given, else the file's ``AzureAd.CaFile``, else
        ``AIOENTRA_CA_FILE``, else the system's trust store. ``ca_file`` (or
        ``ssl_context``) is also the TLS trust of the Key Vault credentials the file describes
        (``ClientCredentials`` of SourceType ``KeyVault``): one option for a local vault and
        identity provider. For a vault with other trust than the token endpoint, build with
        ``Settings.from_file(path, ca_file=...).provider(ca_file=...)``."""
        from ._config import Settings

        settings = Settings.from_file(
            path, ca_file=options.get("ca_file"), ssl_context=options.get("ssl_context")
        )
        return settings.provider(**options)

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def tenant_id(self) -> str:
        """The tenant tokens are requested in; with ``oidc_authority``, the issuer's first path
        segment (what msal takes as its tenant: the tenant id of an External ID issuer)."""
        return self._authority.tenant

    @property
    def authority(self) -> str:
        """The tenanted authority URL, e.g. ``https://login.microsoftonline.com/{tenant}``, or
        the issuer URL given as ``oidc_authority``."""
        return self._authority.url

    @property
    def credential(self) -> Credential:
        return self._credential

    def __repr__(self) -> str:
        authority = getattr(self, "_authority", None)
        name = "oidc_authority" if isinstance(authority, OidcAuthority) else "authority"
        return (
            f"TokenProvider(client_id={getattr(self, '_client_id', None)!r}, "
            f"{name}={authority.url if authority is not None else None!r}, "
            f"credential={getattr(self, '_credential', None)!r})"
        )

    # -- what the shared machinery asks of a token source ------------------------------------

    def _tenant(self, tenant_id: str | None) -> str | None:
        if self._tenants is not None:
            return self._tenants.resolve(tenant_id)
        # An OpenID issuer serves its own tenant only.
        if tenant_id is None or tenant_id.strip().lower() == self._authority.tenant.lower():
            return None
        raise ConfigurationError(
            f"tenant {tenant_id!r} cannot be asked for with oidc_authority",
            hint=f"the issuer {self._authority.url} is one tenant; tokens for another tenant "
            "need a provider of their own.",
        )

    def _describe(self) -> tuple[str, str]:
        return self._client_id, self._authority.tenant

    async def _start(self) -> None:
        await load_aiohttp(self._workers)
        await start_credential(self._credential)

    async def _close_owned(self) -> None:
        reloading = self._reloading
        if reloading is not None:
            reloading.cancel()
            await asyncio.gather(reloading, return_exceptions=True)
        if self._close_credential:
            await close_credential(self._credential)
        if self._cache is not None and self._close_cache:
            await self._cache.close()

    async def _acquire(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        cache = self._cache
        if cache is None:
            return await self._request(scope, claims, tenant, deadline)
        clock = self._clock

        async def request() -> CachedToken:
            asked = clock.time()  # the expiry is counted from the question: never too late
            answered = await self._request(scope, claims, tenant, deadline)
            return CachedToken(
                access_token=answered.access_token,
                issued_at=asked,
                expires_in=answered.expires_in,
                refresh_in=answered.refresh_in,
            )

        # Another replica's token is only worth taking if it is not the one held here (a
        # refresh, a renewal after a 401 or a forced refresh wants a newer token, not ours).
        held = self._flight.slots.get(_key(scope, tenant, claims))
        unlike = held.value.token if held is not None and held.generation else None
        stored, source = await self._within(
            deadline,
            cache.fetch(
                self._shared_key(scope, tenant, claims),
                request,
                min_remaining=2 * self._refresh.expiry_margin,
                unlike=unlike,
            ),
            "getting the token through the shared cache",
        )
        if source == "network":
            return TokenResponse(stored.access_token, stored.expires_in, stored.refresh_in)
        return _from_shared(stored, clock.time())

    def _shared_key(self, scope: str, tenant: str | None, claims: str | None) -> str:
        """What the token is for, across processes: authority, tenant, app, scope, claims."""
        authority = self._authority
        where = authority.url if isinstance(authority, OidcAuthority) else authority.host
        own = authority.tenant.lower()
        return "|".join((where, tenant or own, self._client_id, scope, claims or ""))

    async def _request(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        engine = self._get_engine()
        reloads_before = self._reloaded
        try:
            return await engine.acquire(scope, claims=claims, tenant=tenant, deadline=deadline)
        except CredentialRejectedError as error:
            if not RELOAD_CODES.intersection(error.error_codes):
                raise
            rejection = error
            # A request that left with the old proof may be rejected after another key's
            # reload replaced it: it needs the one retry, not a reload of its own (which would
            # find nothing new, or move a chain past a member that works).
            if self._reloaded == reloads_before and not await self._within(
                deadline, self._reload(error), "reloading the credential"
            ):
                raise
        logger.warning(
            "the token endpoint rejected %r for %s (client %s): %s%s; the credential "
            "reloaded new material, sending the request once more",
            self._credential,
            scope,
            self._client_id,
            error_code(rejection),
            f", correlation id {rejection.correlation_id}" if rejection.correlation_id else "",
            extra={
                "aioentra": {
                    "event": "credential_reloaded",
                    "scope": scope,
                    "client_id": self._client_id,
                    "error_code": error_code(rejection),
                    "correlation_id": rejection.correlation_id,
                }
            },
        )
        return await engine.acquire(scope, claims=claims, tenant=tenant, deadline=deadline)

    # -- internals -------------------------------------------------------------------------------

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
            changed = await reload_credential(self._credential, ReloadReason.from_error(error))
        except Exception as exc:
            logger.warning(
                "reloading %r after a rejection failed: %s", self._credential, type(exc).__name__
            )
            return False
        if changed:
            self._reloaded += 1
        return changed

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
                oidc=isinstance(authority, OidcAuthority),
                telemetry=self._telemetry,
                shared=self._cache,
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


def _from_shared(stored: CachedToken, now: float) -> TokenResponse:
    """Another replica's token, as if just answered: the lifetime left, and ``refresh_in``
    from now (dropped once past, so the refresh window is cut from the lifetime left). This
    process draws its own refresh time in that window."""
    elapsed = max(0.0, now - stored.issued_at)
    refresh_in = None if stored.refresh_in is None else stored.refresh_in - elapsed
    return TokenResponse(
        stored.access_token,
        stored.remaining(now),
        refresh_in if refresh_in is not None and refresh_in > 0 else None,
        source=ServedFrom.SHARED_CACHE,
    )
