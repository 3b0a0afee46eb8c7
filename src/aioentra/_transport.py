"""msal's ``http_client``, served by the provider's aiohttp session on the event loop.

msal is synchronous and runs in the provider's worker threads. Each of its HTTP
calls is handed to the event loop (``run_coroutine_threadsafe``) and performed
with aiohttp, so TLS, proxies and timeouts are configured once. Retries happen
here, below msal: connection errors, timeouts, 408/429/5xx and malformed
success bodies are retried with backoff and ``Retry-After``; what is still
failing becomes a typed error instead of msal's untyped one (msal drops the
body of a 5xx and cannot parse a non-JSON 4xx).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ._errors import (
    AioEntraError,
    IdentityProviderUnavailableError,
    ThrottledError,
    error_from_response,
)
from ._policy import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

__all__ = ["LoopTransport", "TransportResponse"]

logger = logging.getLogger("aioentra")


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


class _Attempt:
    """The outcome of one HTTP attempt."""

    __slots__ = ("headers", "status", "text")

    def __init__(self, status: int, text: str, headers: Mapping[str, str]) -> None:
        self.status = status
        self.text = text
        self.headers = headers


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class LoopTransport:
    """A synchronous ``http_client`` for msal whose I/O runs on ``loop``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: Callable[[], aiohttp.ClientSession],
        policy: RetryPolicy,
        *,
        insecure_origin: str | None = None,
    ) -> None:
        self._loop = loop
        self._session = session
        self._policy = policy
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
        response = self._run(self._request("POST", url, params, data, headers))
        self._local.last_status = response.status_code
        return response

    def last_status(self) -> int | None:
        """HTTP status of this worker thread's last POST: msal's error dicts leave it out."""
        status: int | None = getattr(self._local, "last_status", None)
        return status

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        return self._run(self._request("GET", url, params, None, headers))

    def close(self) -> None:
        """msal may call this; the session belongs to the provider."""

    # -- lifecycle -----------------------------------------------------------------------------

    def cancel_pending(self) -> None:
        """Stop every request in flight; the waiting worker threads get ``CancelledError``."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for future in pending:
            future.cancel()

    def _run(self, coro: Any) -> TransportResponse:
        with self._lock:
            if self._closed:
                coro.close()
                raise IdentityProviderUnavailableError("the token provider is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._pending.add(future)
        try:
            result: TransportResponse = future.result()
            return result
        finally:
            with self._lock:
                self._pending.discard(future)

    # -- the request, on the event loop ---------------------------------------------------------

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
        policy = self._policy
        deadline = self._loop.time() + policy.total_timeout
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        attempt = 0
        while True:
            attempt += 1
            failure: AioEntraError
            try:
                result = await self._attempt(method, url, params, data, headers)
            except ssl.SSLError as exc:
                raise _tls_error(origin, exc) from exc
            except aiohttp.ClientConnectorCertificateError as exc:
                raise _tls_error(origin, exc) from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = IdentityProviderUnavailableError(
                    f"{method} {origin} failed: {type(exc).__name__}",
                    hint="the identity provider is unreachable or slow; check the network, "
                    "proxy settings and the authority host.",
                )
                retry_after = None
            else:
                outcome = self._judge(method, origin, result)
                if isinstance(outcome, TransportResponse):
                    return outcome
                failure = outcome
                retry_after = failure.retry_after
            wait = policy.backoff(attempt) if retry_after is None else retry_after
            remaining = deadline - self._loop.time()
            if (
                attempt >= policy.max_attempts
                or wait > remaining
                or (retry_after is not None and retry_after > policy.max_retry_after)
            ):
                raise failure
            logger.debug(
                "retrying %s %s in %.2fs after attempt %d: %s",
                method,
                origin,
                wait,
                attempt,
                failure.message,
            )
            await asyncio.sleep(wait)

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Any,
        headers: Mapping[str, str] | None,
    ) -> _Attempt:
        timeout = aiohttp.ClientTimeout(total=self._policy.attempt_timeout)
        async with self._session().request(
            method,
            self._wire_url(url),
            params=params,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            text = await response.text(errors="replace")
            return _Attempt(response.status, text, response.headers)

    def _judge(
        self, method: str, origin: str, result: _Attempt
    ) -> TransportResponse | AioEntraError:
        """Pass a usable response to msal, or say why this attempt failed."""
        status = result.status
        body = _json_object(result.text)
        retry_after = parse_retry_after(result.headers)
        if status == 429:
            error: AioEntraError = ThrottledError(
                f"the identity provider throttled the request (HTTP 429, {origin})",
                hint="too many token requests: share one TokenProvider per app and process.",
                status=429,
                retry_after=retry_after,
            )
            return _with_body(error, body)
        if status in RETRYABLE_STATUS or status >= 500:
            error = IdentityProviderUnavailableError(
                f"the identity provider failed (HTTP {status}, {origin})",
                status=status,
                retry_after=retry_after,
            )
            return _with_body(error, body)
        if body is None:
            error = IdentityProviderUnavailableError(
                f"the identity provider answered HTTP {status} without a JSON body ({origin})",
                hint="a proxy or gateway may be answering instead of the identity provider.",
                status=status,
            )
            if status == 200:
                return error  # a malformed success body is worth another attempt
            raise error
        if method == "GET" and status != 200:
            raise error_from_response(body, status=status, context="tenant discovery failed")
        text = result.text
        if method == "GET" and self._insecure_origin is not None:
            text = text.replace(
                "http://" + self._insecure_origin, "https://" + self._insecure_origin
            )
        return TransportResponse(status, text, result.headers)


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
    return IdentityProviderUnavailableError(
        f"TLS verification of {origin} failed: {type(exc).__name__}",
        hint="the server's certificate is not trusted: pass ca_file= (or ssl_context=) for a "
        "test server, or fix the proxy's certificate chain. Verification is never turned off.",
    )
