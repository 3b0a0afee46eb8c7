"""msal's client-credentials flow behind an async face, kept off the event loop.

msal (``ConfidentialClientApplication.acquire_token_for_client``) is the protocol engine; it is
synchronous, so every call runs in the provider's own worker threads and its HTTP goes through
:class:`~aioentra._transport.LoopTransport`. The provider owns caching and throttling, so msal's
are switched off: its token cache keeps no access token (msal would otherwise hand back the
token the provider decided to replace) and its HTTP throttle cache stores nothing (it would
replay a 429/5xx/400 answer without asking the server).

One msal application per tenant, built once (that is when msal runs tenant discovery). With an
OpenID issuer (``oidc_authority=``) there is one application, built with msal's own
``oidc_authority``: msal reads ``{issuer}/.well-known/openid-configuration``, checks its issuer
and sends the token requests to its ``token_endpoint``.

The credential's proof is not part of the application: each token request asks the credential
for its current proof and passes it in the request body (msal's ``data``, which takes precedence
over the application's own fields), so a credential can rotate, reload or switch between a
secret and an assertion without a new application.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from ._authority import AnyAuthority, Authority, OidcAuthority
from ._errors import (
    AioEntraError,
    ConfigurationError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    error_from_response,
    fresh,
    redact,
)
from ._policy import RetryPolicy
from ._stats import error_code
from ._token import TokenResponse
from ._transport import PLACEHOLDER_SECRET, LoopTransport
from ._workers import WorkerPool
from .credentials._base import AssertionContext, Credential, Proof

__all__ = ["MsalEngine", "NoThrottleCache", "load_msal", "run_in_worker", "with_retries"]

logger = logging.getLogger("aioentra.provider")
T = TypeVar("T")

MAX_TENANT_APPS = 64
"""msal applications kept (one per tenant); an evicted tenant's next request rediscovers it."""


_msal_lock = threading.Lock()
_msal_loaded: list[ModuleType] = []  # aioentra._msal, once imported
_msal_failure: list[str] = []  # why it could not be, once that is known


def load_msal() -> ModuleType:
    """:mod:`aioentra._msal` (msal, and its :class:`~aioentra._msal.NoTokenCache`).

    Imported once per process, on the first token request, in the worker thread that runs
    msal: the event loop never waits for it. A missing or broken msal is remembered and
    raised as a :class:`ConfigurationError` by every request (never retried: it is the
    installation, not the network)."""
    if _msal_loaded:
        return _msal_loaded[0]
    with _msal_lock:
        if not _msal_loaded and not _msal_failure:
            try:
                from . import _msal
            except Exception as exc:  # ImportError, or whatever a broken msal raises
                missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
                _msal_failure.append(
                    type(exc).__name__ + (f" (no module named {missing!r})" if missing else "")
                )
            else:
                _msal_loaded.append(_msal)
        if _msal_loaded:
            return _msal_loaded[0]
        failure = _msal_failure[0]
    raise ConfigurationError(
        f"msal could not be imported: {failure}",
        hint="aioentra sends its token requests with msal (msal>=1.31, one of its "
        "dependencies): reinstall it, e.g. pip install --force-reinstall 'msal>=1.31'.",
    )


