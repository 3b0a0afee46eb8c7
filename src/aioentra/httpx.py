"""Bearer tokens for ``httpx.AsyncClient``: an ``httpx.Auth`` with the middleware's guarantees.

:class:`BearerTokenAuth` speaks OAuth 2.0 bearer-token usage (RFC 6750) for a daemon. For
each request to a mapped origin it

1. takes the current token for that origin's scope from the token source (a dictionary
   lookup when the token is warm: no lock, no I/O),
2. sends the request with ``Authorization: Bearer <token>`` and, once httpx hands back the
   response, takes the header off every request object that send left behind,
3. on ``401`` reads the ``WWW-Authenticate`` challenge and, at most once per origin,
   acquires a token that answers it (the claims of a CAE challenge, or simply a token other
   than the rejected one) and sends the request again, provided its body can be sent twice.

Requests to any other origin pass through untouched.

httpx runs an ``Auth`` once per ``send``, not once per redirect hop, so redirects work like
this. httpx follows them itself and copies the headers to each hop. It keeps
``Authorization`` on a same-origin hop and drops it on a cross-origin one (except
``http://host`` to ``https://host``, see below). So an origin outside the map never
receives a token. A mapped origin reached by a redirect gets that hop without a token. If it
answers ``401``, the auth sends that hop again with *its own* token. A token only ever
reaches the origin it is mapped to.

::

    async with TokenProvider(credential, tenant_id=..., client_id=...) as provider:
        async with authenticated_client(
            provider, {"https://graph.microsoft.com": "https://graph.microsoft.com/.default"}
        ) as client:
            response = await client.get("https://graph.microsoft.com/v1.0/users")
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

try:
    import httpx
except ImportError:  # pragma: no cover - exercised in a subprocess without httpx
    raise ImportError(
        "aioentra.httpx needs httpx (httpx>=0.27), which is not installed: "
        "pip install 'aioentra[httpx]'",
        name="httpx",
    ) from None

from ._challenge import Challenge, Retry, decide, parse_bearer_challenge
from ._errors import ConfigurationError
from ._origins import Origin, OriginScopes, origin_from_parts
from ._recursion import ACQUIRING, acquire, peek_of
from ._token import AccessToken

if TYPE_CHECKING:
    from .aiohttp import TokenSource

__all__ = ["BearerTokenAuth", "authenticated_client", "is_replayable"]

_log = logging.getLogger("aioentra.httpx")


_MULTIPART: tuple[type, ...] = ()
try:  # httpx's multipart stream is not public; without it multipart counts as one-shot
    from httpx._multipart import MultipartStream

    _MULTIPART = (MultipartStream,)
except ImportError:  # pragma: no cover - a future httpx
    pass

_SYNC_HINT = (
    "a token provider is async: use httpx.AsyncClient(auth=...) or "
    "aioentra.httpx.authenticated_client()."
)


def is_replayable(request: httpx.Request) -> bool:
    """Whether ``request``'s body can be sent a second time, identically.

    httpx sends a request's ``stream``. It turns no body, ``bytes``, ``str``, ``json=`` and
    url-encoded ``data=`` into a ``ByteStream`` that holds the bytes, and so does
    ``await request.aread()``. Such a body can be sent again. A multipart body (``files=``)
    is rendered again from its fields on each send, and httpx rewinds each file before
    reading it. So it can be sent again if every file is ``bytes``/``str`` or a seekable file.
    An async iterator or generator is read once: sent again, it raises ``StreamConsumed`` or
    goes out empty. A pipe inside a multipart body does not rewind. Neither can be sent twice.
    """
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    if isinstance(stream, _MULTIPART):
        return all(_rewinds(field) for field in getattr(stream, "fields", ()))
    return False


def _rewinds(field: object) -> bool:
    """A multipart field that renders the same bytes every time."""
    if not hasattr(field, "file"):
        return True  # a DataField: str/bytes/number held in memory
    file = field.file
    if isinstance(file, (bytes, str)):
        return True
    seekable = getattr(file, "seekable", None)
    try:
        return callable(seekable) and bool(seekable())
    except (OSError, ValueError):  # a closed file
        return False


class BearerTokenAuth(httpx.Auth):
    """An ``httpx.Auth`` that authenticates requests to mapped origins with bearer tokens.

    Args:
        source: where tokens come from, typically an open :class:`aioentra.TokenProvider`
            (any :class:`aioentra.aiohttp.TokenSource`).
        scopes: origin -> scope, e.g. ``{"https://graph.microsoft.com":
            "https://graph.microsoft.com/.default"}``. Only these origins get a token.
        allow_http: allow plain-http origins of the map whose host is loopback
            (``True``), or exactly the listed ones; for test servers only.

    Raises:
        ConfigurationError: an origin is malformed, duplicated, or plain http and not
            allowed. Also ``http://host`` (port 80) mapped to a scope that
            ``https://host`` is not: httpx keeps ``Authorization`` on that one redirect.

    For ``httpx.AsyncClient`` only (``sync_auth_flow`` raises). Pass it as
    ``AsyncClient(auth=...)`` or per request as ``client.get(url, auth=...)``;
    ``auth=None`` on a request of an authenticated client sends it without a token::

        auth = BearerTokenAuth(provider, {"https://todo.contoso.com": "api://todo/.default"})
        async with httpx.AsyncClient(auth=auth, timeout=30) as client:
            response = await client.post("https://todo.contoso.com/items", json={"t": 1})
    """

    requires_request_body = False  # never buffer a streamed upload to authenticate it
    requires_response_body = False  # a 401's status and headers are enough

    def __init__(
        self,
        source: TokenSource,
        scopes: Mapping[str, str],
        *,
        allow_http: bool | Iterable[str] = False,
    ) -> None:
        self._source = source
        self._peek = peek_of(source)
        self._origins = OriginScopes(scopes, allow_http=allow_http)
        _refuse_kept_on_upgrade(self._origins)

    @property
    def scopes(self) -> Mapping[str, str]:
        """The normalised origin -> scope map."""
        return self._origins.as_mapping()

    def __repr__(self) -> str:
        if getattr(self, "_origins", None) is None:
            return "BearerTokenAuth(<not built>)"
        return f"BearerTokenAuth(origins={sorted(self.scopes)!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refused: a sync ``httpx.Client`` cannot await the token source."""
        raise ConfigurationError(
            "BearerTokenAuth works with httpx.AsyncClient only", hint=_SYNC_HINT
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Refused, as :meth:`sync_auth_flow`: the flow is :meth:`async_auth_flow`."""
        raise ConfigurationError(
            "BearerTokenAuth works with httpx.AsyncClient only", hint=_SYNC_HINT
        )

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send ``request`` with its origin's token, and answer one 401 per origin.

        Each ``yield`` hands a request to httpx, which sends it and follows redirects if
        asked. It gets back the last hop's response, whose ``.request`` is that hop.
        """
        scope = self._origins.scope_of(_origin(request.url))
        if scope is None:
            yield request
            return
        # A warm token without a coroutine (peek_token), else the recursion guard, as in the
        # aiohttp middleware: a request made from inside this source's own fetch goes out
        # without a token instead of asking the source again, forever (aioentra._recursion).
        peek = self._peek
        token = None if peek is None else peek(scope)
        if token is None:
            if self._source in ACQUIRING.get():
                yield request
                return
            token = await acquire(self._source, self._source.get_token(scope))
        renewed: set[Origin] = set()  # origins whose rejected token was replaced
        introduced: set[Origin] = set()  # redirect targets sent their first token
        while True:
            value = token.authorization
            request.headers["Authorization"] = value
            try:
                response = yield request
            except BaseException:  # an error while sending reaches here as GeneratorExit
                _drop(request.headers, value)
                raise
            hop = response.request  # ``request`` itself unless httpx followed a redirect
            carried = hop.headers.get("Authorization") == value
            _drop(request.headers, value)
            _forget(response, value)
            if response.status_code != 401:
                return
            if self._source in ACQUIRING.get():
                return  # sent with a peeked token from inside this source's own fetch: a new
                # token would be that very fetch's, which waits for this request
            origin = _origin(hop.url)
            hop_scope = self._origins.scope_of(origin)
            if hop_scope is None or (carried and hop_scope != scope):
                return  # not our token's 401: the origin is not mapped (to this scope)
            assert origin is not None  # a mapped origin is an origin
            if origin in (renewed if carried else introduced):
                again = parse_bearer_challenge(response.headers.get_list("WWW-Authenticate"))
                _not_retried(hop, again, "the new token was rejected too")
                return
            verdict = decide(401, response.headers.get_list("WWW-Authenticate"))
            if verdict.retry is None:
                _not_retried(hop, verdict.challenge, "the challenge is not one a new token answers")
                return
            if not is_replayable(hop):
                _not_retried(hop, verdict.challenge, "the request body cannot be sent twice")
                return
            (renewed if carried else introduced).add(origin)
            token = await acquire(
                self._source,
                self._answer(
                    hop_scope, verdict.retry, verdict.challenge, token if carried else None
                ),
            )
            scope, request = hop_scope, hop

    def _answer(
        self,
        scope: str,
        retry: Retry,
        challenge: Challenge | None,
        rejected: AccessToken | None,
    ) -> Awaitable[AccessToken]:
        """RFC 6750 section 3.1: the token that can turn this 401 into a success.

        ``rejected`` is ``None`` when the hop went out without our token (httpx dropped it
        on a cross-origin redirect): that origin's current token is the answer.
        """
        if retry is Retry.CLAIMS:
            assert challenge is not None  # CLAIMS is decided from a Bearer challenge
            return self._source.get_token(scope, claims=challenge.claims)
        if rejected is None:
            return self._source.get_token(scope)
        return self._source.renew_token(scope, rejected=rejected)


def _origin(url: httpx.URL) -> Origin | None:
    """The normalised origin of an httpx URL (already lower-cased, IDNA in ``raw_host``)."""
    return origin_from_parts(url.scheme, url.raw_host.decode("ascii"), url.port)


def _drop(headers: httpx.Headers, value: str) -> None:
    """Remove ``Authorization`` if it is ours (a header set by the user stays)."""
    if headers.get("Authorization") == value:
        del headers["Authorization"]


def _forget(response: httpx.Response, value: str) -> None:
    """Take the token off every request object httpx built for this send.

    The header is on the wire by the time httpx returns the response. httpx copies it to
    each same-origin redirect hop (``response.history[i].request``, ``response.request``)
    and to the hop it did not follow (``response.next_request``). Users log these objects,
    and a ``next_request`` sent through another client would carry it along. Sending
    ``next_request`` through this auth sets the right token again.
    """
    _drop(response.request.headers, value)
    for earlier in response.history:
        _drop(earlier.request.headers, value)
    if response.next_request is not None:
        _drop(response.next_request.headers, value)


def _refuse_kept_on_upgrade(origins: OriginScopes) -> None:
    """Refuse a map in which httpx itself would carry a token to the wrong origin.

    httpx keeps ``Authorization`` on one kind of cross-origin redirect, an HTTPS upgrade:
    ``http://host`` (port 80) to ``https://host`` (port 443). An auth cannot stop it, because
    it does not run per hop. So a mapped ``http://host`` needs ``https://host`` mapped to the
    same scope. Only loopback hosts can be mapped over http.
    """
    for text, scope in origins.as_mapping().items():
        url = httpx.URL(text)
        origin = _origin(url)
        if origin is None or origin[0] != "http" or origin[2] != 80:
            continue
        upgrade = ("https", origin[1], 443)
        if origins.scope_of(upgrade) != scope:
            raise ConfigurationError(
                f"{text} would hand its token to https://{url.netloc.decode('ascii')} "
                "on a redirect",
                hint=f"httpx keeps Authorization from http to https on the same host: map "
                f"'https://{url.netloc.decode('ascii')}' to the same scope, or serve the "
                "test API on a port other than 80.",
            )


def _not_retried(request: httpx.Request, challenge: Challenge | None, reason: str) -> None:
    """WARNING with method, origin and the challenge's ``error``: no path, token or claims."""
    error = challenge.error if challenge is not None else None
    _log.warning(
        "401 from %s %s://%s not retried: %s (challenge error=%s)",
        request.method,
        request.url.scheme,
        request.url.netloc.decode("ascii"),
        reason,
        error or "none",
    )


def authenticated_client(
    provider: TokenSource,
    scopes: Mapping[str, str],
    *,
    allow_http: bool | Iterable[str] = False,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """Open an ``httpx.AsyncClient`` whose requests to mapped origins carry tokens.

    The client's ``auth`` is a :class:`BearerTokenAuth`. Every other keyword goes to
    ``httpx.AsyncClient`` unchanged, and the client keeps httpx's defaults (including
    ``follow_redirects=False``). Use it as ``async with``. The client does not own
    ``provider``.

    ::

        async with authenticated_client(
            provider,
            {"https://todo.contoso.com": "api://todo/.default"},
            timeout=httpx.Timeout(30),
            follow_redirects=True,
        ) as client:
            items = (await client.get("https://todo.contoso.com/items")).json()

    Raises:
        ConfigurationError: as :class:`BearerTokenAuth`, or ``auth=`` was passed.
    """
    if "auth" in client_kwargs:
        raise ConfigurationError(
            "authenticated_client() sets auth= itself",
            hint="to combine auths, build httpx.AsyncClient(auth=...) around your own "
            "aioentra.httpx.BearerTokenAuth.",
        )
    auth = BearerTokenAuth(provider, scopes, allow_http=allow_http)
    return httpx.AsyncClient(auth=auth, **client_kwargs)
