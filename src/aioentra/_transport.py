"""msal's ``http_client``, served by the provider's aiohttp session on the event loop.

msal is synchronous and runs in the provider's worker threads. Each of its HTTP calls is handed
to the event loop (``run_coroutine_threadsafe``) and performed once with aiohttp, so TLS,
proxies and timeouts are configured in one place. What fails becomes a typed error (msal drops
the body of a 5xx and cannot parse a non-JSON 4xx); whether to try again is the engine's
decision, made on the event loop, so no worker thread sleeps through a backoff.

msal's only GET is OpenID discovery. Past 408, 429 and 5xx, a discovery answer that is not an
OpenID configuration (a 404 or other 4xx, a redirect, a body that is not JSON or names no
``token_endpoint``) is a :class:`~aioentra.ConfigurationError` naming the URL: the same request
would get the same answer, so it is not retried.

With a shared cache (``cache=``, such as :class:`~aioentra.redis.RedisCache`), the discovery
document goes through it like a token: one process of all those sharing the cache asks, the
others read its answer (:meth:`LoopTransport.get`). The document is public, but the entry is
sealed with the cache's keys like a token, so only a process holding them can write what the
others trust; only an answer that passed the checks above is stored, for
:data:`DISCOVERY_TTL` seconds.

A successful token answer is validated here, before msal sees it
(:func:`~aioentra._token.parse_token_response`): msal only ever gets a well-formed body, and
the engine takes the validated token from :meth:`LoopTransport.last_token`.

Why the bridge is hand-written rather than ``anyio.from_thread``: the provider's worker threads
are its own (see ``_workers.py``), not anyio's, and :meth:`LoopTransport.cancel_pending` must
release every thread waiting on the loop when the provider closes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ._errors import (
    AioEntraError,
    ConfigurationError,
    IdentityProviderUnavailableError,
    ProviderClosedError,
    ThrottledError,
    error_from_response,
)
from ._policy import RETRYABLE_STATUS, parse_retry_after
from ._telemetry import NO_TELEMETRY, Guarded
from ._token import TokenResponse, parse_token_response

if TYPE_CHECKING:
    # aiohttp is imported where a request is sent (the session, made before, has loaded it).
    import aiohttp

    from ._cache import SharedCache

__all__ = ["DISCOVERY_TTL", "PLACEHOLDER_SECRET", "LoopTransport", "TransportResponse"]

T = TypeVar("T")

_REQUEST_URL: contextvars.ContextVar[str] = contextvars.ContextVar(
    "aioentra_request_url", default=""
)
"""The URL (without its query) of the request being judged, for discovery errors."""

MAX_BODY = 1024 * 1024
"""Largest answer read from the identity provider (its real ones are a few KB)."""

DISCOVERY_TTL = 24 * 3600.0
"""Seconds an OpenID discovery document is kept in a shared cache; a process takes a stored one
while at least half of that is left, so the document is fetched again about twice a day."""

_DISCOVERY_PATH = "/.well-known/openid-configuration"

PLACEHOLDER_SECRET = "aioentra-proof-is-sent-per-request"
"""What msal applications are built with: every token request carries the credential's current
proof in its body instead, and the transport refuses to send this value."""


class TransportResponse:
    """The response shape msal's ``http_client`` contract asks for."""

    def __init__(
        self,
        status_code: int,
        text: str,
        headers: Mapping[str, str],
        token: TokenResponse | None = None,
    ) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = dict(headers)
        self.token = token

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise IdentityProviderUnavailableError(
                f"identity provider answered HTTP {self.status_code}", status=self.status_code
            )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class LoopTransport:
    """A synchronous ``http_client`` for msal whose I/O runs on ``loop``.

    It is also the bridge for credential coroutines: everything a worker thread waits for on
    the loop goes through :meth:`run`, bounded by the thread's deadline, so
    :meth:`cancel_pending` releases every waiting thread when the provider closes.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        *,
        attempt_timeout: float,
        insecure_origin: str | None = None,
        oidc: bool = False,
        telemetry: Guarded | None = None,
        shared: SharedCache | None = None,
    ) -> None:
        self._loop = loop
        self._shared = shared
        self._telemetry = telemetry or Guarded(NO_TELEMETRY)
        self._session = session
        self._attempt_timeout = attempt_timeout
        # A plain-http loopback authority: msal only speaks https, so its https URLs for this
        # one origin are sent over http and http URLs in its answers are shown to msal as https.
        self._insecure_origin = insecure_origin
        # The authority is an OpenID issuer (oidc_authority=), not Entra: for discovery hints.
        self._oidc = oidc
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        # Per worker thread: the deadline of the token request it runs, its last POST's status
        # and validated token. Read and written only on that worker thread.
        self._local = threading.local()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- msal's http_client contract (called from worker threads) -----------------------------

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        if isinstance(data, Mapping) and data.get("client_secret") == PLACEHOLDER_SECRET:
            raise AioEntraError("internal error: a token request without the credential's proof")
        response = self.run(self._request("POST", url, params, data, headers, self.deadline()))
        self._local.last_status = response.status_code
        self._local.last_token = response.token
        return response

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        if self._shared is not None and not params and urlsplit(url).path.endswith(_DISCOVERY_PATH):
            return self.run(self._shared_document(self._shared, url, headers, self.deadline()))
        return self.run(self._request("GET", url, params, None, headers, self.deadline()))

    def close(self) -> None:
        """msal may call this; the session belongs to the provider."""

    # -- per worker thread ----------------------------------------------------------------------

    def begin(self, deadline: float) -> None:
        """Start a token request in this worker thread, to end by ``deadline`` (loop time)."""
        self._local.deadline = deadline
        self._local.last_status = None
        self._local.last_token = None

    def deadline(self) -> float:
        """This worker thread's deadline (loop time); ``begin()`` sets it."""
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            raise AioEntraError("internal error: a worker thread request without a deadline")
        return deadline

    def last_status(self) -> int | None:
        """HTTP status of this worker thread's last POST: msal's error dicts leave it out."""
        status: int | None = getattr(self._local, "last_status", None)
        return status

    def last_token(self) -> TokenResponse | None:
        """The validated token of this worker thread's last successful POST."""
        token: TokenResponse | None = getattr(self._local, "last_token", None)
        return token

    # -- the bridge -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it (from a worker thread), by its deadline."""
        deadline = self.deadline()
        with self._lock:
            if self._closed:
                coro.close()
                raise ProviderClosedError("the token provider is closed")
            future = asyncio.run_coroutine_threadsafe(_bounded(coro, deadline), self._loop)
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

    # -- discovery through the shared cache, on the event loop ----------------------------------

    async def _shared_document(
        self,
        shared: SharedCache,
        url: str,
        headers: Mapping[str, str] | None,
        deadline: float,
    ) -> TransportResponse:
        """OpenID discovery through the shared cache: one request for all the processes."""
        from ._cache import CachedToken

        own: list[TransportResponse] = []

        async def fetch() -> CachedToken:
            # _request raises for anything that is not a usable OpenID configuration: only a
            # checked document is stored, and an error reaches msal as it would without a cache.
            response = await self._request("GET", url, None, None, headers, deadline)
            own.append(response)
            return CachedToken(response.text, time.time(), DISCOVERY_TTL, None)

        stored, _ = await shared.fetch(f"discovery|{url}", fetch, min_remaining=DISCOVERY_TTL / 2)
        if own:
            return own[0]
        body = _json_object(stored.access_token)
        if body is None or not all(
            isinstance(body.get(f), str) for f in ("authorization_endpoint", "token_endpoint")
        ):
            # Sealed, so written by a process with the keys; but never trust a bad one.
            return await self._request("GET", url, None, None, headers, deadline)
        return TransportResponse(200, stored.access_token, {"Content-Type": "application/json"})

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
        deadline: float,
    ) -> TransportResponse:
        parts = urlsplit(self._wire_url(url))
        origin = f"{parts.scheme}://{parts.netloc}"
        remaining = min(self._attempt_timeout, deadline - self._loop.time())
        if remaining <= 0:
            raise _out_of_time(method, origin)
        session = await self._session()
        import aiohttp  # loaded with the session: no cost past the first request

        remaining = min(self._attempt_timeout, deadline - self._loop.time())
        if remaining <= 0:
            raise _out_of_time(method, origin)
        with self._telemetry.request_span(method, f"{origin}{parts.path}") as span:
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
                    raw = await _read_bounded(response)
                    status, response_headers = response.status, response.headers
                    charset = response.charset or "utf-8"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                span.failed(
                    "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                )
                from ._netfail import connection_error

                raise connection_error(f"{method} {origin}", exc, timeout=remaining) from None
            span.status(status)
        if len(raw) > MAX_BODY:
            raise IdentityProviderUnavailableError(
                f"{method} {origin}: the answer is larger than {MAX_BODY // 1024} KB",
                hint="a proxy or a broken server is answering; nothing of it is used.",
                status=status,
            )
        try:
            text = raw.decode(charset, errors="replace")
        except LookupError:  # an unknown charset
            text = raw.decode("utf-8", errors="replace")
        # Each request runs in a task of its own, so the variable is this request's.
        _REQUEST_URL.set(f"{origin}{parts.path}")
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
        if method == "GET":
            # msal's only GET is OIDC discovery. Past 408, 429 and 5xx (above), what it answers
            # is the same on every attempt: the URL is wrong, not the identity provider down.
            where = _REQUEST_URL.get() or origin
            if status != 200 or body is None:
                raise _discovery_error(where, status, body, oidc=self._oidc)
            missing = [f for f in ("authorization_endpoint", "token_endpoint") if f not in body]
            if missing:
                raise ConfigurationError(
                    f"the document at {where} is not an OpenID configuration: it has "
                    f"no {' or '.join(missing)}",
                    hint=_discovery_hint(self._oidc),
                    status=status,
                )
            if self._insecure_origin is not None:
                origin_text = self._insecure_origin
                text = text.replace("http://" + origin_text, "https://" + origin_text)
            return TransportResponse(status, text, headers)
        if body is None:
            error = IdentityProviderUnavailableError(
                f"the identity provider answered HTTP {status} without a JSON body ({origin})",
                hint="a proxy or gateway may be answering instead of the identity provider.",
                status=status,
            )
            # A malformed success body is worth another attempt; a non-JSON 4xx is not.
            error.retryable = status == 200
            raise error
        if status != 200 and "access_token" in body:
            error = IdentityProviderUnavailableError(
                f"the identity provider answered HTTP {status} with a token ({origin})",
                hint="only a 200 answer carries a token: a proxy or a broken server is "
                "answering; nothing of it is used.",
                status=status,
            )
            error.retryable = False
            raise error
        if status == 200 and "error" not in body:
            token = parse_token_response(body)
            # msal sees the validated answer only: nothing it could trip over.
            minimal = {
                "access_token": token.access_token,
                "token_type": "Bearer",
                "expires_in": token.expires_in,
            }
            return TransportResponse(status, json.dumps(minimal), headers, token)
        return TransportResponse(status, text, headers)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first ``MAX_BODY + 1`` bytes: enough to tell it is too large."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


async def _bounded(coro: Coroutine[Any, Any, T], deadline: float) -> T:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        coro.close()
        raise _out_of_time("the credential", "")
    try:
        return await asyncio.wait_for(coro, remaining)
    except asyncio.TimeoutError:
        raise _out_of_time("the credential", "") from None


def _out_of_time(what: str, origin: str) -> IdentityProviderUnavailableError:
    target = f"{what} {origin}".strip()
    return IdentityProviderUnavailableError(
        f"{target}: no time left for the request (RetryPolicy.total_timeout)",
        hint="the identity provider or the credential's source is slow; "
        "RetryPolicy.total_timeout bounds a whole token request.",
    )


def _discovery_hint(oidc: bool) -> str:
    if oidc:
        return (
            "check oidc_authority: it must be the provider's issuer URL, under which it serves "
            "/.well-known/openid-configuration."
        )
    return (
        "check the authority and the tenant; for an OpenID provider that is not Entra ID, "
        "pass oidc_authority= its issuer URL."
    )


def _discovery_error(
    where: str, status: int, body: Mapping[str, Any] | None, *, oidc: bool
) -> ConfigurationError:
    """The error of a discovery answer that is not an OpenID configuration (not retryable: a
    404 or a 400 ``invalid_tenant`` is the same on every attempt)."""
    message = f"no OpenID configuration at {where} (HTTP {status})"
    if body is None and status == 200:
        message = f"no OpenID configuration at {where}: the answer is not a JSON object"
    hint = _discovery_hint(oidc)
    if body is None or "error" not in body:
        return ConfigurationError(message, hint=hint, status=status)
    parsed = error_from_response(body, status=status, context=message)
    # Entra's own answer may say more (AADSTS90002: the tenant does not exist); keep its
    # type when it is a configuration error, and its codes and ids in any case.
    cls = type(parsed) if isinstance(parsed, ConfigurationError) else ConfigurationError
    return cls(
        parsed.message,
        hint=parsed.hint or hint,
        error=parsed.error,
        error_codes=parsed.error_codes,
        correlation_id=parsed.correlation_id,
        trace_id=parsed.trace_id,
        status=status,
    )


def _with_body(error: AioEntraError, body: Mapping[str, Any] | None) -> AioEntraError:
    if not body:
        return error
    parsed = error_from_response(body, status=error.status)
    return type(error)(
        error.message,
        hint=error.hint,
        error=parsed.error,
        error_codes=parsed.error_codes,
        correlation_id=parsed.correlation_id,
        trace_id=parsed.trace_id,
        status=error.status,
        retry_after=error.retry_after,
    )
