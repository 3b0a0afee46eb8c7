"""TokenProvider against the emulator: single-flight, refresh-ahead, outages, retries.

Every test talks HTTPS to the emulator with the real msal in the path, and
asserts how many token requests reached the server, never how long things took.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from aioentra import (
    AccessToken,
    ClientSecret,
    IdentityProviderUnavailableError,
    ProviderClosedError,
    RefreshPolicy,
    RetryPolicy,
    ThrottledError,
    TokenProvider,
)
from aioentra.emulator import App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


async def _wait_for_inflight(provider: TokenProvider, scope: str = SCOPE) -> None:
    for _ in range(1000):
        if provider._flight.in_flight(scope):
            return
        await asyncio.sleep(0)
    raise AssertionError("no request went in flight")


def _task(provider: TokenProvider, scope: str = SCOPE) -> asyncio.Task[AccessToken] | None:
    return provider._flight.slots[scope].task


async def test_token_is_issued_and_cached(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        token = await provider.get_token(SCOPE)
        again = await provider.get_token(SCOPE)
    assert again == token
    assert token_requests(emulator, app) == 1
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["azp"] == app.client_id and claims["roles"] == ["Things.Read"]
    assert token.expires_on > token.refresh_on
    assert token.token not in repr(token)


async def test_thousand_concurrent_cold_callers_send_one_request(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="latency", delay=0.2, count=1))
    async with make_provider() as provider:
        tokens = await asyncio.gather(*(provider.get_token(SCOPE) for _ in range(1000)))
    assert len({t.token for t in tokens}) == 1
    assert token_requests(emulator, app) == 1


async def test_cancelling_the_first_caller_does_not_cancel_the_request(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="latency", delay=0.3, count=1))
    async with make_provider() as provider:
        first = asyncio.ensure_future(provider.get_token(SCOPE))
        await _wait_for_inflight(provider)
        others = [asyncio.ensure_future(provider.get_token(SCOPE)) for _ in range(10)]
        await asyncio.sleep(0)
        first.cancel()
        tokens = await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await first
        assert len({t.token for t in tokens}) == 1
        assert await provider.get_token(SCOPE) == tokens[0]
    assert token_requests(emulator, app) == 1


async def test_refresh_ahead_replaces_the_token_while_callers_keep_the_old_one(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.refresh_in = 600
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        old = await provider.get_token(SCOPE)
        # refresh_in (600 s) opens the window, not the default half-life
        assert 600 <= old.refresh_on - ManualClock.EPOCH < emulator.token_lifetime - 60
        clock.advance(provider._flight.slots[SCOPE].fresh_until - clock.monotonic())
        emulator.faults.add(Fault(endpoint="token", kind="latency", delay=0.3, count=1))
        served = await asyncio.gather(*(provider.get_token(SCOPE) for _ in range(50)))
        # Every caller got the old token at once while the refresh was in flight.
        assert all(t == old for t in served)
        task = _task(provider)
        assert task is not None
        new = await task
        assert new.token != old.token
        assert await provider.get_token(SCOPE) == new
    assert token_requests(emulator, app) == 2


async def test_outage_while_the_token_is_valid_is_invisible_to_callers(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    async with make_provider(retry=retry, clock=clock) as provider:
        token = await provider.get_token(SCOPE)
        clock.advance(emulator.token_lifetime - 61)  # refresh-ahead, past any jitter
        emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=2))
        emulator.faults.add(Fault(endpoint="token", kind="reset", count=None))
        with caplog.at_level(logging.WARNING, logger="aioentra"):
            for _ in range(3):
                served = await asyncio.gather(*(provider.get_token(SCOPE) for _ in range(100)))
                assert all(t == token for t in served)
                task = _task(provider)
                if task is not None:
                    with pytest.raises(IdentityProviderUnavailableError):
                        await asyncio.shield(task)
        # One background refresh, three attempts, then the key backs off.
        assert token_requests(emulator, app) == 1 + 3
        assert "serving the cached token for another" in caplog.text
        assert token.token not in caplog.text


async def test_past_the_usable_window_callers_wait_and_share_the_error(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    async with make_provider(retry=retry, clock=clock) as provider:
        await provider.get_token(SCOPE)
        clock.advance(emulator.token_lifetime - 30)  # inside the must-refresh window
        emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))
        results = await asyncio.gather(
            *(provider.get_token(SCOPE) for _ in range(50)), return_exceptions=True
        )
        assert all(isinstance(r, IdentityProviderUnavailableError) for r in results)
        assert token_requests(emulator, app) == 1 + 2
        emulator.faults.clear()
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)  # still backing off: no request
        clock.advance(RefreshPolicy().max_failure_backoff)
        fresh = await provider.get_token(SCOPE)
        assert fresh.expires_in(clock.time()) > emulator.token_lifetime - 5
    assert token_requests(emulator, app) == 1 + 2 + 1


async def test_retry_after_is_honoured_then_the_request_succeeds(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="throttle", retry_after=1, count=1))
    with caplog.at_level(logging.DEBUG, logger="aioentra"):
        async with make_provider() as provider:
            assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 2
    assert "attempt 1 of 4, failed: temporarily_unavailable (AADSTS90033)" in caplog.text


async def test_long_retry_after_fails_fast_and_blocks_the_key(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="throttle", retry_after=120, count=1))
    async with make_provider() as provider:
        with pytest.raises(ThrottledError) as info:
            await provider.get_token(SCOPE)
        assert info.value.retry_after == 120 and info.value.status == 429
        # New callers during the back-off get the error without a request.
        for _ in range(5):
            with pytest.raises(ThrottledError):
                await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1


async def test_persistent_5xx_exhausts_the_attempts(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="status", status=500, count=None))
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    async with make_provider(retry=retry) as provider:
        callers = [provider.get_token(SCOPE) for _ in range(20)]
        results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, IdentityProviderUnavailableError) for r in results)
    assert results[0].status == 500  # type: ignore[union-attr]
    assert token_requests(emulator, app) == 3


@pytest.mark.parametrize("kind", ["html", "malformed_json", "reset"])
async def test_transient_garbage_is_retried(
    emulator: Emulator, app: App, make_provider: MakeProvider, kind: str
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind=kind, status=502, count=1))
    async with make_provider() as provider:
        assert isinstance(await provider.get_token(SCOPE), AccessToken)
    assert token_requests(emulator, app) == 2


async def test_force_refresh_and_renew_token_are_single_flight(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        first = await provider.get_token(SCOPE)
        forced = await provider.get_token(SCOPE, force_refresh=True)
        assert forced.token != first.token
        emulator.faults.add(Fault(endpoint="token", kind="latency", delay=0.2, count=1))
        renewed = await asyncio.gather(
            *(provider.renew_token(SCOPE, rejected=forced) for _ in range(100))
        )
        assert len({t.token for t in renewed}) == 1 and renewed[0].token != forced.token
        # A late report of the same rejected token gets the newer one, no request.
        assert (await provider.renew_token(SCOPE, rejected=forced)).token == renewed[0].token
    assert token_requests(emulator, app) == 3


async def test_claims_challenge_gets_its_own_request_and_replaces_the_token(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    async with make_provider() as provider:
        plain = await provider.get_token(SCOPE)
        challenged = await asyncio.gather(
            *(provider.get_token(SCOPE, claims=claims) for _ in range(20))
        )
        assert len({t.token for t in challenged}) == 1
        assert challenged[0].token != plain.token
        assert (await provider.get_token(SCOPE)).token == challenged[0].token
    assert token_requests(emulator, app) == 2
    record = emulator.requests.records[-1]
    assert record.endpoint == "token"


async def test_close_ends_threads_and_refuses_new_calls(make_provider: MakeProvider) -> None:
    provider = make_provider()
    async with provider:
        await provider.get_token(SCOPE)
        assert any(t.name.startswith("aioentra-msal") for t in threading.enumerate())
    assert not any(t.name.startswith("aioentra-msal") for t in threading.enumerate())
    with pytest.raises(ProviderClosedError, match="closed"):
        await provider.get_token(SCOPE)
    await provider.close()  # idempotent


async def test_close_during_a_request_cancels_it(
    emulator: Emulator, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="latency", delay=5, count=1))
    provider = make_provider()
    waiter = asyncio.ensure_future(provider.get_token(SCOPE))
    await _wait_for_inflight(provider)
    await provider.close()
    with pytest.raises(ProviderClosedError):
        await waiter
    assert not any(t.name.startswith("aioentra-msal") for t in threading.enumerate())


async def test_untrusted_server_certificate_is_refused(emulator: Emulator, app: App) -> None:
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
    )
    async with provider:
        with pytest.raises(IdentityProviderUnavailableError, match="TLS verification") as info:
            await provider.get_token(SCOPE)
    assert "ca_file" in (info.value.hint or "")


async def test_refresh_policy_is_applied(emulator: Emulator, make_provider: MakeProvider) -> None:
    policy = RefreshPolicy(refresh_fraction=0.25, expiry_margin=120, reserve=600)
    clock = ManualClock()
    async with make_provider(refresh=policy, clock=clock) as provider:
        token = await provider.get_token(SCOPE)
        slot = provider._flight.slots[SCOPE]
    lifetime = emulator.token_lifetime
    issued = ManualClock.EPOCH
    assert token.expires_on - issued == pytest.approx(lifetime)
    # the window opens at a quarter of the lifetime; the start is spread over the window
    # but its last 600 s (the reserve), which stays free for retries
    assert 0.25 * lifetime <= token.refresh_on - issued <= lifetime - 120 - 600
    assert slot.usable_until - clock.monotonic() == pytest.approx(lifetime - 120)


async def test_a_refresh_of_a_started_provider_makes_no_start_or_session_wait(
    emulator: Emulator, app: App, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a fetch before the provider has started and opened its session bounds those waits:
    each bounded wait is a task and a timer, which a busy event loop runs late, and every
    refresh-ahead would pay for them."""
    waits: list[str] = []
    bounded = TokenProvider._within

    async def counting(self: TokenProvider, deadline: float, work: Any, what: str) -> Any:
        waits.append(what)
        return await bounded(self, deadline, work, what)

    monkeypatch.setattr(TokenProvider, "_within", counting)
    async with make_provider() as provider:
        waits.clear()  # entering started the credential, bounded like this
        await provider.get_token(SCOPE)
        assert waits == ["starting the credential", "opening the session"]
        await provider.get_token(SCOPE, force_refresh=True)
        assert waits == ["starting the credential", "opening the session"]
    assert token_requests(emulator, app) == 2
