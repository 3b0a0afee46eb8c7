"""The middleware's warm path: a source's ``peek_token``, the inlined origin lookup, the header.

Against real HTTPS servers where a request must go out; with a stub handler (no network)
where only the request object matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientRequest, ClientResponse
from yarl import URL

from aioentra import AccessToken
from aioentra._recursion import acquire
from aioentra.aiohttp import BearerTokenMiddleware

from .conftest import BILLING_SCOPE, TODO_SCOPE
from .support import FakeTokenSource, LocalIssuer, PeekingSource, ProtectedApi, Tls, token_id

pytestmark = pytest.mark.anyio


@pytest.fixture
async def peeking(issuer: LocalIssuer) -> AsyncIterator[PeekingSource]:
    source = PeekingSource(issuer)
    yield source
    await source.close()


def _session(tls: Tls, *middlewares: Any) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=tls.client_context())
    return aiohttp.ClientSession(connector=connector, middlewares=middlewares)


def _bearer(source: FakeTokenSource, *apis: ProtectedApi) -> BearerTokenMiddleware:
    return BearerTokenMiddleware(source, {api.origin: f"{api.audience}/.default" for api in apis})


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


async def test_a_warm_token_is_peeked_and_get_token_is_awaited_only_when_cold(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi
) -> None:
    async with _session(tls, _bearer(peeking, api)) as session:
        statuses = [await _get(session, api.url(f"/items/{i}")) for i in range(5)]
    assert statuses == [200] * 5
    assert peeking.peeks == 5 and peeking.get_calls == 1  # the first peek found nothing
    assert peeking.issued == 1 and len(set(api.tokens)) == 1


async def test_peeks_in_the_refresh_window_refresh_once_in_the_background(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi
) -> None:
    old = await peeking.get_token(TODO_SCOPE)
    peeking.gate.clear()  # the refresh "hangs" until the test opens the gate
    peeking.due(TODO_SCOPE)
    async with _session(tls, _bearer(peeking, api)) as session:
        during = await asyncio.gather(*(_get(session, api.url(f"/c/{i}")) for i in range(20)))
        assert peeking.refreshing  # ordering, not timing: all 20 went out meanwhile
        peeking.gate.set()
        await peeking.settled()
        after = await _get(session, api.url("/after"))
    assert during == [200] * 20 and after == 200
    assert set(api.tokens[:20]) == {token_id(old.token)}
    assert api.tokens[20] != token_id(old.token)
    assert peeking.issued == 2 and peeking.get_calls == 1  # one refresh; get_token: the test's


async def test_a_source_without_peek_token_is_awaited_on_every_request(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with _session(tls, _bearer(source, api)) as session:
        assert [await _get(session, api.url(f"/{i}")) for i in range(3)] == [200] * 3
    assert source.get_calls == 3 and source.issued == 1


async def test_inside_the_source_s_own_fetch_a_peeked_token_goes_out_and_its_401_is_returned(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi, billing: ProtectedApi
) -> None:
    """The recursion guard with peeks: a credential's request made during its own source's
    fetch (here: with the source marked as acquiring, as its fetch marks it) carries the warm
    token if there is one, is not answered with a new token on 401 (that would be the fetch
    it is part of), and goes out without a token when nothing is warm."""
    token = await peeking.get_token(TODO_SCOPE)
    api.reject(token.token, "invalid_token")
    async with _session(tls, _bearer(peeking, api, billing)) as session:

        async def the_credential_s_requests() -> tuple[int, int]:
            return await _get(session, api.url("/warm")), await _get(session, billing.url("/cold"))

        statuses = await asyncio.wait_for(acquire(peeking, the_credential_s_requests()), 30)
    assert statuses == (401, 401)
    assert api.hits[0].token == token_id(token.token)  # the peeked token went out, once
    assert billing.hits[0].authorization is None  # nothing warm: no token, no wait
    assert len(api.hits) == len(billing.hits) == 1
    assert (peeking.get_calls, peeking.renew_calls, peeking.issued) == (1, 0, 1)


# -- with a stub handler: the request object --------------------------------------------------


class _Response:
    status = 200


class _Static:
    """A warm source that peeks one token for every scope."""

    def __init__(self) -> None:
        self.token = AccessToken("t0ken", 2e9, 2e9, TODO_SCOPE)

    def peek_token(self, scope: str) -> AccessToken | None:
        return self.token

    async def get_token(self, scope: str, *, claims: str | None = None) -> AccessToken:
        raise AssertionError("peeked, not awaited")

    async def renew_token(self, scope: str, *, rejected: AccessToken) -> AccessToken:
        raise AssertionError("no 401 here")


def _request(url: str) -> ClientRequest:
    return ClientRequest("GET", URL(url), loop=asyncio.get_running_loop())


async def _send(bearer: BearerTokenMiddleware, url: str, inner: Any = None) -> str | None:
    """What the handler saw as ``Authorization``; the request holds none afterwards."""
    request = _request(url)
    seen: list[str | None] = []

    async def handler(req: ClientRequest) -> ClientResponse:
        seen.append(req.headers.get("Authorization"))
        if inner is not None:
            inner(req)
        return _Response()  # type: ignore[return-value]

    await bearer(request, handler)
    assert "Authorization" not in request.headers
    return seen[0]


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://todo.example/items", TODO_SCOPE),
        ("https://TODO.Example:443/items", TODO_SCOPE),  # yarl's netloc: "todo.example:443"
        ("https://todo.example.:443/", TODO_SCOPE),  # a trailing dot: scope_for's lookup
        ("https://user:pw@todo.example/", TODO_SCOPE),  # user info: scope_for's lookup
        ("https://billing.example:8443/x", BILLING_SCOPE),
        ("https://[::1]:9443/x", BILLING_SCOPE),
        ("https://[0:0::1]:9443/x", BILLING_SCOPE),
        ("http://localhost:8080/x", TODO_SCOPE),  # not https: scope_for's lookup
        # not a mapped origin
        ("http://todo.example/items", None),
        ("https://todo.example:8443/items", None),
        ("https://billing.example/x", None),
        ("https://todo.example.evil.example/", None),
        ("http://localhost:8081/x", None),
    ],
)
async def test_which_urls_get_the_token(url: str, scope: str | None) -> None:
    bearer = BearerTokenMiddleware(
        _Static(),
        {
            "https://todo.example": TODO_SCOPE,
            "https://billing.example:8443": BILLING_SCOPE,
            "https://[::1]:9443": BILLING_SCOPE,
            "http://localhost:8080": TODO_SCOPE,
        },
        allow_http=True,
    )
    assert await _send(bearer, url) == (None if scope is None else "Bearer t0ken")


async def test_the_header_is_taken_off_whatever_an_inner_handler_did_with_it() -> None:
    bearer = BearerTokenMiddleware(_Static(), {"https://todo.example": TODO_SCOPE})
    url = "https://todo.example/items"
    assert await _send(bearer, url, lambda req: req.headers.popall("Authorization")) is not None
    assert await _send(bearer, url, lambda req: req.headers.add("Authorization", "x")) is not None
