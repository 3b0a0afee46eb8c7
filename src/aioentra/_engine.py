"""msal's client-credentials flow behind an async face, kept off the event loop.

msal (``ConfidentialClientApplication.acquire_token_for_client``) is the protocol
engine; it is synchronous, so every call runs in the provider's own worker
threads and its HTTP goes through :class:`~aioentra._transport.LoopTransport`.
The provider owns caching and throttling, so msal's are switched off: its token
cache keeps no access token (msal would otherwise hand back the token the
provider decided to replace) and its HTTP throttle cache stores nothing (it
would replay a 429/5xx/400 answer without asking the server).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msal

from ._authority import Authority
from ._errors import (
    AioEntraError,
    ConfigurationError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    error_from_response,
)
from ._policy import RetryPolicy
from ._transport import LoopTransport
from .credentials import AssertionContext, AssertionCredential, Credential, SecretCredential

__all__ = ["MsalEngine", "TokenResponse"]

logger = logging.getLogger("aioentra")
T = TypeVar("T")

MAX_TENANT_APPS = 64
"""msal applications kept (one per tenant); an evicted tenant's next request rediscovers it."""


@dataclass(frozen=True)
class TokenResponse:
    """What a successful token request produced."""

    access_token: str
    token_type: str
    expires_in: float
    refresh_in: float | None
    issued_at: float


class _AccessTokensNotKept(msal.TokenCache):  # type: ignore[misc]
    """An msal token cache that keeps nothing: the provider's cache is the only one."""

    def add(self, event: Any, now: Any = None) -> None:
        return None


