"""The middleware against real HTTPS servers, with a counting token source (no emulator).

The servers validate RS256 JWTs (signature, audience, issuer, expiry), so "the API got a
token" below always means "the API got a valid token for its own audience".
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

from aioentra import AioEntraError, ConfigurationError, IdentityProviderUnavailableError
from aioentra.aiohttp import BearerTokenMiddleware, authenticated_session

from .conftest import BILLING_SCOPE, TODO_SCOPE
from .support import (
    FakeTokenSource,
    LocalIssuer,
    ProtectedApi,
    RecordingServer,
    Tls,
    token_id,
)

pytestmark = pytest.mark.anyio


def _session(tls: Tls, *middlewares: Any, **kwargs: Any) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=tls.client_context())
    return aiohttp.ClientSession(connector=connector, middlewares=middlewares, **kwargs)


def _bearer(source: FakeTokenSource, *apis: ProtectedApi, **kwargs: Any) -> BearerTokenMiddleware:
    scopes = {api.origin: f"{api.audience}/.default" for api in apis}
    return BearerTokenMiddleware(source, scopes, **kwargs)


async def _get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    async with session.get(url, **kwargs) as response:
        await response.read()
        return response.status


# -- which origins get a token -------------------------------------------------------------------


async def test_token_goes_to_the_mapped_origin_only(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, other: RecordingServer
) -> None:
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 200
        assert await _get(session, other.url("/items")) == 200
        # localhost and 127.0.0.1 are different origins, even on the same port
        async with session.get(f"https://localhost:{api.port}/items") as response:
            assert response.status == 401
    assert api.statuses == [200, 401]
    assert api.hits[1].authorization is None
    assert other.authorizations == [None]
    assert source.get_calls == 1


async def test_plain_http_to_a_mapped_https_origin_gets_no_token(
    tls: Tls, source: FakeTokenSource
) -> None:
    plain = RecordingServer(None)
    await plain.start()
    try:
        bearer = BearerTokenMiddleware(source, {f"https://127.0.0.1:{plain.port}": TODO_SCOPE})
        async with _session(tls, bearer) as session:
            assert await _get(session, plain.url("/")) == 200
    finally:
        await plain.stop()
    assert plain.authorizations == [None]
    assert source.get_calls == 0


async def test_allow_http_sends_tokens_to_a_loopback_http_api(
    tls: Tls, source: FakeTokenSource, issuer: LocalIssuer
) -> None:
    plain = ProtectedApi(None, jwks=issuer.jwks, audience="api://todo")
    await plain.start()
    try:
        with pytest.raises(ConfigurationError, match="plain http"):
            authenticated_session(source, {plain.origin: TODO_SCOPE})
        async with authenticated_session(
            source, {plain.origin: TODO_SCOPE}, allow_http=True
        ) as session:
            assert await _get(session, plain.url("/items")) == 200
    finally:
        await plain.stop()


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("POST", 307), ("PUT", 308)])
async def test_redirect_to_another_origin_strips_the_token(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    other: RecordingServer,
    method: str,
    status: int,
) -> None:
    url = api.url(f"/redirect?status={status}&to={other.url('/landing')}")
    async with (
        _session(tls, _bearer(source, api)) as session,
        session.request(method, url, data=b"payload") as response,
    ):
        assert response.status == 200
        assert len(response.history) == 1
    assert api.statuses == [status]  # the first hop was authenticated
    assert other.authorizations == [None]
    assert other.hits[0].method == method
    assert other.hits[0].body_len == len(b"payload")


async def test_control_a_naive_bearer_middleware_leaks_on_redirect(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, other: RecordingServer
) -> None:
    """The harness can see a leak: aiohttp runs middlewares on every hop."""

    async def naive(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        token = await source.get_token(TODO_SCOPE)
        request.headers["Authorization"] = token.authorization
        return await handler(request)

    async with _session(tls, naive) as session:
        assert await _get(session, api.url(f"/redirect?to={other.url('/landing')}")) == 200
    assert other.authorizations[0] is not None
    assert other.authorizations[0].startswith("Bearer ey")


async def test_same_origin_redirect_carries_a_token_on_each_hop(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/redirect?to=/items")) == 200
    assert api.statuses == [302, 200]
    assert api.tokens[0] is not None
    assert api.tokens[0] == api.tokens[1]


async def test_redirect_between_two_mapped_origins_switches_the_audience(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, billing: ProtectedApi
) -> None:
    async with _session(tls, _bearer(source, api, billing)) as session:
        assert await _get(session, api.url(f"/redirect?to={billing.url('/invoices')}")) == 200
    assert api.statuses == [302]
    assert billing.statuses == [200]  # billing validated a token with aud=api://billing
    assert api.tokens[0] != billing.tokens[0]


async def test_aiohttp_strips_a_user_set_authorization_on_cross_origin_redirects(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    other: RecordingServer,
    third: RecordingServer,
) -> None:
    user_header = {"Authorization": "Bearer user-supplied"}
    async with _session(tls, _bearer(source, api)) as session:
        # unmapped origin: the user's header passes untouched, and aiohttp drops it on the hop
        url = other.url(f"/redirect?to={third.url('/landing')}")
        assert await _get(session, url, headers=user_header) == 200
        # mapped origin: the middleware's token replaces the user's header
        url = api.url(f"/redirect?to={third.url('/landing')}")
        assert await _get(session, url, headers=user_header) == 200
    assert other.authorizations == ["Bearer user-supplied"]
    assert api.statuses == [302]  # it was our valid token, not "user-supplied"
    assert third.authorizations == [None, None]


# -- 401 handling ------------------------------------------------------------------------------


async def test_invalid_token_refreshes_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    first = await source.get_token(TODO_SCOPE)
    api.reject(first.token, "invalid_token")
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 200
        assert await _get(session, api.url("/items")) == 200
    assert api.statuses == [401, 200, 200]
    assert source.issued == 2
    assert source.renew_calls == 1
    assert api.tokens[0] == token_id(first.token) != api.tokens[1]


@pytest.mark.parametrize("mode", ["bare", "no_header"])
async def test_401_without_an_error_also_refreshes_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, mode: Any
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, mode)
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 200
    assert api.statuses == [401, 200]
    assert source.issued == 2


async def test_claims_challenge_is_answered_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    first = await source.get_token(TODO_SCOPE)
    api.reject(first.token, "claims")
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 200
        # the claims token superseded the plain one: no second challenge
        assert await _get(session, api.url("/items")) == 200
    assert api.statuses == [401, 200, 200]
    assert source.claims_seen == ['{"access_token":{"nbf":{"essential":true}}}']
    assert source.issued == 2
    assert source.renew_calls == 0
    assert api.hits[1].claims["xms_claims"] == source.claims_seen[0]


@pytest.mark.parametrize("mode", ["invalid_token", "claims"])
async def test_never_loops_when_the_new_token_is_rejected_too(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    mode: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.always_reject = mode
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 401
    assert api.statuses == [401, 401]
    assert source.issued == 2
    assert "the new token was rejected too" in caplog.text


@pytest.mark.parametrize("mode", ["invalid_request", "basic"])
async def test_401s_a_new_token_cannot_fix_are_returned(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    mode: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.always_reject = mode
    async with _session(tls, _bearer(source, api)) as session:
        assert await _get(session, api.url("/items")) == 401
    assert api.statuses == [401]
    assert source.issued == 1
    [record] = [r for r in caplog.records if r.name == "aioentra.aiohttp"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"401 from GET {api.origin} not retried: the challenge is not one a new token answers "
        f"(challenge error={'invalid_request' if mode == 'invalid_request' else 'none'})"
    )


async def test_hundred_concurrent_401s_cause_one_token_request(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    first = await source.get_token(TODO_SCOPE)
    api.reject(first.token, "invalid_token")
    connector = aiohttp.TCPConnector(ssl=tls.client_context(), limit=0)
    async with aiohttp.ClientSession(connector=connector, middlewares=[_bearer(source, api)]) as s:
        statuses = await asyncio.gather(*(_get(s, api.url(f"/items/{i}")) for i in range(100)))
    assert statuses == [200] * 100
    assert source.issued == 2  # the first token and one renewal
    assert api.statuses.count(401) == 100
    assert api.statuses.count(200) == 100


async def _generator() -> AsyncIterator[bytes]:
    for chunk in (b"chunk-1 ", b"chunk-2"):
        yield chunk


async def test_async_generator_body_is_not_retried(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    async with (
        _session(tls, _bearer(source, api)) as session,
        session.post(api.url("/upload"), data=_generator()) as response,
    ):
        assert response.status == 401
        assert await response.text() == "unauthorized"  # the 401 is handed back intact
    assert api.statuses == [401]
    assert api.hits[0].body_len == len(b"chunk-1 chunk-2")
    assert source.renew_calls == 0
    assert "the request body cannot be sent twice (challenge error=invalid_token)" in caplog.text


async def test_pipe_body_is_not_retried(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"streamed through a pipe")
    os.close(write_fd)
    with open(read_fd, "rb") as pipe:  # noqa: ASYNC230 - aiohttp reads it in a thread
        async with (
            _session(tls, _bearer(source, api)) as session,
            session.post(api.url("/upload"), data=pipe) as response,
        ):
            assert response.status == 401
    assert api.statuses == [401]
    assert source.renew_calls == 0


def _bodies(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "upload.bin"
    path.write_bytes(os.urandom(200_000))
    form = aiohttp.FormData()
    form.add_field("file", b"x" * 1000, filename="x.bin")
    return {
        "bytes": {"data": b"some bytes"},
        "str": {"data": "some text"},
        "json": {"json": {"a": [1, 2, 3]}},
        "form": {"data": {"field": "value"}},
        "multipart": {"data": form},
        "BytesIO": {"data": io.BytesIO(b"in memory stream")},
        "file": {"data": path.open("rb")},
    }


@pytest.mark.parametrize("kind", ["bytes", "str", "json", "form", "multipart", "BytesIO", "file"])
async def test_replayable_bodies_are_resent_identically(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, tmp_path: Path, kind: str
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    bodies = _bodies(tmp_path)
    try:
        async with (
            _session(tls, _bearer(source, api)) as session,
            session.post(api.url("/upload"), **bodies[kind]) as response,
        ):
            assert response.status == 200
            echoed = await response.json()
    finally:
        for body in bodies.values():
            if isinstance(body.get("data"), io.IOBase):
                body["data"].close()
    assert api.statuses == [401, 200]
    first, second = api.hits
    assert second.body_len > 0
    assert (first.body_len, first.body_sha) == (second.body_len, second.body_sha)
    assert echoed["body_sha"] == first.body_sha


# -- no lock and no stall across a token rollover --------------------------------------------------


async def test_requests_keep_flowing_while_a_refresh_is_in_flight(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    old = await source.get_token(TODO_SCOPE)
    source.gate.clear()  # the token endpoint "hangs" until the test opens the gate
    source.due(TODO_SCOPE)  # the next get_token starts a refresh-ahead
    async with _session(tls, _bearer(source, api)) as session:
        sequential = [await _get(session, api.url(f"/seq/{i}")) for i in range(20)]
        concurrent = await asyncio.gather(*(_get(session, api.url(f"/c/{i}")) for i in range(30)))
        # Ordering, not timing: every request above completed while the refresh was held.
        assert source.refreshing
        assert source.served_during_refresh == 50
        source.gate.set()
        await source.settled()
        after = [await _get(session, api.url(f"/after/{i}")) for i in range(5)]
    assert sequential + concurrent + after == [200] * 55
    assert 401 not in api.statuses
    assert set(api.tokens[:50]) == {token_id(old.token)}
    assert token_id(old.token) not in api.tokens[50:]
    assert source.issued == 2


async def test_the_middleware_adds_no_lock_around_the_token_source(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    """One request stuck in the token source does not hold up the others."""
    stuck = asyncio.Event()
    release = asyncio.Event()
    await source.get_token(TODO_SCOPE)

    async def hook() -> None:
        if not stuck.is_set():
            stuck.set()
            await release.wait()

    source.hook = hook
    async with _session(tls, _bearer(source, api)) as session:
        blocked = asyncio.ensure_future(_get(session, api.url("/blocked")))
        await stuck.wait()
        others = asyncio.gather(*(_get(session, api.url(f"/o/{i}")) for i in range(10)))
        # A lock around the token source would deadlock here; the bound only guards the suite.
        await asyncio.wait([others], timeout=30)
        assert others.done()
        assert not blocked.done()
        release.set()
        assert await blocked == 200
    assert others.result() == [200] * 10


# -- composition -------------------------------------------------------------------------------


async def retry_429_503(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """The API retry middleware from docs/aiohttp.md (with delays capped for the test)."""
    for _ in range(3):
        response = await handler(request)
        if response.status not in (429, 503):
            return response
        delay = float(response.headers.get("Retry-After", "1"))
        response.release()
        await asyncio.sleep(min(delay, 0.01))
    return await handler(request)


async def test_composes_with_an_outer_retry_middleware(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    seen: list[str | None] = []

    async def log_headers(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        response = await handler(request)
        seen.append(request.headers.get("Authorization"))
        return response

    api.fail_next(503, "0", count=2)
    async with authenticated_session(
        source,
        {api.origin: TODO_SCOPE},
        middlewares=[log_headers, retry_429_503],
        connector=aiohttp.TCPConnector(ssl=tls.client_context()),
    ) as session:
        assert await _get(session, api.url("/items")) == 200
    assert api.statuses == [503, 503, 200]
    assert all(token is not None for token in api.tokens)  # each attempt carried a token
    assert seen == [None]  # outer middlewares never see the Authorization header


async def test_per_request_middlewares_replace_the_sessions(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    bearer = _bearer(source, api)
    async with _session(tls, bearer) as session:
        assert await _get(session, api.url("/a"), middlewares=()) == 401
        assert await _get(session, api.url("/b"), middlewares=(retry_429_503, bearer)) == 200
    async with _session(tls) as plain:
        assert await _get(plain, api.url("/c"), middlewares=[bearer]) == 200
    assert api.statuses == [401, 200, 200]


async def test_no_recursion_when_the_token_source_uses_the_same_session(
    tls: Tls, issuer: LocalIssuer, api: ProtectedApi
) -> None:
    """A token source that fetches through the middleware's own session (a mapped origin)."""

    class SameSessionSource(FakeTokenSource):
        session: aiohttp.ClientSession

        async def get_token(self, scope: str, *, claims: str | None = None) -> Any:
            async with self.session.get(api.url("/token-endpoint")) as response:
                await response.read()
            return await super().get_token(scope, claims=claims)

    source = SameSessionSource(issuer)
    async with _session(tls, _bearer(source, api)) as session:
        source.session = session
        assert await _get(session, api.url("/items")) == 200
    assert [hit.path for hit in api.hits] == ["/token-endpoint", "/items"]
    assert api.hits[0].authorization is None  # the inner request went out without a token
    assert source.get_calls == 1