class NoThrottleCache(MutableMapping[str, Any]):
    """A mapping that forgets every write: turns off msal's HTTP throttle cache."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        return None

    def __delitem__(self, key: str) -> None:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class MsalEngine:
    """Runs ``acquire_token_for_client`` for one client id, one msal app per tenant.

    Retries live here, on the event loop: an attempt that fails with a retryable error
    (connection, timeout, 408/429/5xx, malformed body, a failing credential source) is tried
    again after a backoff or ``Retry-After``, within the policy's attempts and the request's
    deadline. Worker threads only ever run msal and synchronous credentials, so a throttled
    key never holds a thread that another key needs.
    """

    def __init__(
        self,
        *,
        credential: Credential,
        client_id: str,
        authority: AnyAuthority,
        transport: LoopTransport,
        workers: WorkerPool,
        loop: asyncio.AbstractEventLoop,
        policy: RetryPolicy,
        client_capabilities: Sequence[str] = (),
    ) -> None:
        self._credential = credential
        self._client_id = client_id
        self._authority = authority
        self._transport = transport
        self._workers = workers
        self._loop = loop
        self._policy = policy
        self._capabilities = list(client_capabilities) or None
        # One msal app per tenant, least recently used first; bounded for multi-tenant
        # daemons that serve many customer tenants over their lifetime.
        self._apps: OrderedDict[str, Any] = OrderedDict()
        self._apps_lock = threading.Lock()

    async def acquire(
        self, scope: str, *, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        """One token request with retries, ended by ``deadline`` (loop time) at the latest:
        waiting for a worker thread, discovery, every attempt and every wait included."""
        return await with_retries(
            lambda: self._attempt(scope, claims, tenant, deadline),
            policy=self._policy,
            loop=self._loop,
            deadline=deadline,
            what=f"{scope} (client {self._client_id}, tenant {tenant or self._authority.tenant})",
            fields={
                "scope": scope,
                "client_id": self._client_id,
                "tenant_id": tenant or self._authority.tenant,
            },
        )

    async def _attempt(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        return await run_in_worker(
            self._workers,
            lambda: self._acquire_blocking(scope, claims, tenant, deadline),
            loop=self._loop,
            deadline=deadline,
            total=self._policy.total_timeout,
        )

    # -- worker thread side -------------------------------------------------------------------

    def _acquire_blocking(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        self._transport.begin(deadline)
        outcome = self._call_msal(scope, claims, tenant)
        if isinstance(outcome, TokenResponse):
            return outcome
        # A fresh copy, raised without cause or context and from a frame that never held the
        # proof: the original's traceback holds msal's and the transport's frames, whose locals
        # include the request form (client secret, assertion), and error reporters that
        # capture locals must not see it.
        error = fresh(outcome)
        del outcome
        raise error from None

    def _call_msal(
        self, scope: str, claims: str | None, tenant: str | None
    ) -> TokenResponse | AioEntraError:
        proof: Proof | None = None
        building = True  # msal's discovery runs when the application is built
        try:
            app = self._app_for(tenant or self._authority.tenant)
            building = False
            context = AssertionContext(self._client_id, app.authority.token_endpoint)
            proof = self._proof(context)
            if (
                proof.kind == "client_assertion"
                and isinstance(self._authority, Authority)
                and self._authority.tenant == "organizations"
            ):
                return ConfigurationError(
                    "the 'organizations' authority works only with a client secret",
                    hint="use your tenant id with a certificate or assertion credential.",
                )
            result = app.acquire_token_for_client(
                [scope], claims_challenge=claims, data=proof.form()
            )
        except Exception as exc:
            error = _unwrap(exc, self._authority if building else None)
        else:
            if not isinstance(result, dict):
                return IdentityProviderUnavailableError("msal returned no result for the request")
            if "access_token" in result:
                token = self._transport.last_token()
                if token is None or token.access_token != result["access_token"]:
                    return AioEntraError("internal error: msal's token is not the one validated")
                return token
            error = error_from_response(result, status=self._transport.last_status())
        # A hostile or broken server may echo the secret it was sent: never pass it on.
        return error if proof is None else redact(error, proof.value)

    def _app_for(self, tenant: str) -> Any:
        with self._apps_lock:
            app = self._apps.get(tenant)
            if app is not None:
                self._apps.move_to_end(tenant)
                return app
        # msal runs tenant discovery when the application is built: outside the lock, so
        # that one slow tenant does not hold up the others. Two threads may build the same
        # tenant's application once each; the second one is kept.
        authority = self._authority
        where: dict[str, str] = (
            {"oidc_authority": _https(authority.url)}
            if isinstance(authority, OidcAuthority)
            else {"authority": _https(authority.with_tenant(tenant).url)}
        )
        loaded = load_msal()  # the first request's: in this worker thread, once per process
        app = loaded.msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=PLACEHOLDER_SECRET,
            **where,
            http_client=self._transport,
            token_cache=loaded.NoTokenCache(),
            http_cache=NoThrottleCache(),
            instance_discovery=False,
            client_capabilities=self._capabilities,
            app_name="aioentra",
        )
        with self._apps_lock:
            self._apps[tenant] = app
            self._apps.move_to_end(tenant)
            while len(self._apps) > MAX_TENANT_APPS:
                self._apps.popitem(last=False)
        return app

    def _proof(self, context: AssertionContext) -> Proof:
        """The credential's proof; coroutines run on the loop, failures become typed errors."""
        try:
            with self._workers.user_code():
                value: object = self._credential.get_proof(context)
            if inspect.isawaitable(value):
                value = self._transport.run(_await(value))
        except AioEntraError:
            raise
        except Exception as exc:
            raise CredentialUnavailableError(
                f"{self._credential!r} failed: {type(exc).__name__}",
                hint="the credential's own source (a file, a callback, a managed identity) "
                "failed; the request is retried.",
            ) from None
        if not isinstance(value, Proof) or not value.value:
            raise ConfigurationError(
                f"{self._credential!r} returned {type(value).__name__}, not a Proof",
                hint="get_proof() must return Proof.secret(...) or Proof.assertion(...) "
                "(or an awaitable of one), with a non-empty value.",
            )
        return value


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    what: str,
    fields: Mapping[str, object],
) -> T:
    """``attempt()`` until it succeeds, fails for good, or the policy or deadline ends it.

    ``what`` names the token in the text of the retry WARNING; ``fields`` (``scope``,
    ``client_id``, ``tenant_id``) go into its structured ``aioentra`` mapping. A retryable
    error is tried again after the policy's backoff, or the server's ``Retry-After`` when it
    fits; the wait happens here, on the loop, never in a thread.
    """
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except AioEntraError as error:
            retry_after = error.retry_after
            wait = policy.backoff(number) if retry_after is None else retry_after
            if (
                not error.retryable
                or number >= policy.max_attempts
                or wait >= deadline - loop.time()
                or (retry_after is not None and retry_after > policy.max_retry_after)
            ):
                raise
            logger.warning(
                "token request for %s, attempt %d of %d, failed: %s%s; retrying in %.2fs",
                what,
                number,
                policy.max_attempts,
                error_code(error),
                f", correlation id {error.correlation_id}" if error.correlation_id else "",
                wait,
                extra={
                    "aioentra": {
                        "event": "token_attempt_failed",
                        **fields,
                        "attempt": number,
                        "max_attempts": policy.max_attempts,
                        "error_code": error_code(error),
                        "correlation_id": error.correlation_id,
                        "retry_in": wait,
                    }
                },
            )
        await asyncio.sleep(wait)


