"""``peek_token``: the token ``get_token`` would return without waiting, or ``None``.

Driven by a manual clock against the emulator; every test counts token requests and memory
hits, never time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aioentra import ClientSecret, ServedFrom, Telemetry, TokenProvider
from aioentra.emulator import App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import SCOPE, AuditedProvider, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


def _slot_times(provider: TokenProvider) -> tuple[float, float]:
    slot = provider._flight.slots[SCOPE]
    return slot.fresh_until, slot.usable_until


async def test_cold_the_peek_is_none_and_fetches_nothing(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        assert provider.peek_token(SCOPE) is None
        assert provider.peek_token("api://never-asked/.default") is None
        assert provider.peek_token(["not", "hashable"]) is None  # type: ignore[arg-type]
        assert not provider._flight.in_flight(SCOPE)
    assert token_requests(emulator, app) == 0


async def test_warm_the_peek_is_the_token_get_token_returns(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        fetched = await provider.get_token(SCOPE)
        peeked = provider.peek_token(SCOPE)
        assert peeked is not None and peeked == fetched
        assert peeked.metadata is not None and peeked.metadata.source is ServedFrom.MEMORY
        assert peeked is await provider.get_token(SCOPE)  # the very object of the warm path
    assert token_requests(emulator, app) == 1


async def test_in_the_refresh_window_the_peek_starts_exactly_one_background_refresh(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        old = await provider.get_token(SCOPE)
        fresh_until, _ = _slot_times(provider)
        clock.advance(fresh_until - clock.monotonic())
        emulator.faults.add(Fault(endpoint="token", kind="latency", delay=0.2, count=1))
        assert [provider.peek_token(SCOPE) for _ in range(50)] == [old] * 50
        task = provider._flight.slots[SCOPE].task
        assert task is not None
        assert provider._flight.slots[SCOPE].task is task  # one refresh for the 50 peeks
        new = await task
        assert new.token != old.token
        assert provider.peek_token(SCOPE) == new and not provider._flight.in_flight(SCOPE)
    assert token_requests(emulator, app) == 2


async def test_past_the_usable_window_the_peek_is_none_and_starts_nothing(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        await provider.get_token(SCOPE)
        _, usable_until = _slot_times(provider)
        clock.advance(usable_until - clock.monotonic())
        assert provider.peek_token(SCOPE) is None
        assert not provider._flight.in_flight(SCOPE)
        assert token_requests(emulator, app) == 1
        new = await provider.get_token(SCOPE)  # get_token waits for the new token
        assert provider.peek_token(SCOPE) == new
    assert token_requests(emulator, app) == 2


async def test_peeks_count_memory_hits_as_get_token_does(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """Instrumented (``telemetry=``, ``clock=``): fresh peeks count on the source, peeks in
    the refresh window in the cell, as ``get_token``'s. The plain warm path counts nothing."""
    clocks = (ManualClock(), ManualClock())
    async with (
        make_provider(clock=clocks[0]) as peeking,
        make_provider(clock=clocks[1], telemetry=Telemetry()) as getting,
        make_provider() as plain,
    ):
        for provider, clock in zip((peeking, getting), clocks, strict=True):
            await provider.get_token(SCOPE)
            for _ in range(3):
                if provider is peeking:
                    assert provider.peek_token(SCOPE) is not None
                else:
                    await provider.get_token(SCOPE)
            fresh_until, _ = _slot_times(provider)
            clock.advance(fresh_until - clock.monotonic())
            if provider is peeking:
                assert provider.peek_token(SCOPE) is not None
            else:
                await provider.get_token(SCOPE)
            task = provider._flight.slots[SCOPE].task
            assert task is not None
            await task
        assert peeking.stats().memory_hits == getting.stats().memory_hits == 4
        await plain.get_token(SCOPE)
        assert plain.peek_token(SCOPE) is not None
        assert plain.stats().memory_hits is None
        assert type(plain).peek_token is TokenProvider.peek_token  # the plain warm path


async def test_a_closed_source_or_another_loop_gets_none_in_the_refresh_window(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    provider = make_provider(clock=clock)
    async with provider:
        token = await provider.get_token(SCOPE)
        assert await asyncio.to_thread(provider.peek_token, SCOPE) == token  # fresh: cached
        fresh_until, _ = _slot_times(provider)
        clock.advance(fresh_until - clock.monotonic())
        # No running loop in that thread to start the refresh on: "ask get_token".
        assert await asyncio.to_thread(provider.peek_token, SCOPE) is None
        assert not provider._flight.in_flight(SCOPE)
    assert provider.peek_token(SCOPE) is None
    assert token_requests(emulator, app) == 1


@pytest.mark.parametrize("instrumented", [False, True])
async def test_a_subclass_with_its_own_get_token_is_never_peeked(
    emulator: Emulator, app: App, instrumented: bool
) -> None:
    AuditedProvider.calls = 0
    provider = AuditedProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=emulator.ca_file,
        telemetry=Telemetry() if instrumented else None,
    )
    async with provider:
        await provider.get_token(SCOPE)
        assert provider.peek_token(SCOPE) is None
    assert AuditedProvider.calls == 1