# -- errors and secrecy ------------------------------------------------------------------------


async def test_token_source_errors_propagate(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    source.failure = IdentityProviderUnavailableError("token endpoint unreachable")
    async with _session(tls, _bearer(source, api)) as session:
        with pytest.raises(IdentityProviderUnavailableError):
            await _get(session, api.url("/items"))
    assert api.hits == []


async def test_renewal_errors_propagate_after_releasing_the_401(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    source.failure = IdentityProviderUnavailableError("token endpoint unreachable")
    async with _session(tls, _bearer(source, api)) as session:
        with pytest.raises(AioEntraError, match="unreachable"):
            await _get(session, api.url("/items"))
    assert api.statuses == [401]


async def test_the_token_appears_in_no_repr_log_or_request_info(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await source.get_token(TODO_SCOPE)
    api.always_reject = "claims"
    bearer = _bearer(source, api)
    async with _session(tls, bearer) as session, session.get(api.url("/items")) as response:
        assert response.status == 401
        assert "Authorization" not in response.request_info.headers
        with pytest.raises(aiohttp.ClientResponseError) as info:
            response.raise_for_status()
    renewed = await source.get_token(TODO_SCOPE)
    text = "\n".join([caplog.text, repr(info.value), str(info.value), repr(bearer), repr(token)])
    for secret in (token.token, renewed.token):
        assert secret not in text
    # the claims are the server's to show (they are in its response headers), not ours to log
    assert json.loads(source.claims_seen[0]) == {"access_token": {"nbf": {"essential": True}}}
    for claims in (api.claims_challenge, source.claims_seen[0]):
        assert claims not in caplog.text


async def test_construction_refuses_plain_http_and_bad_origins(source: FakeTokenSource) -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        BearerTokenMiddleware(source, {"http://todo.contoso.com": TODO_SCOPE}, allow_http=True)
    with pytest.raises(ConfigurationError, match="bare origin"):
        BearerTokenMiddleware(source, {"https://todo.contoso.com/api": TODO_SCOPE})
    bearer = BearerTokenMiddleware(
        source, {"https://todo.contoso.com": TODO_SCOPE, "https://b.example": BILLING_SCOPE}
    )
    assert repr(bearer) == (
        "BearerTokenMiddleware(origins=['https://b.example', 'https://todo.contoso.com'])"
    )


@pytest.mark.parametrize("kind", ["BytesIO", "file"])
async def test_large_body_rejected_before_it_is_read_is_resent_whole(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, tmp_path: Path, kind: str
) -> None:
    """The API answers 401 while the first copy is still being uploaded."""
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    content = os.urandom(8_000_000)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    with path.open("rb") as file:
        body: Any = io.BytesIO(content) if kind == "BytesIO" else file
        async with (
            _session(tls, _bearer(source, api)) as session,
            session.put(api.url("/early/upload"), data=body) as response,
        ):
            assert response.status == 200
    assert api.statuses == [401, 200]
    assert api.hits[1].body_len == len(content)
    assert api.hits[1].body_sha == hashlib.sha256(content).hexdigest()


async def test_authenticated_session_accepts_middlewares_none(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with authenticated_session(
        source,
        {api.origin: TODO_SCOPE},
        middlewares=None,
        connector=aiohttp.TCPConnector(ssl=tls.client_context()),
    ) as session:
        assert await _get(session, api.url("/items")) == 200