async def run_in_worker(
    workers: WorkerPool,
    call: Callable[[], T],
    *,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    total: float,
) -> T:
    """``call()`` in a worker thread, waited for until ``deadline`` (loop time) at the latest."""
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise _timed_out(total)
    # The thread runs in a copy of the caller's context, and so do the coroutines it hands to
    # the loop: a trace's current span (telemetry=) reaches the HTTP requests msal makes.
    future = workers.submit(functools.partial(contextvars.copy_context().run, call))
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), remaining)
    except asyncio.TimeoutError:
        # Still queued: cancelled. Running: its HTTP and credential calls end by the deadline
        # on their own, and nobody waits for the result.
        future.cancel()
        raise _timed_out(total) from None


def _timed_out(total: float) -> IdentityProviderUnavailableError:
    return IdentityProviderUnavailableError(
        f"the token request did not finish within RetryPolicy.total_timeout ({total:g}s)",
        hint="the identity provider is slow or every worker thread is busy; raise "
        "total_timeout or max_workers if this is expected.",
    )


def _https(url: str) -> str:
    """msal only accepts https authorities: a plain-http loopback one is given to it as https,
    and the transport sends its requests for that origin over http."""
    return "https://" + url[len("http://") :] if url.startswith("http://") else url


def _unwrap(exc: BaseException, authority: AnyAuthority | None = None) -> AioEntraError:
    """Our typed error behind what msal raised, or a typed error naming msal's refusal.

    msal's own message is not passed on (it may quote a whole server answer). ``authority`` is
    given when msal failed building its application: for an OpenID issuer the hint then says
    what msal checks in the issuer's configuration."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AioEntraError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    if isinstance(authority, OidcAuthority):
        return ConfigurationError(
            f"msal refused the OpenID configuration at {authority.discovery_url}: "
            f"{type(exc).__name__}",
            hint="its issuer must be the oidc_authority (or on the same scheme and host), and "
            "its token_endpoint and authorization_endpoint https URLs with a path.",
        )
    return ConfigurationError(
        f"msal refused the request: {type(exc).__name__}",
        hint="check the authority, tenant and credential settings.",
    )


async def _await(value: Awaitable[Proof]) -> Proof:
    return await value