class _NoStore(MutableMapping[str, Any]):
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

    Retries live here, on the event loop: an attempt that fails with a retryable
    error (connection, timeout, 408/429/5xx, malformed body, a failing credential
    source) is tried again after a backoff or ``Retry-After``, within the
    policy's attempts and total time. Worker threads only ever run msal itself,
    so a throttled key never holds a thread that another key needs.
    """

    def __init__(
        self,
        *,
        credential: Credential,
        client_id: str,
        authority: Authority,
        transport: LoopTransport,
        loop: asyncio.AbstractEventLoop,
        policy: RetryPolicy,
        max_workers: int = 4,
        client_capabilities: Sequence[str] = (),
    ) -> None:
        self._credential = credential
        self._client_id = client_id
        self._authority = authority
        self._transport = transport
        self._loop = loop
        self._policy = policy
        self._capabilities = list(client_capabilities) or None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="aioentra-msal"
        )
        self._running: set[concurrent.futures.Future[Any]] = set()
        # One msal app per tenant, least recently used first; bounded for multi-tenant
        # daemons that serve many customer tenants over their lifetime.
        self._apps: OrderedDict[str, tuple[Any, str | None]] = OrderedDict()
        self._apps_lock = threading.Lock()

    async def acquire(
        self, scope: str, *, claims: str | None = None, tenant: str | None = None
    ) -> TokenResponse:
        """One token request, with retries, bounded by ``RetryPolicy.total_timeout``."""
        policy = self._policy
        deadline = self._loop.time() + policy.total_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(scope, claims, tenant, deadline)
            except AioEntraError as error:
                retry_after = error.retry_after
                wait = policy.backoff(attempt) if retry_after is None else retry_after
                if (
                    not error.retryable
                    or attempt >= policy.max_attempts
                    or wait > deadline - self._loop.time()
                    or (retry_after is not None and retry_after > policy.max_retry_after)
                ):
                    raise
                logger.debug(
                    "retrying the token request for %s in %.2fs after attempt %d: %s",
                    scope,
                    wait,
                    attempt,
                    error.message,
                )
            await asyncio.sleep(wait)

    async def _attempt(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        future = self._executor.submit(self._acquire_blocking, scope, claims, tenant, deadline)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(future)

    async def run_blocking(self, func: Callable[[], T]) -> T:
        """Run a blocking call (file I/O) in the engine's worker threads."""
        return await asyncio.wrap_future(self._executor.submit(func))

    async def close(self) -> None:
        """Release the worker threads (cancelling what they wait for) and stop them.

        The loop never blocks on a thread: threads still busy in user code (a sync
        credential) after ``timeout`` are left to finish on their own.
        """
        self._transport.cancel_pending()
        running = [asyncio.wrap_future(f) for f in list(self._running)]
        busy: set[Any] = set()
        if running:
            done, busy = await asyncio.wait(running, timeout=5)
            for finished in done:
                if not finished.cancelled():
                    finished.exception()  # seen here; the requests' own waiters are gone
        self._executor.shutdown(wait=not busy, cancel_futures=True)
        if busy:
            logger.warning(
                "%d aioentra worker thread(s) still busy in a credential call at close(); "
                "they end when that call returns",
                len(busy),
            )

    # -- worker thread side -------------------------------------------------------------------

    def _acquire_blocking(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        self._transport.begin(deadline)
        issued_at = time.time()
        try:
            app = self._app_for(tenant or self._authority.tenant)
            result = app.acquire_token_for_client([scope], claims_challenge=claims)
        except Exception as exc:
            error = _unwrap(exc)
        else:
            if not isinstance(result, dict):
                raise AioEntraError("msal returned no result for the token request")
            if "access_token" in result:
                return _token_response(result, issued_at)
            error = error_from_response(result, status=self._transport.last_status())
        # A fresh copy, raised without cause or context: the original's traceback holds
        # msal's and the transport's frames, whose locals include the request form
        # (client secret, assertion) - error reporters that capture locals must not see it.
        raise copy.copy(error) from None

    def _app_for(self, tenant: str) -> Any:
        secret = self._current_secret()
        with self._apps_lock:
            cached = self._apps.get(tenant)
            if cached is not None and cached[1] == secret:
                self._apps.move_to_end(tenant)
                return cached[0]
            # First use of this tenant, or the secret rotated: msal reads its credential
            # and runs tenant discovery once, when the application is built.
            app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=secret if secret is not None else self._assertion_credential(),
                authority=_https(self._authority.with_tenant(tenant).url),
                http_client=self._transport,
                token_cache=_AccessTokensNotKept(),
                http_cache=_NoStore(),
                instance_discovery=False,
                client_capabilities=self._capabilities,
                app_name="aioentra",
            )
            self._apps[tenant] = (app, secret)
            self._apps.move_to_end(tenant)
            while len(self._apps) > MAX_TENANT_APPS:
                self._apps.popitem(last=False)
            return app

    def _current_secret(self) -> str | None:
        credential = self._credential
        if not isinstance(credential, SecretCredential):
            return None
        secret = self._from_credential(credential.get_secret)
        if not secret:
            raise ConfigurationError("the secret credential returned an empty secret")
        return secret

    def _assertion_credential(self) -> dict[str, Any]:
        credential = self._credential
        if not isinstance(credential, AssertionCredential):
            raise ConfigurationError(f"{type(credential).__name__} is not a credential")

        def client_assertion(context: dict[str, Any]) -> str:
            bound = AssertionContext(
                client_id=str(context.get("client_id") or self._client_id),
                token_endpoint=str(context.get("token_endpoint") or ""),
            )
            return self._from_credential(lambda: credential.get_assertion(bound))

        return {"client_assertion": client_assertion}

    def _from_credential(self, produce: Callable[[], str | Awaitable[str]]) -> str:
        """A credential's value; coroutines run on the loop, failures become typed errors."""
        try:
            value = produce()
            if inspect.isawaitable(value):
                return self._transport.run(_await(value))
            return value
        except AioEntraError:
            raise
        except Exception as exc:
            raise CredentialUnavailableError(
                f"{self._credential!r} failed: {type(exc).__name__}",
                hint="the credential's own source (a file, a callback, a managed identity) "
                "failed; the request is retried.",
            ) from None


def _https(url: str) -> str:
    """msal only accepts https authorities: a plain-http loopback one is given to it as https,
    and the transport sends its requests for that origin over http."""
    return "https://" + url[len("http://") :] if url.startswith("http://") else url


def _token_response(result: dict[str, Any], issued_at: float) -> TokenResponse:
    expires_in = float(result.get("expires_in") or 0)
    if expires_in <= 0:
        raise IdentityProviderUnavailableError(
            "the token response has no lifetime (expires_in)",
            hint="the identity provider's answer is malformed.",
        )
    refresh_on = result.get("refresh_on")
    return TokenResponse(
        access_token=str(result["access_token"]),
        token_type=str(result.get("token_type") or "Bearer"),
        expires_in=expires_in,
        refresh_in=float(refresh_on) - issued_at if refresh_on is not None else None,
        issued_at=issued_at,
    )


def _unwrap(exc: BaseException) -> AioEntraError:
    """Our typed error behind what msal raised, or a typed error naming msal's refusal."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AioEntraError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ConfigurationError(
        f"msal refused the request: {type(exc).__name__}",
        hint="check the authority, tenant and credential settings.",
    )


async def _await(value: Awaitable[str]) -> str:
    return await value
