"""BearerTokenAuth against real HTTPS servers, with a counting token source (no emulator).

The middleware suite's cases, through a real ``httpx.AsyncClient``. The servers validate
RS256 JWTs (signature, audience, issuer, expiry), so "the API got a token" below always
means "the API got a valid token for its own audience".
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aioentra import AioEntraError, ConfigurationError, IdentityProviderUnavailableError
from aioentra.httpx import BearerTokenAuth, authenticated_client
from middleware.support import (
    FakeTokenSource,
    LocalIssuer,
    ProtectedApi,
    RecordingServer,
    Tls,
    token_id,
)

from .conftest import BILLING_SCOPE, TODO_SCOPE

pytestmark = pytest.mark.anyio


def _client(tls: Tls, auth: httpx.Auth | None = None, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(auth=auth, verify=tls.client_context(), **kwargs)


def _auth(source: FakeTokenSource, *apis: ProtectedApi, **kwargs: Any) -> BearerTokenAuth:
    scopes = {api.origin: f"{api.audience}/.default" for api in apis}
    return BearerTokenAuth(source, scopes, **kwargs)


async def _get(client: httpx.AsyncClient, url: str, **kwargs: Any) -> int:
    return (await client.get(url, **kwargs)).status_code


# -- which origins get a token -------------------------------------------------------------------


async def test_token_goes_to_the_mapped_origin_only(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, other: RecordingServer
) -> None:
    async with _client(tls, _auth(source, api)) as client:
        assert await _get(client, api.url("/items")) == 200
        assert await _get(client, other.url("/items")) == 200
        # localhost and 127.0.0.1 are different origins, even on the same port
        assert await _get(client, f"https://localhost:{api.port}/items") == 401
    assert api.statuses == [200, 401]
    assert api.hits[1].authorization is None
    assert other.authorizations == [None]
    assert source.get_calls == 1


async def test_origins_compare_after_normalisation(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    auth = BearerTokenAuth(source, {f"HTTPS://LocalHost:{api.port}/": TODO_SCOPE})
    async with _client(tls, auth) as client:
        assert await _get(client, f"https://localhost:{api.port}/a") == 200
        assert await _get(client, f"https://LOCALHOST:{api.port}/b?x=1") == 200
        assert await _get(client, api.url("/c")) == 401  # 127.0.0.1 is another origin
    assert api.statuses == [200, 200, 401]


async def test_plain_http_to_a_mapped_https_origin_gets_no_token(
    tls: Tls, source: FakeTokenSource
) -> None:
    plain = RecordingServer(None)
    await plain.start()
    try:
        auth = BearerTokenAuth(source, {f"https://127.0.0.1:{plain.port}": TODO_SCOPE})
        async with _client(tls, auth) as client:
            assert await _get(client, plain.url("/")) == 200
    finally:
        await plain.stop()
    assert plain.authorizations == [None]
    assert source.get_calls == 0


async def test_allow_http_sends_tokens_to_a_loopback_http_api(
    source: FakeTokenSource, issuer: LocalIssuer
) -> None:
    plain = ProtectedApi(None, jwks=issuer.jwks, audience="api://todo")
    await plain.start()
    try:
        with pytest.raises(ConfigurationError, match="plain http"):
            authenticated_client(source, {plain.origin: TODO_SCOPE})
        async with authenticated_client(
            source, {plain.origin: TODO_SCOPE}, allow_http=True
        ) as client:
            assert await _get(client, plain.url("/items")) == 200
    finally:
        await plain.stop()
    assert plain.statuses == [200]


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("POST", 307), ("PUT", 308)])
async def test_redirect_to_another_origin_carries_no_token(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    other: RecordingServer,
    method: str,
    status: int,
) -> None:
    url = api.url(f"/redirect?status={status}&to={other.url('/landing')}")
    async with _client(tls, _auth(source, api), follow_redirects=True) as client:
        response = await client.request(method, url, content=b"payload")
    assert response.status_code == 200
    assert len(response.history) == 1
    assert api.statuses == [status]  # the first hop was authenticated
    assert other.authorizations == [None]
    assert other.hits[0].method == method
    assert other.hits[0].body_len == len(b"payload")


async def test_control_httpx_runs_an_auth_once_per_send_and_copies_its_header_per_hop(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, other: RecordingServer
) -> None:
    """What the auth is built on: httpx follows redirects inside one auth step, keeping the
    header on a same-origin hop, dropping it on a cross-origin one, and leaving it behind on
    the request objects. A naive auth therefore leaks nothing cross-origin but leaves the
    token on ``response.request``; the mapped-to-mapped hop gets no token (see below)."""
    entered = 0

    class Naive(httpx.Auth):
        async def async_auth_flow(
            self, request: httpx.Request
        ) -> AsyncGenerator[httpx.Request, httpx.Response]:
            nonlocal entered
            entered += 1
            request.headers["Authorization"] = (await source.get_token(TODO_SCOPE)).authorization
            yield request

    async with _client(tls, Naive(), follow_redirects=True) as client:
        response = await client.get(api.url("/redirect?to=/items"))
        assert response.status_code == 200
        assert response.request.headers["Authorization"].startswith("Bearer ey")  # left behind
        assert await _get(client, api.url(f"/redirect?to={other.url('/landing')}")) == 200
    assert entered == 2  # two sends, four hops
    assert api.statuses == [302, 200, 302]
    assert api.tokens[0] == api.tokens[1]
    assert other.authorizations == [None]


async def test_same_origin_redirect_carries_a_token_on_each_hop(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with _client(tls, _auth(source, api), follow_redirects=True) as client:
        assert await _get(client, api.url("/redirect?to=/items")) == 200
    assert api.statuses == [302, 200]
    assert api.tokens[0] is not None
    assert api.tokens[0] == api.tokens[1]
    assert source.get_calls == 1


async def test_redirect_between_two_mapped_origins_switches_the_audience(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, billing: ProtectedApi
) -> None:
    async with _client(tls, _auth(source, api, billing), follow_redirects=True) as client:
        response = await client.get(api.url(f"/redirect?to={billing.url('/invoices')}"))
    assert response.status_code == 200
    assert api.statuses == [302]
    # httpx dropped api's token on the cross-origin hop; billing asked, and got its own
    assert billing.statuses == [401, 200]  # the 200 validated a token with aud=api://billing
    assert billing.hits[0].authorization is None
    assert api.tokens[0] != billing.tokens[1]
    # httpx keeps the auth's steps in the history, not the redirect before them
    assert [r.status_code for r in response.history] == [401]
    assert source.renew_calls == 0
    assert source.issued == 2  # one token per audience


async def test_redirect_target_token_is_renewed_once_too(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, billing: ProtectedApi
) -> None:
    stale = await source.get_token(BILLING_SCOPE)
    billing.reject(stale.token, "invalid_token")
    async with _client(tls, _auth(source, api, billing), follow_redirects=True) as client:
        assert await _get(client, api.url(f"/redirect?to={billing.url('/invoices')}")) == 200
    assert api.statuses == [302]  # the hop is sent again, not the chain
    assert billing.statuses == [401, 401, 200]  # no token, the stale one, the renewed one
    assert billing.tokens[1] == token_id(stale.token) != billing.tokens[2]
    assert source.renew_calls == 1


async def test_a_redirect_not_followed_leaves_no_token_on_next_request(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with _client(tls, _auth(source, api)) as client:
        response = await client.get(api.url("/redirect?to=/items"))
        assert response.status_code == 302
        assert response.next_request is not None
        assert "Authorization" not in response.next_request.headers
        followed = await client.send(response.next_request)  # the auth runs again
    assert followed.status_code == 200
    assert api.statuses == [302, 200]


async def test_a_user_set_authorization_is_dropped_by_httpx_on_cross_origin_redirects(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    other: RecordingServer,
    third: RecordingServer,
) -> None:
    user_header = {"Authorization": "Bearer user-supplied"}
    async with _client(tls, _auth(source, api), follow_redirects=True) as client:
        # unmapped origin: the user's header passes untouched, and httpx drops it on the hop
        url = other.url(f"/redirect?to={third.url('/landing')}")
        response = await client.get(url, headers=user_header)
        assert response.status_code == 200
        assert response.history[0].request.headers["Authorization"] == "Bearer user-supplied"
        # mapped origin: the auth's token replaces the user's header
        url = api.url(f"/redirect?to={third.url('/landing')}")
        assert await _get(client, url, headers=user_header) == 200
    assert other.authorizations == ["Bearer user-supplied"]
    assert api.statuses == [302]  # it was our valid token, not "user-supplied"
    assert third.authorizations == [None, None]


# -- 401 handling ------------------------------------------------------------------------------


async def test_invalid_token_refreshes_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    first = await source.get_token(TODO_SCOPE)
    api.reject(first.token, "invalid_token")
    async with _client(tls, _auth(source, api)) as client:
        response = await client.get(api.url("/items"))
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [401]
        assert await _get(client, api.url("/items")) == 200
    assert api.statuses == [401, 200, 200]
    assert source.issued == 2
    assert source.renew_calls == 1
    assert api.tokens[0] == token_id(first.token) != api.tokens[1]


@pytest.mark.parametrize("mode", ["bare", "no_header"])
async def test_401_without_an_error_also_refreshes_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, mode: Any
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, mode)
    async with _client(tls, _auth(source, api)) as client:
        assert await _get(client, api.url("/items")) == 200
    assert api.statuses == [401, 200]
    assert source.issued == 2


async def test_claims_challenge_is_answered_once(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    first = await source.get_token(TODO_SCOPE)
    api.reject(first.token, "claims")
    async with _client(tls, _auth(source, api)) as client:
        assert await _get(client, api.url("/items")) == 200
        # the claims token superseded the plain one: no second challenge
        assert await _get(client, api.url("/items")) == 200
    assert api.statuses == [401, 200, 200]
    assert source.claims_seen == ['{"access_token":{"nbf":{"essential":true}}}']
    assert source.issued == 2
    assert source.renew_calls == 0
    assert api.hits[1].claims["xms_claims"] == source.claims_seen[0]


async def test_a_rejected_token_on_a_redirect_is_renewed_and_the_chain_goes_on(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    async with _client(tls, _auth(source, api), follow_redirects=True) as client:
        response = await client.get(api.url("/redirect?to=/items"))
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401, 302]
    assert api.statuses == [401, 302, 200]
    assert api.tokens[1] == api.tokens[2] != api.tokens[0]
    assert source.renew_calls == 1


@pytest.mark.parametrize("mode", ["invalid_token", "claims", "fresh_claims"])
async def test_never_loops_when_the_new_token_is_rejected_too(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    mode: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.always_reject = mode
    async with _client(tls, _auth(source, api)) as client:
        assert await _get(client, api.url("/items")) == 401
    assert api.statuses == [401, 401]
    assert source.issued == 2
    error = "invalid_token" if mode == "invalid_token" else "insufficient_claims"
    assert f"the new token was rejected too (challenge error={error})" in caplog.text


@pytest.mark.parametrize("mode", ["invalid_request", "basic"])
async def test_401s_a_new_token_cannot_fix_are_returned(
    tls: Tls,
    source: FakeTokenSource,
    api: ProtectedApi,
    mode: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.always_reject = mode
    async with _client(tls, _auth(source, api)) as client:
        response = await client.get(api.url("/items?secret=query"))
    assert response.status_code == 401
    assert response.text == "unauthorized"
    assert api.statuses == [401]
    assert source.issued == 1
    [record] = [r for r in caplog.records if r.name == "aioentra.httpx"]
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
    async with _client(tls, _auth(source, api)) as client:
        statuses = await asyncio.gather(*(_get(client, api.url(f"/items/{i}")) for i in range(100)))
    assert statuses == [200] * 100
    assert source.issued == 2  # the first token and one renewal
    assert source.renew_calls == 100
    assert api.statuses.count(401) == 100
    assert api.statuses.count(200) == 100


class _CountingSource(FakeTokenSource):
    """Sets :attr:`waiting` once ``expected`` callers have asked for a renewal."""

    expected = 0

    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__(issuer)
        self.waiting = asyncio.Event()

    async def renew_token(self, scope: str, *, rejected: Any) -> Any:
        if self.renew_calls + 1 == self.expected:
            self.waiting.set()
        return await super().renew_token(scope, rejected=rejected)


async def test_cancelling_one_caller_does_not_break_the_others(
    tls: Tls, issuer: LocalIssuer, api: ProtectedApi
) -> None:
    source = _CountingSource(issuer)
    source.expected = 10
    try:
        api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
        source.gate.clear()  # the renewal is held until the test opens the gate
        async with _client(tls, _auth(source, api)) as client:
            calls = [asyncio.ensure_future(_get(client, api.url(f"/c/{i}"))) for i in range(10)]
            # all ten got a 401 and wait for the one renewal (the bound only guards the suite)
            await asyncio.wait_for(source.waiting.wait(), 30)
            calls[0].cancel()
            with pytest.raises(asyncio.CancelledError):
                await calls[0]
            source.gate.set()
            assert await asyncio.gather(*calls[1:]) == [200] * 9
            assert await _get(client, api.url("/after")) == 200
    finally:
        await source.close()
    assert source.issued == 2
    assert api.statuses.count(401) == 10
    assert api.statuses.count(200) == 10


# -- bodies ------------------------------------------------------------------------------------


async def _generator() -> AsyncIterator[bytes]:
    for chunk in (b"chunk-1 ", b"chunk-2"):
        yield chunk


async def test_async_generator_body_is_not_resent(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    async with _client(tls, _auth(source, api)) as client:
        response = await client.post(api.url("/upload"), content=_generator())
    assert response.status_code == 401
    assert response.text == "unauthorized"  # the 401 is handed back intact
    assert api.statuses == [401]
    assert api.hits[0].body_len == len(b"chunk-1 chunk-2")
    assert source.renew_calls == 0
    assert (
        f"401 from POST {api.origin} not retried: the request body cannot be sent twice "
        "(challenge error=invalid_token)"
    ) in caplog.text


class _OneShot(io.RawIOBase):
    """A stream that cannot seek, as a socket or a pipe (httpx sends it chunked)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


