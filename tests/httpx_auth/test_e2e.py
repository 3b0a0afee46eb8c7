"""End to end: TokenProvider + the Entra emulator + a JWT-validating HTTPS API + httpx.

Token counts come from the emulator's request log (``endpoint="token"``), which records a
request when its response is sent: a count is therefore also an ordering fact.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from aioentra import AccessToken, RefreshPolicy, TokenProvider
from aioentra.aiohttp import TokenSource
from aioentra.emulator import App, Emulator, Fault
from aioentra.httpx import authenticated_client
from aioentra.testing import ManualClock
from middleware.support import ProtectedApi, RecordingServer, RejectMode, token_id

from .conftest import E2E_SCOPE

pytestmark = pytest.mark.anyio


def _token_requests(emu: Emulator, app: App) -> int:
    return emu.requests.count("token", client_id=app.client_id)


def _client(provider: TokenSource, todo: ProtectedApi, verify: ssl.SSLContext) -> httpx.AsyncClient:
    return authenticated_client(
        provider,
        {todo.origin: E2E_SCOPE},
        verify=verify,
        follow_redirects=True,
        limits=httpx.Limits(max_connections=None),
    )


async def _get(client: httpx.AsyncClient, url: str) -> int:
    return (await client.get(url)).status_code


async def test_token_goes_only_to_the_mapped_origin_and_never_across_a_redirect(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    other: RecordingServer,
    e2e_verify: ssl.SSLContext,
) -> None:
    async with _client(provider, todo, e2e_verify) as client:
        response = await client.get(todo.url("/items"))
        assert response.status_code == 200
        assert response.json()["roles"] == ["Todo.Read"]
        assert await _get(client, other.url("/direct")) == 200
        assert await _get(client, todo.url(f"/redirect?to={other.url('/hop')}")) == 200
        assert await _get(client, todo.url("/redirect?to=/items")) == 200
    assert todo.statuses == [200, 302, 302, 200]
    assert other.authorizations == [None, None]
    assert _token_requests(emu, emu_app) == 1


async def test_claims_challenge_is_answered_once(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "claims")
    async with _client(provider, todo, e2e_verify) as client:
        assert await _get(client, todo.url("/items")) == 200
        assert await _get(client, todo.url("/items")) == 200  # the claims token is kept
    assert todo.statuses == [401, 200, 200]
    assert _token_requests(emu, emu_app) == 2
    [claims_request] = [
        r for r in emu.requests.filter("token", client_id=emu_app.client_id) if r.claims
    ]
    assert json.loads(claims_request.claims or "") == {"access_token": {"nbf": {"essential": True}}}


async def test_invalid_token_refreshes_once_and_a_second_401_is_not_retried(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "invalid_token")
    async with _client(provider, todo, e2e_verify) as client:
        assert await _get(client, todo.url("/items")) == 200
        assert await _get(client, todo.url("/items")) == 200
        todo.always_reject = "invalid_token"
        assert await _get(client, todo.url("/items")) == 401
    assert todo.statuses == [401, 200, 200, 401, 401]
    assert todo.tokens[0] == token_id(first.token) != todo.tokens[1] == todo.tokens[2]
    # the second renewal fell within the provider's renewal limit: no token request for it
    assert _token_requests(emu, emu_app) == 2
    assert f"401 from GET {todo.origin} not retried: the new token was rejected too" in (
        caplog.text
    )


async def test_hundred_concurrent_401s_make_one_token_request(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "invalid_token")
    async with _client(provider, todo, e2e_verify) as client:
        statuses = await asyncio.gather(*(_get(client, todo.url(f"/i/{n}")) for n in range(100)))
    assert statuses == [200] * 100
    assert todo.statuses.count(401) == 100
    assert _token_requests(emu, emu_app) == 2  # the first token and one renewal


async def _body() -> AsyncIterator[bytes]:
    yield b'{"title": "streamed"}'


async def test_non_replayable_body_is_not_resent(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    todo.reject((await provider.get_token(E2E_SCOPE)).token, "invalid_token")
    async with _client(provider, todo, e2e_verify) as client:
        response = await client.post(todo.url("/items"), content=_body())
    assert response.status_code == 401
    assert todo.statuses == [401]
    assert _token_requests(emu, emu_app) == 1
    assert f"401 from POST {todo.origin} not retried" in caplog.text


class _Watched:
    """The provider, and an event once ``expected`` callers wait for a renewal."""

    def __init__(self, provider: TokenProvider, expected: int) -> None:
        self._provider = provider
        self._expected = expected
        self.renewals = 0
        self.waiting = asyncio.Event()

    async def get_token(self, scope: str, *, claims: str | None = None) -> AccessToken:
        return await self._provider.get_token(scope, claims=claims)

    async def renew_token(self, scope: str, *, rejected: AccessToken) -> AccessToken:
        self.renewals += 1
        if self.renewals == self._expected:
            self.waiting.set()
        return await self._provider.renew_token(scope, rejected=rejected)


async def test_cancelling_one_caller_does_not_break_the_others(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
) -> None:
    todo.reject((await provider.get_token(E2E_SCOPE)).token, "invalid_token")
    emu.faults.add(Fault("token", "latency", delay=1.0, client_id=emu_app.client_id))
    source = _Watched(provider, expected=10)
    async with _client(source, todo, e2e_verify) as client:
        calls = [asyncio.ensure_future(_get(client, todo.url(f"/c/{n}"))) for n in range(10)]
        await asyncio.wait_for(source.waiting.wait(), 30)  # the bound only guards the suite
        await asyncio.sleep(0)  # let the tenth caller join the renewal
        # Ordering, not timing: the renewal is not answered yet when one caller gives up.
        assert _token_requests(emu, emu_app) == 1
        calls[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await calls[0]
        assert await asyncio.gather(*calls[1:]) == [200] * 9
        assert await _get(client, todo.url("/after")) == 200
    assert todo.statuses.count(401) == 10
    assert todo.statuses.count(200) == 10
    assert _token_requests(emu, emu_app) == 2


@pytest.mark.parametrize("mode", ["invalid_token", "fresh_claims"])
async def test_an_api_that_rejects_everything_cannot_spend_the_token_budget(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    clock: ManualClock,
    todo: ProtectedApi,
    e2e_verify: ssl.SSLContext,
    mode: RejectMode,
) -> None:
    """The middleware's renewal-limit case: 50 calls, a quarter renewal interval apart."""
    interval = RefreshPolicy().renewal_interval
    await provider.get_token(E2E_SCOPE)
    before = _token_requests(emu, emu_app)
    todo.always_reject = mode
    statuses = []
    async with _client(provider, todo, e2e_verify) as client:
        for _ in range(50):
            statuses.append(await _get(client, todo.url("/items")))
            clock.advance(interval / 4)
    assert statuses == [401] * 50
    assert todo.statuses == [401] * 100  # each call: the token, then one answer to the 401
    spent = _token_requests(emu, emu_app) - before
    assert 1 <= spent <= 1 + math.floor(50 * (interval / 4) / interval)
