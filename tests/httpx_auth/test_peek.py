"""BearerTokenAuth's warm path: a source's ``peek_token``, and the recursion guard with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from aioentra._recursion import acquire
from aioentra.httpx import BearerTokenAuth
from middleware.support import (
    FakeTokenSource,
    LocalIssuer,
    PeekingSource,
    ProtectedApi,
    Tls,
    token_id,
)

from .conftest import TODO_SCOPE

pytestmark = pytest.mark.anyio


@pytest.fixture
async def peeking(issuer: LocalIssuer) -> AsyncIterator[PeekingSource]:
    source = PeekingSource(issuer)
    yield source
    await source.close()


def _client(tls: Tls, source: FakeTokenSource, *apis: ProtectedApi) -> httpx.AsyncClient:
    auth = BearerTokenAuth(source, {api.origin: f"{api.audience}/.default" for api in apis})
    return httpx.AsyncClient(auth=auth, verify=tls.client_context())


async def test_a_warm_token_is_peeked_and_get_token_is_awaited_only_when_cold(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi
) -> None:
    async with _client(tls, peeking, api) as client:
        statuses = [(await client.get(api.url(f"/items/{i}"))).status_code for i in range(5)]
    assert statuses == [200] * 5
    assert peeking.peeks == 5 and peeking.get_calls == 1
    assert peeking.issued == 1 and len(set(api.tokens)) == 1


async def test_peeks_in_the_refresh_window_refresh_once_in_the_background(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi
) -> None:
    old = await peeking.get_token(TODO_SCOPE)
    peeking.gate.clear()
    peeking.due(TODO_SCOPE)
    async with _client(tls, peeking, api) as client:
        during = await asyncio.gather(*(client.get(api.url(f"/c/{i}")) for i in range(10)))
        assert peeking.refreshing
        peeking.gate.set()
        await peeking.settled()
        after = await client.get(api.url("/after"))
    assert [r.status_code for r in during] == [200] * 10 and after.status_code == 200
    assert set(api.tokens[:10]) == {token_id(old.token)} != {api.tokens[10]}
    assert peeking.issued == 2 and peeking.get_calls == 1


async def test_inside_the_source_s_own_fetch_a_peeked_token_goes_out_and_its_401_is_returned(
    tls: Tls, peeking: PeekingSource, api: ProtectedApi, billing: ProtectedApi
) -> None:
    token = await peeking.get_token(TODO_SCOPE)
    api.reject(token.token, "invalid_token")
    async with _client(tls, peeking, api, billing) as client:

        async def the_credential_s_requests() -> tuple[int, int]:
            warm = await client.get(api.url("/warm"))
            cold = await client.get(billing.url("/cold"))
            return warm.status_code, cold.status_code

        statuses = await asyncio.wait_for(acquire(peeking, the_credential_s_requests()), 30)
    assert statuses == (401, 401)
    assert api.hits[0].token == token_id(token.token) and len(api.hits) == 1
    assert billing.hits[0].authorization is None and len(billing.hits) == 1
    assert (peeking.get_calls, peeking.renew_calls, peeking.issued) == (1, 0, 1)
