"""Bearer tokens for ``aiohttp`` client sessions.

The middleware speaks OAuth 2.0 bearer-token usage (RFC 6750) on behalf of a
daemon: for each request (and each redirect hop) to a mapped origin it

1. takes the current token for that origin's scope from the token source (a
   dictionary lookup when the token is warm: no lock, no I/O),
2. sends the request with ``Authorization: Bearer <token>``,
3. on ``401`` reads the ``WWW-Authenticate`` challenge and, at most once,
   acquires a token that answers it (the claims of a CAE challenge, or simply a
   token other than the rejected one) and sends the request again, provided
   its body can be sent twice.

Requests to any other origin pass through untouched: a token never travels to
an origin that is not mapped to its scope, whatever redirects say.

::

    async with TokenProvider(credential, tenant_id=..., client_id=...) as provider:
        async with authenticated_session(
            provider, {"https://graph.microsoft.com": "https://graph.microsoft.com/.default"}
        ) as session:
            async with session.get("https://graph.microsoft.com/v1.0/users") as response:
                ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs
from aiohttp.multipart import BodyPartReaderPayload
from aiohttp.payload import AsyncIterablePayload, Payload

from .._challenge import Challenge, Retry, decide, parse_bearer_challenge
from .._origins import URL_SLOTS, OriginScopes
from .._recursion import ACQUIRING, acquire, peek_of
from .._token import AccessToken

__all__ = ["BearerTokenMiddleware", "TokenSource", "authenticated_session", "is_replayable"]

_log = logging.getLogger("aioentra.aiohttp")
_AUTHORIZATION = hdrs.AUTHORIZATION


class TokenSource(Protocol):
    """What the middleware needs from a token provider.

    :class:`aioentra.TokenProvider` is one; any object with these two coroutine
    methods will do. Both must be cheap when the answer is cached and must
    single-flight their network calls: the middleware calls them on every
    request and never adds a lock of its own.

    A source may also have ``peek_token(scope) -> AccessToken | None``, a plain
    method that returns the token ``get_token(scope)`` would return without
    waiting, or ``None`` (see :meth:`aioentra.TokenProvider.peek_token`). The
    middleware then calls it first, and awaits ``get_token`` only on ``None``.
    """

    async def get_token(self, scope: str, *, claims: str | None = None) -> AccessToken:
        """The current token for ``scope`` (one that satisfies ``claims`` if given)."""
        ...

    async def renew_token(self, scope: str, *, rejected: AccessToken) -> AccessToken:
        """A token for ``scope`` other than ``rejected``.

        If a newer token is already cached, return it; otherwise refresh once for
        all callers that hold the same rejected token.
        """
        ...


def is_replayable(body: Payload | Literal[b""]) -> bool:
    """Whether a request body can be sent a second time, identically.

    No body, bytes, str, JSON, url-encoded and multipart forms of such values, and
    seekable files (aiohttp rewinds them) can. An async iterable (generator,
    ``StreamReader``, a multipart part being proxied) is read once, and a stream
    that cannot seek is spent once sent: aiohttp would re-send them empty.
    """
    if isinstance(body, bytes):
        return True
    if isinstance(body, (AsyncIterablePayload, BodyPartReaderPayload)):
        return False
    # ``consumed`` exists since aiohttp 3.12.1; without it, assume the worst.
    return not getattr(body, "consumed", True)


class BearerTokenMiddleware:
    """An aiohttp client middleware that authenticates requests to mapped origins.

    Args:
        source: where tokens come from, typically an open :class:`aioentra.TokenProvider`.
        scopes: origin -> scope, e.g. ``{"https://graph.microsoft.com":
            "https://graph.microsoft.com/.default"}``. Only these origins get a token.
        allow_http: allow plain-http origins of the map whose host is loopback
            (``True``), or exactly the listed ones; for test servers only.

    Raises:
        ConfigurationError: an origin is malformed, duplicated, or plain http and
            not allowed.

    Use it in ``aiohttp.ClientSession(middlewares=[...])`` or per request with
    ``session.get(url, middlewares=[...])`` (a per-request list replaces the
    session's list). A ``401`` is retried at most once per request or redirect hop.
    """

    __slots__ = ("_netlocs", "_origins", "_peek", "_scope_for", "_source")

    def __init__(
        self,
        source: TokenSource,
        scopes: Mapping[str, str],
        *,
        allow_http: bool | Iterable[str] = False,
    ) -> None:
        self._source = source
        self._origins = OriginScopes(scopes, allow_http=allow_http)
        self._netlocs = self._origins.netlocs
        self._scope_for = self._origins.scope_for
        self._peek = peek_of(source)

    @property
    def scopes(self) -> Mapping[str, str]:
        """The normalised origin -> scope map."""
        return self._origins.as_mapping()

    def __repr__(self) -> str:
        if getattr(self, "_origins", None) is None:
            return "BearerTokenMiddleware(<not built>)"
        return f"BearerTokenMiddleware(origins={sorted(self.scopes)!r})"

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        # An https URL's netloc as yarl keeps it is a key of OriginScopes.netlocs (two slot
        # reads, one dict lookup: aioentra._origins); anything else gets scope_for.
        url = request.url
        scope = self._netlocs.get(url._netloc) if URL_SLOTS and url._scheme == "https" else None
        if scope is None and (scope := self._scope_for(url)) is None:
            return await handler(request)
        # A warm token, without a coroutine (peek_token): nothing to wait for, so nothing
        # that could wait for itself. Otherwise the recursion guard (aioentra._recursion): a
        # request made from inside this source's own fetch goes out without a token instead
        # of asking the source again, forever; any other caller awaits the source.
        peek = self._peek
        token = None if peek is None else peek(scope)
        if token is None:
            if self._source in ACQUIRING.get():
                return await handler(request)
            token = await acquire(self._source, self._source.get_token(scope))
        # _send(), inlined: this is the path every request takes.
        request.headers[_AUTHORIZATION] = token.authorization
        try:
            response = await handler(request)
        finally:
            try:  # noqa: SIM105  # contextlib.suppress costs a context manager per request
                del request.headers[_AUTHORIZATION]  # every Authorization, as popall() does
            except KeyError:  # gone already (an inner middleware took it off)
                pass
        if response.status != 401:
            return response
        return await self._answer_401(request, handler, response, scope, token)

    async def _answer_401(
        self,
        request: ClientRequest,
        handler: ClientHandlerType,
        response: ClientResponse,
        scope: str,
        rejected: AccessToken,
    ) -> ClientResponse:
        """RFC 6750 section 3.1: a new token can fix ``invalid_token`` and claims challenges."""
        if self._source in ACQUIRING.get():
            # Sent with a peeked token from inside this source's own fetch (a refresh ahead,
            # a renewal): a new token would be that very fetch's, which waits for this.
            return response
        verdict = decide(response.status, response.headers.getall(hdrs.WWW_AUTHENTICATE, []))
        decision, challenge = verdict.retry, verdict.challenge
        if decision is None:
            _not_retried(request, challenge, "the challenge is not one a new token answers")
            return response
        if not is_replayable(request.body):
            _not_retried(request, challenge, "the request body cannot be sent twice")
            return response
        # Give the connection back, and let the first attempt's body writer settle
        # (a file payload rewinds only once it has) before sending again.
        response.release()
        await request.close()
        if decision is Retry.CLAIMS:
            assert challenge is not None  # CLAIMS is decided from a Bearer challenge
            token = await acquire(
                self._source, self._source.get_token(scope, claims=challenge.claims)
            )
        else:
            renewed = self._source.renew_token(scope, rejected=rejected)
            token = await acquire(self._source, renewed)
        retried = await _send(request, handler, token)
        if retried.status == 401:
            again = parse_bearer_challenge(retried.headers.getall(hdrs.WWW_AUTHENTICATE, []))
            _not_retried(request, again, "the new token was rejected too")
        return retried


async def _send(
    request: ClientRequest, handler: ClientHandlerType, token: AccessToken
) -> ClientResponse:
    """Send with the token, then take it off the request object.

    The header is on the wire by the time the handler returns. Removing it keeps
    the token out of ``response.request_info`` (a live view of these headers) and
    so out of ``ClientResponseError`` reprs and anything that logs them.
    """
    request.headers[hdrs.AUTHORIZATION] = token.authorization
    try:
        return await handler(request)
    finally:
        request.headers.popall(hdrs.AUTHORIZATION, None)


def _not_retried(request: ClientRequest, challenge: Challenge | None, reason: str) -> None:
    """WARNING with method, origin and the challenge's ``error``: no path, token or claims."""
    error = challenge.error if challenge is not None else None
    _log.warning(
        "401 from %s %s not retried: %s (challenge error=%s)",
        request.method,
        request.url.origin(),
        reason,
        error or "none",
    )


def authenticated_session(
    provider: TokenSource,
    scopes: Mapping[str, str],
    *,
    allow_http: bool | Iterable[str] = False,
    **client_session_kwargs: Any,
) -> aiohttp.ClientSession:
    """Open an ``aiohttp.ClientSession`` whose requests to mapped origins carry tokens.

    Call it from a coroutine and use it as ``async with``; the session does not own
    ``provider``. Any ``middlewares=`` you pass run *outside* the bearer middleware,
    so a retry middleware re-enters it on each attempt (and sends the current
    token) and a logging middleware never sees the ``Authorization`` header.

    ::

        async with authenticated_session(
            provider,
            {"https://todo.contoso.com": "api://todo/.default"},
            middlewares=[retry_429_503],
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session:
            ...
    """
    outer = tuple(client_session_kwargs.pop("middlewares", None) or ())
    bearer = BearerTokenMiddleware(provider, scopes, allow_http=allow_http)
    return aiohttp.ClientSession(middlewares=(*outer, bearer), **client_session_kwargs)