async def test_multipart_with_an_unseekable_file_is_not_resent(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    upload: Any = _OneShot(b"streamed, read once")
    async with _client(tls, _auth(source, api)) as client:
        response = await client.post(api.url("/upload"), files={"f": ("s.bin", upload)})
    assert response.status_code == 401
    assert api.statuses == [401]
    assert api.hits[0].body_len > len(b"streamed, read once")
    assert source.renew_calls == 0
    assert "the request body cannot be sent twice" in caplog.text


def _bodies(tmp_path: Path) -> dict[str, dict[str, Any]]:
    path = tmp_path / "upload.bin"
    path.write_bytes(os.urandom(200_000))
    return {
        "bytes": {"content": b"some bytes"},
        "str": {"content": "some text"},
        "json": {"json": {"a": [1, 2, 3]}},
        "form": {"data": {"field": "value"}},
        "multipart": {"data": {"a": "1"}, "files": {"f": ("x.bin", b"x" * 1000)}},
        "multipart-BytesIO": {"files": {"f": ("m.bin", io.BytesIO(b"in memory stream"))}},
        "multipart-file": {"files": {"f": path.open("rb")}},
    }


@pytest.mark.parametrize(
    "kind",
    ["bytes", "str", "json", "form", "multipart", "multipart-BytesIO", "multipart-file"],
)
async def test_replayable_bodies_are_resent_identically(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, tmp_path: Path, kind: str
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    bodies = _bodies(tmp_path)
    try:
        async with _client(tls, _auth(source, api)) as client:
            response = await client.post(api.url("/upload"), **bodies[kind])
    finally:
        for body in bodies.values():
            for value in body.get("files", {}).values():
                if isinstance(value, io.IOBase):
                    value.close()
    assert response.status_code == 200
    assert api.statuses == [401, 200]
    first, second = api.hits
    assert second.body_len > 0
    assert (first.body_len, first.body_sha) == (second.body_len, second.body_sha)
    assert response.json()["body_sha"] == first.body_sha


async def test_large_body_rejected_before_it_is_read_is_resent_whole(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    """The API answers 401 while the first copy is still being uploaded."""
    import hashlib

    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    content = os.urandom(8_000_000)
    async with _client(tls, _auth(source, api)) as client:
        response = await client.put(api.url("/early/upload"), content=content)
    assert response.status_code == 200
    assert api.statuses == [401, 200]
    assert api.hits[1].body_len == len(content)
    assert api.hits[1].body_sha == hashlib.sha256(content).hexdigest()


# -- no lock -----------------------------------------------------------------------------------


async def test_requests_keep_flowing_while_a_refresh_is_in_flight(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    old = await source.get_token(TODO_SCOPE)
    source.gate.clear()  # the token endpoint "hangs" until the test opens the gate
    source.due(TODO_SCOPE)  # the next get_token starts a refresh-ahead
    async with _client(tls, _auth(source, api)) as client:
        sequential = [await _get(client, api.url(f"/seq/{i}")) for i in range(20)]
        concurrent = await asyncio.gather(*(_get(client, api.url(f"/c/{i}")) for i in range(30)))
        # Ordering, not timing: every request above completed while the refresh was held.
        assert source.refreshing
        assert source.served_during_refresh == 50
        source.gate.set()
        await source.settled()
        after = [await _get(client, api.url(f"/after/{i}")) for i in range(5)]
    assert sequential + concurrent + after == [200] * 55
    assert 401 not in api.statuses
    assert set(api.tokens[:50]) == {token_id(old.token)}
    assert token_id(old.token) not in api.tokens[50:]
    assert source.issued == 2


async def test_the_auth_adds_no_lock_around_the_token_source(
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
    async with _client(tls, _auth(source, api)) as client:
        blocked = asyncio.ensure_future(_get(client, api.url("/blocked")))
        await stuck.wait()
        others = asyncio.gather(*(_get(client, api.url(f"/o/{i}")) for i in range(10)))
        # A lock around the token source would deadlock here; the bound only guards the suite.
        await asyncio.wait([others], timeout=30)
        assert others.done()
        assert not blocked.done()
        release.set()
        assert await blocked == 200
    assert others.result() == [200] * 10


# -- composition -------------------------------------------------------------------------------


async def test_per_request_auth_overrides_the_clients(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    auth = _auth(source, api)
    async with _client(tls, auth) as client:
        assert await _get(client, api.url("/a"), auth=None) == 401  # no auth: no token
    async with _client(tls) as plain:
        assert await _get(plain, api.url("/b"), auth=auth) == 200
    assert api.statuses == [401, 200]


async def test_each_send_of_a_retry_loop_carries_the_current_token(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    """A retry loop around ``send`` (httpx has no middleware chain) re-runs the auth."""
    old = await source.get_token(TODO_SCOPE)
    api.fail_next(503, "0", count=1)
    async with _client(tls, _auth(source, api)) as client:
        request = client.build_request("POST", api.url("/items"), content=b"x")
        statuses = []
        for _ in range(3):
            response = await client.send(request)
            statuses.append(response.status_code)
            if response.status_code != 503:
                break
            api.reject(old.token, "invalid_token")  # the token is revoked meanwhile
    assert statuses == [503, 200]
    assert api.statuses == [503, 401, 200]
    assert api.tokens[0] == token_id(old.token) != api.tokens[2]


async def test_no_recursion_when_the_token_source_uses_the_same_client(
    tls: Tls, issuer: LocalIssuer, api: ProtectedApi
) -> None:
    """A token source that fetches through the auth's own client (a mapped origin)."""

    class SameClientSource(FakeTokenSource):
        client: httpx.AsyncClient

        async def get_token(self, scope: str, *, claims: str | None = None) -> Any:
            await self.client.get(api.url("/token-endpoint"))
            return await super().get_token(scope, claims=claims)

    source = SameClientSource(issuer)
    try:
        async with _client(tls, _auth(source, api)) as client:
            source.client = client
            assert await _get(client, api.url("/items")) == 200
    finally:
        await source.close()
    assert [hit.path for hit in api.hits] == ["/token-endpoint", "/items"]
    assert api.hits[0].authorization is None  # the inner request went out without a token
    assert source.get_calls == 1


# -- errors and secrecy ------------------------------------------------------------------------


async def test_token_source_errors_propagate(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    source.failure = IdentityProviderUnavailableError("token endpoint unreachable")
    async with _client(tls, _auth(source, api)) as client:
        with pytest.raises(IdentityProviderUnavailableError):
            await _get(client, api.url("/items"))
    assert api.hits == []


async def test_renewal_errors_propagate_after_closing_the_401(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    api.reject((await source.get_token(TODO_SCOPE)).token, "invalid_token")
    source.failure = IdentityProviderUnavailableError("token endpoint unreachable")
    async with _client(tls, _auth(source, api)) as client:
        with pytest.raises(AioEntraError, match="unreachable"):
            await _get(client, api.url("/items"))
    assert api.statuses == [401]


async def test_the_token_is_left_on_no_request_object_log_or_repr(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await source.get_token(TODO_SCOPE)
    auth = _auth(source, api)
    async with _client(tls, auth, follow_redirects=True) as client:
        response = await client.get(api.url("/redirect?to=/items"))
        assert response.status_code == 200
        hops = [response.request, *(r.request for r in response.history)]
        assert [h.headers.get("Authorization") for h in hops] == [None, None]
        api.always_reject = "claims"
        response = await client.get(api.url("/items"))
        assert response.status_code == 401
        with pytest.raises(httpx.HTTPStatusError) as info:
            response.raise_for_status()
        hops = [response.request, *(r.request for r in response.history)]
        assert [h.headers.get("Authorization") for h in hops] == [None, None]
    renewed = await source.get_token(TODO_SCOPE)
    text = "\n".join(
        [caplog.text, repr(info.value), str(info.value), repr(auth), repr(token), repr(hops)]
    )
    for secret in (token.token, renewed.token):
        assert secret not in text
    # the claims are the server's to show (they are in its response headers), not ours to log
    assert json.loads(source.claims_seen[0]) == {"access_token": {"nbf": {"essential": True}}}
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("aioentra"))
    assert "not retried" in ours
    for claims in (api.claims_challenge, source.claims_seen[0]):
        assert claims not in ours  # (httpcore's DEBUG log shows the response headers)


async def test_while_sending_hooks_see_the_header_and_httpx_masks_it_in_reprs(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    """The one window: httpx event hooks run while the request is on its way."""
    seen: list[str] = []

    async def log_request(request: httpx.Request) -> None:
        seen.append(repr(request.headers))

    async with _client(tls, _auth(source, api), event_hooks={"request": [log_request]}) as c:
        assert await _get(c, api.url("/items")) == 200
    token = await source.get_token(TODO_SCOPE)
    [shown] = seen
    assert "'authorization': '[secure]'" in shown
    assert token.token not in shown


async def test_a_sync_client_is_refused_with_a_clear_error(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    auth = _auth(source, api)
    with (
        httpx.Client(auth=auth, verify=tls.client_context()) as client,
        pytest.raises(ConfigurationError, match=r"httpx\.AsyncClient only") as info,
    ):
        client.get(api.url("/items"))  # noqa: ASYNC212 - refused before any I/O
    assert info.value.hint is not None
    assert "a token provider is async" in info.value.hint
    assert api.hits == []


async def test_construction_refuses_plain_http_and_bad_origins(source: FakeTokenSource) -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        BearerTokenAuth(source, {"http://todo.contoso.com": TODO_SCOPE}, allow_http=True)
    with pytest.raises(ConfigurationError, match="bare origin"):
        BearerTokenAuth(source, {"https://todo.contoso.com/api": TODO_SCOPE})
    auth = BearerTokenAuth(
        source, {"https://todo.contoso.com": TODO_SCOPE, "https://b.example": BILLING_SCOPE}
    )
    assert repr(auth) == (
        "BearerTokenAuth(origins=['https://b.example', 'https://todo.contoso.com'])"
    )
    assert dict(auth.scopes) == {
        "https://todo.contoso.com": TODO_SCOPE,
        "https://b.example": BILLING_SCOPE,
    }


async def test_authenticated_client_passes_its_keywords_and_refuses_auth(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    async with authenticated_client(
        source,
        {api.origin: TODO_SCOPE},
        verify=tls.client_context(),
        base_url=api.origin,
        headers={"X-Test": "1"},
    ) as client:
        assert isinstance(client.auth, BearerTokenAuth)
        assert await _get(client, "/items") == 200
    with pytest.raises(ConfigurationError, match="sets auth= itself"):
        authenticated_client(source, {api.origin: TODO_SCOPE}, auth=("user", "pw"))
