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
import inspect
import threading
import time
from collections.abc import Awaitable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import msal

from ._authority import Authority
from ._errors import AioEntraError, ConfigurationError, error_from_response
from ._transport import LoopTransport
from .credentials import AssertionContext, AssertionCredential, Credential, SecretCredential

__all__ = ["MsalEngine", "TokenResponse"]


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
    """Runs ``acquire_token_for_client`` for one client id, one msal app per tenant."""

    def __init__(
        self,
        *,
        credential: Credential,
        client_id: str,
        authority: Authority,
        transport: LoopTransport,
        loop: asyncio.AbstractEventLoop,
        max_workers: int = 4,
        client_capabilities: Sequence[str] = (),
    ) -> None:
        self._credential = credential
        self._client_id = client_id
        self._authority = authority
        self._transport = transport
        self._loop = loop
        self._capabilities = list(client_capabilities) or None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="aioentra-msal"
        )
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._apps: dict[str, tuple[Any, str | None]] = {}
        self._apps_lock = threading.Lock()

    async def acquire(
        self, scope: str, *, claims: str | None = None, tenant: str | None = None
    ) -> TokenResponse:
        """One token request (with the transport's retries), in a worker thread."""
        future = self._executor.submit(self._acquire_blocking, scope, claims, tenant)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        """Cancel the requests in flight, wait for the worker threads and stop them."""
        self._transport.cancel_pending()
        running = [asyncio.wrap_future(f) for f in list(self._running)]
        if running:
            await asyncio.wait(running, timeout=10)
        self._executor.shutdown(wait=True)

    # -- worker thread side -------------------------------------------------------------------

    def _acquire_blocking(
        self, scope: str, claims: str | None, tenant: str | None
    ) -> TokenResponse:
        issued_at = time.time()
        try:
            app = self._app_for(tenant or self._authority.tenant)
            result = app.acquire_token_for_client([scope], claims_challenge=claims)
        except AioEntraError:
            raise
        except Exception as exc:
            # msal wraps what our transport raised (tenant discovery re-raises as
            # ValueError): surface our typed error, or say what msal refused.
            raise _unwrap(exc) from exc
        if not isinstance(result, dict):
            raise AioEntraError("msal returned no result for the token request")
        if "access_token" not in result:
            raise error_from_response(result, status=self._transport.last_status())
        refresh_on = result.get("refresh_on")
        refresh_in = float(refresh_on) - issued_at if refresh_on is not None else None
        return TokenResponse(
            access_token=str(result["access_token"]),
            token_type=str(result.get("token_type") or "Bearer"),
            expires_in=float(result.get("expires_in") or 0),
            refresh_in=refresh_in,
            issued_at=issued_at,
        )

    def _app_for(self, tenant: str) -> Any:
        secret = self._current_secret()
        with self._apps_lock:
            cached = self._apps.get(tenant)
            if cached is not None and cached[1] == secret:
                return cached[0]
            # First use of this tenant, or the secret rotated: msal reads its credential
            # and runs tenant discovery once, when the application is built.
            app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=secret if secret is not None else self._assertion_credential(),
                authority=self._authority.with_tenant(tenant).url,
                http_client=self._transport,
                token_cache=_AccessTokensNotKept(),
                http_cache=_NoStore(),
                instance_discovery=False,
                client_capabilities=self._capabilities,
                app_name="aioentra",
            )
            self._apps[tenant] = (app, secret)
            return app

    def _current_secret(self) -> str | None:
        if not isinstance(self._credential, SecretCredential):
            return None
        secret = self._resolve(self._credential.get_secret())
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
            return self._resolve(credential.get_assertion(bound))

        return {"client_assertion": client_assertion}

    def _resolve(self, value: str | Awaitable[str]) -> str:
        """A credential's value: awaitables run on the event loop, plain values as they are."""
        if inspect.isawaitable(value):
            return asyncio.run_coroutine_threadsafe(_await(value), self._loop).result()
        return value


def _unwrap(exc: BaseException) -> AioEntraError:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AioEntraError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ConfigurationError(
        f"msal refused the request: {type(exc).__name__}: {exc}",
        hint="check the authority, tenant and credential settings.",
    )


async def _await(value: Awaitable[str]) -> str:
    return await value
