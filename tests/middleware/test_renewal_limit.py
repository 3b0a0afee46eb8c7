"""An API that rejects every token cannot spend the app's token budget.

Real parts: TokenProvider + the emulator + a JWT-validating HTTPS API + the middleware. Time is
the provider's manual clock, so "test duration" is exactly what the test advances.
"""

from __future__ import annotations

import math

import aiohttp
import pytest

from aioentra import RefreshPolicy, TokenProvider
from aioentra.aiohttp import authenticated_session
from aioentra.emulator import App, Emulator
from aioentra.testing import ManualClock

from .conftest import E2E_SCOPE
from .support import ProtectedApi, RejectMode

pytestmark = pytest.mark.anyio

INTERVAL = RefreshPolicy().renewal_interval


def _token_requests(emu: Emulator, app: App) -> int:
    return emu.requests.count("token", client_id=app.client_id)


async def _calls(
    provider: TokenProvider,
    todo: ProtectedApi,
    connector: aiohttp.TCPConnector,
    clock: ManualClock,
    *,
    calls: int,
    step: float,
) -> list[int]:
    statuses = []
    async with authenticated_session(
        provider, {todo.origin: E2E_SCOPE}, connector=connector
    ) as session:
        for _ in range(calls):
            async with session.get(todo.url("/items")) as response:
                await response.read()
                statuses.append(response.status)
            clock.advance(step)
    return statuses


@pytest.mark.parametrize("mode", ["invalid_token", "fresh_claims"])
@pytest.mark.parametrize("step", [0.0, INTERVAL / 4])
async def test_fifty_calls_to_an_api_that_rejects_everything(
    emu: Emulator,
    emu_app: App,
    provider: TokenProvider,
    clock: ManualClock,
    todo: ProtectedApi,
    client_connector: aiohttp.TCPConnector,
    mode: RejectMode,
    step: float,
) -> None:
    await provider.get_token(E2E_SCOPE)
    before = _token_requests(emu, emu_app)
    todo.always_reject = mode
    statuses = await _calls(provider, todo, client_connector, clock, calls=50, step=step)
    assert statuses == [401] * 50
    duration = 50 * step
    spent = _token_requests(emu, emu_app) - before
    assert spent <= 1 + math.floor(duration / INTERVAL)
    assert spent >= 1  # the first rejection is answered with one renewal
