"""End to end: TokenProvider + the Entra emulator + a JWT-validating HTTPS API.

Token counts come from the emulator's request log (``endpoint="token"``), which records a
request when its response is sent: a count is therefore also an ordering fact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aioentra import TokenProvider
from aioentra.aiohttp import authenticated_session
from aioentra.emulator import App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import E2E_SCOPE
from .support import ProtectedApi, RecordingServer, token_id

pytestmark = pytest.mark.anyio


def _token_requests(emu: Emulator, app: App) -> int:
    return emu.requests.count("token", client_id=app.client_id)


def _session(
    provider: TokenProvider, todo: ProtectedApi, connector: aiohttp.TCPConnector
) -> aiohttp.ClientSession:
    return authenticated_session(provider, {todo.origin: E2E_SCOPE}, connector=connector)


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


async def test_token_goes_only_to_the_mapped_origin_and_never_across_a_redirect(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    other: RecordingServer,
    client_connector: aiohttp.TCPConnector,
) -> None:
    async with _session(provider, todo, client_connector) as session:
        async with session.get(todo.url("/items")) as response:
            assert response.status == 200
            assert (await response.json())["roles"] == ["Todo.Read"]
        assert await _get(session, other.url("/direct")) == 200
        assert await _get(session, todo.url(f"/redirect?to={other.url('/hop')}")) == 200
        assert await _get(session, todo.url("/redirect?to=/items")) == 200
    assert todo.statuses == [200, 302, 302, 200]
    assert other.authorizations == [None, None]
    assert _token_requests(emu, emu_app) == 1


async def test_claims_challenge_is_answered_once(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "claims")
    async with _session(provider, todo, client_connector) as session:
        assert await _get(session, todo.url("/items")) == 200
        assert await _get(session, todo.url("/items")) == 200  # the claims token is kept
    assert todo.statuses == [401, 200, 200]
    assert _token_requests(emu, emu_app) == 2
    [claims_request] = [
        r for r in emu.requests.filter("token", client_id=emu_app.client_id) if r.claims
    ]
    assert claims_request.client_id == emu_app.client_id
    assert json.loads(claims_request.claims or "") == {"access_token": {"nbf": {"essential": True}}}


async def test_invalid_token_refreshes_once(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "invalid_token")
    async with _session(provider, todo, client_connector) as session:
        assert await _get(session, todo.url("/items")) == 200
        assert await _get(session, todo.url("/items")) == 200
    assert todo.statuses == [401, 200, 200]
    assert todo.tokens[0] == token_id(first.token) != todo.tokens[1] == todo.tokens[2]
    assert _token_requests(emu, emu_app) == 2


async def test_hundred_concurrent_401s_make_one_token_request(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
) -> None:
    first = await provider.get_token(E2E_SCOPE)
    todo.reject(first.token, "invalid_token")
    async with _session(provider, todo, client_connector) as session:
        statuses = await asyncio.gather(*(_get(session, todo.url(f"/i/{n}")) for n in range(100)))
    assert statuses == [200] * 100
    assert todo.statuses.count(401) == 100
    assert _token_requests(emu, emu_app) == 2  # the first token and one renewal


async def _body() -> AsyncIterator[bytes]:
    yield b'{"title": "streamed"}'


async def test_non_replayable_body_is_not_retried(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    todo.reject((await provider.get_token(E2E_SCOPE)).token, "invalid_token")
    async with (
        _session(provider, todo, client_connector) as session,
        session.post(todo.url("/items"), data=_body()) as response,
    ):
        assert response.status == 401
    assert todo.statuses == [401]
    assert _token_requests(emu, emu_app) == 1
    assert f"401 from POST {todo.origin} not retried" in caplog.text


async def test_stream_across_a_token_rollover_sees_no_401_and_no_stall(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    clock: ManualClock,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
) -> None:
    """The token is due for refresh-ahead from the first request on; the refresh is slow."""
    old = await provider.get_token(E2E_SCOPE)
    clock.advance(provider._flight.slots[E2E_SCOPE].fresh_until - clock.monotonic())
    emu.faults.add(Fault("token", "latency", delay=2.0, client_id=emu_app.client_id))
    async with _session(provider, todo, client_connector) as session:
        stream = [await _get(session, todo.url(f"/s/{n}")) for n in range(20)]
        stream += await asyncio.gather(*(_get(session, todo.url(f"/c/{n}")) for n in range(20)))
        # Ordering, not timing: the emulator logs a token request when it answers it, so
        # the refresh the first request started is still unanswered after all 40 requests.
        assert emu.faults.active == []  # the refresh request reached the emulator ...
        assert _token_requests(emu, emu_app) == 1  # ... and is not answered yet
        assert set(todo.tokens) == {token_id(old.token)}
        for _ in range(500):  # wait for the rollover (bounded)
            if (await provider.get_token(E2E_SCOPE)).token != old.token:
                break
            await asyncio.sleep(0.01)  # real time: the emulator's 2 s latency runs out
        stream += [await _get(session, todo.url(f"/after/{n}")) for n in range(5)]
    assert stream == [200] * 45
    assert 401 not in todo.statuses
    assert token_id(old.token) not in todo.tokens[40:]
    assert _token_requests(emu, emu_app) >= 2
