"""msal's ``http_client``, served by the provider's aiohttp session on the event loop.

msal is synchronous and runs in the provider's worker threads. Each of its HTTP
calls is handed to the event loop (``run_coroutine_threadsafe``) and performed
once with aiohttp, so TLS, proxies and timeouts are configured in one place.
What fails becomes a typed error (msal drops the body of a 5xx and cannot parse
a non-JSON 4xx); whether to try again is the engine's decision, made on the
event loop, so no worker thread sleeps through a backoff.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ._errors import (
    AioEntraError,
    IdentityProviderUnavailableError,
    ProviderClosedError,
    ThrottledError,
    error_from_response,
)
from ._policy import RETRYABLE_STATUS, parse_retry_after

__all__ = ["LoopTransport", "TransportResponse"]

T = TypeVar("T")


class TransportResponse:
    """The response shape msal's ``http_client`` contract asks for."""

    def __init__(self, status_code: int, text: str, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = dict(headers)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise IdentityProviderUnavailableError(
                f"identity provider answered HTTP {self.status_code}", status=self.status_code
            )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class LoopTransport:
    """A synchronous ``http_client`` for msal whose I/O runs on ``loop``.

    It is also the bridge for credential coroutines: everything a worker thread
    waits for on the loop goes through :meth:`run`, so :meth:`cancel_pending`
    releases every waiting thread when the provider closes.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        *,
        attempt_timeout: float,
        insecure_origin: str | None = None,
    ) -> None:
        self._loop = loop
        self._session = session
        self._attempt_timeout = attempt_timeout
        # A plain-http loopback authority: msal only speaks https, so its https URLs
        # for this one origin are sent over http and http URLs in its answers are
        # shown to msal as https.
        self._insecure_origin = insecure_origin
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    # -- msal's http_client contract (called from worker threads) -----------------------------

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        response = self.run(self._request("POST", url, params, data, headers))
        self._local.last_status = response.status_code
        return response

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        return self.run(self._request("GET", url, params, None, headers))

    def close(self) -> None:
        """msal may call this; the session belongs to the provider."""

    # -- per worker thread ----------------------------------------------------------------------

    def begin(self, deadline: float) -> None:
        """Start a token request in this worker thread: attempts end by ``deadline`` (loop time)."""
        self._local.deadline = deadline
        self._local.last_status = None

    def last_status(self) -> int | None:
        """HTTP status of this worker thread's last POST: msal's error dicts leave it out."""
        status: int | None = getattr(self._local, "last_status", None)
        return status

    # -- the bridge -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (from a worker thread)."""
        with self._lock:
            if self._closed:
                coro.close()
                raise ProviderClosedError("the token provider is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._pending.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ProviderClosedError("the token provider is closed") from None
        finally:
            with self._lock:
                self._pending.discard(future)

    def cancel_pending(self) -> None:
        """Refuse new work and cancel what runs: waiting worker threads are released."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for future in pending:
            future.cancel()

    # -- one HTTP attempt, on the event loop ----------------------------------------------------

    def _wire_url(self, url: str) -> str:
        origin = self._insecure_origin
        if origin is not None and url.startswith("https://" + origin):
            return "http://" + url[len("https://") :]
        return url

    async def _request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Any,
        headers: Mapping[str, str] | None,
    ) -> TransportResponse:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        deadline: float = getattr(self._local, "deadline", self._loop.time() + 30.0)
        remaining = min(self._attempt_timeout, deadline - self._loop.time())
        if remaining <= 0:
            raise IdentityProviderUnavailableError(
                f"{method} {origin}: no time left for the request",
                hint="the identity provider is slow; RetryPolicy.total_timeout bounds a request.",
            )
        session = await self._session()
        try:
            async with session.request(
                method,
                self._wire_url(url),
                params=params,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=remaining),
                allow_redirects=False,
                raise_for_status=False,
                middlewares=(),
            ) as response:
                text = await response.text(errors="replace")
                status, response_headers = response.status, response.headers
        except (ssl.SSLError, aiohttp.ClientConnectorCertificateError) as exc:
            raise _tls_error(origin, exc) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise IdentityProviderUnavailableError(
                f"{method} {origin} failed: {type(exc).__name__}",
                hint="the identity provider is unreachable or slow; check the network, "
                "proxy settings and the authority host.",
            ) from None
        return self._judge(method, origin, status, text, response_headers)

    def _judge(
        self, method: str, origin: str, status: int, text: str, headers: Mapping[str, str]
    ) -> TransportResponse:
        """Pass a usable response to msal, or raise the typed error for this attempt."""
        body = _json_object(text)
        retry_after = parse_retry_after(headers)
        if status == 429:
            raise _with_body(
                ThrottledError(
                    f"the identity provider throttled the request (HTTP 429, {origin})",
                    hint="too many token requests: share one TokenProvider per app and process.",
                    status=429,
                    retry_after=retry_after,
                ),
                body,
            )
        if status in RETRYABLE_STATUS or status >= 500:
            raise _with_body(
                IdentityProviderUnavailableError(
                    f"the identity provider failed (HTTP {status}, {origin})",
                    status=status,
                    retry_after=retry_after,
                ),
                body,
            )
        if body is None:
            error = IdentityProviderUnavailableError(
                f"the identity provider answered HTTP {status} without a JSON body ({origin})",
                hint="a proxy or gateway may be answering instead of the identity provider.",
                status=status,
            )
            # A malformed success body is worth another attempt; a non-JSON 4xx is not.
            error.retryable = status == 200
            raise error
        if method == "GET" and status != 200:
            raise error_from_response(body, status=status, context="tenant discovery failed")
        if method == "GET" and self._insecure_origin is not None:
            origin_text = self._insecure_origin
            text = text.replace("http://" + origin_text, "https://" + origin_text)
        return TransportResponse(status, text, headers)


def _with_body(error: AioEntraError, body: Mapping[str, Any] | None) -> AioEntraError:
    if body:
        parsed = error_from_response(body)
        error.error = parsed.error
        error.error_codes = parsed.error_codes
        error.correlation_id = parsed.correlation_id
        error.trace_id = parsed.trace_id
        error.args = (error._render(),)
    return error


def _tls_error(origin: str, exc: BaseException) -> IdentityProviderUnavailableError:
    error = IdentityProviderUnavailableError(
        f"TLS verification of {origin} failed: {type(exc).__name__}",
        hint="the server's certificate is not trusted: pass ca_file= (or ssl_context=) for a "
        "test server, or fix the proxy's certificate chain. Verification is never turned off.",
    )
    error.retryable = False
    return error
