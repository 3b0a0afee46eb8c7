"""What a provider says about its tokens: log lines, token metadata and ``stats()``.

Against the emulator over HTTPS with the real msal in the path; time moves on a ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from aioentra import (
    ClientSecret,
    CredentialRejectedError,
    FetchReason,
    IdentityProviderUnavailableError,
    RefreshPolicy,
    ServedFrom,
    Telemetry,
    TokenProvider,
)
from aioentra._reporting import next_action
from aioentra.emulator import App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


def _records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "aioentra", {}).get("event") == event]


async def _settle(provider: TokenProvider) -> None:
    await asyncio.gather(*provider._flight.tasks(), return_exceptions=True)


# -- logs --------------------------------------------------------------------------------------


async def test_a_token_acquired_is_one_info_line_with_its_fields(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aioentra")
    async with make_provider() as provider:
        await provider.get_token(SCOPE)
        await provider.get_token(SCOPE)  # from memory: no line
    (record,) = _records(caplog, "token_acquired")
    assert record.levelno == logging.INFO and record.name == "aioentra.provider"
    message = record.getMessage()
    for part in (SCOPE, app.client_id, emulator.tenant_id, "no cached token", "from the network"):
        assert part in message
    assert re.search(r"valid for \d+s, took \d+\.\d{3}s", message)
    fields = record.aioentra  # type: ignore[attr-defined]
    assert fields["reason"] == "cold" and fields["source"] == "network"
    assert fields["client_id"] == app.client_id and fields["tenant_id"] == emulator.tenant_id
    assert fields["scope"] == SCOPE and fields["claims"] is False
    assert 0 < fields["lifetime"] <= emulator.token_lifetime and fields["duration"] >= 0


async def test_a_failure_is_a_warning_with_the_codes_and_what_happens_next(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aioentra")
    async with make_provider(ClientSecret("not-the-secret")) as provider:
        with pytest.raises(CredentialRejectedError) as caught:
            await provider.get_token(SCOPE)
    (record,) = _records(caplog, "token_failed")
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    error = caught.value
    assert error.correlation_id and f"correlation id {error.correlation_id}" in message
    assert "invalid_client (AADSTS7000215)" in message
    assert app.client_id in message and emulator.tenant_id in message
    # What happens next, as it does: no retry on its own, and what to fix.
    assert "callers get this error until a call after" in message
    assert "fails the same way until the cause is fixed" in message
    assert error.hint and error.hint in message
    assert "not-the-secret" not in message
    fields = record.aioentra  # type: ignore[attr-defined]
    assert fields["error_code"] == "invalid_client (AADSTS7000215)"
    assert fields["correlation_id"] == error.correlation_id
    assert fields["retryable"] is False and fields["serving"] is False
    assert fields["retry_in"] > 0
    assert token_requests(emulator, app) == 1


async def test_a_failed_refresh_ahead_says_the_cached_token_is_served(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aioentra")
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        token = await provider.get_token(SCOPE)
        clock.advance(provider._flight.slots[SCOPE].fresh_until - clock.monotonic())
        emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))
        assert await provider.get_token(SCOPE) == token
        await _settle(provider)
    (record,) = _records(caplog, "token_failed")
    message = record.getMessage()
    assert "refresh-ahead" in message and "serving the cached token for another" in message
    assert "a call after" in message and "starts a new refresh" in message
    assert "fails the same way" not in message  # a 503 is worth asking again
    assert record.aioentra["serving"] is True  # type: ignore[attr-defined]
    assert record.aioentra["reason"] == "refresh-ahead"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("retryable", "serving_for", "hint", "expected"),
    [
        (True, 61.4, None, "serving the cached token for another 61s; a call after 2.0s starts"),
        (True, None, None, "callers get this error until a call after 2.0s sends a new request"),
        (False, None, "fix it", "sends a new request; the same request fails the same way "),
        (False, 10.0, "fix it", "until the cause is fixed: fix it"),
        (True, -3.0, None, "for another 0s; a call after 2.0s starts a new refresh (from 0s"),
    ],
)
def test_next_action_says_what_the_source_does(
    retryable: bool, serving_for: float | None, hint: str | None, expected: str
) -> None:
    assert expected in next_action(
        retryable=retryable, backoff=2.0, serving_for=serving_for, hint=hint
    )


def test_every_logger_is_under_the_aioentra_hierarchy() -> None:
    from pathlib import Path

    import aioentra

    root = Path(aioentra.__file__).parent
    names = set()
    for path in root.rglob("*.py"):
        names.update(re.findall(r"getLogger\(\s*['\"]([^'\"]*)['\"]", path.read_text()))
        # A logger named after a module would not say where it belongs: only literal names.
        assert "getLogger(__name__)" not in path.read_text(), path
    assert names and all(n == "aioentra" or n.startswith("aioentra.") for n in names), names


# -- token metadata ----------------------------------------------------------------------------


async def test_each_token_says_why_it_was_fetched_and_where_it_came_from(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock, refresh=RefreshPolicy(renewal_interval=0)) as provider:
        first = await provider.get_token(SCOPE)
        assert first.metadata is not None
        assert (first.metadata.reason, first.metadata.source) == (
            FetchReason.COLD,
            ServedFrom.NETWORK,
        )
        assert first.metadata.fetched_at == clock.time() and first.metadata.duration >= 0

        again = await provider.get_token(SCOPE)
        assert again == first and again.metadata is not None
        assert (again.metadata.reason, again.metadata.source) == (
            FetchReason.COLD,
            ServedFrom.MEMORY,
        )
        assert await provider.get_token(SCOPE) is again  # the memory copy is made once

        forced = await provider.get_token(SCOPE, force_refresh=True)
        assert forced.metadata is not None and forced.metadata.reason is FetchReason.FORCED

        renewed = await provider.renew_token(SCOPE, rejected=forced)
        assert renewed.metadata is not None
        assert renewed.metadata.reason is FetchReason.RENEWAL
        assert renewed.metadata.source is ServedFrom.NETWORK

        claims = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
        challenged = await provider.get_token(SCOPE, claims=claims)
        assert challenged.metadata is not None
        assert challenged.metadata.reason is FetchReason.CLAIMS

        clock.advance(provider._flight.slots[SCOPE].fresh_until - clock.monotonic())
        assert (await provider.get_token(SCOPE)).token == challenged.token  # served meanwhile
        await _settle(provider)
        ahead = await provider.get_token(SCOPE)
        assert ahead.metadata is not None
        assert (ahead.metadata.reason, ahead.metadata.source) == (
            FetchReason.AHEAD,
            ServedFrom.MEMORY,
        )

        clock.advance(emulator.token_lifetime)  # past the usable window
        expired = await provider.get_token(SCOPE)
        assert expired.metadata is not None
        assert (expired.metadata.reason, expired.metadata.source) == (
            FetchReason.EXPIRED,
            ServedFrom.NETWORK,
        )
    assert token_requests(emulator, app) == 6
    assert "source='network'" in repr(expired) and expired.token not in repr(expired)


async def test_concurrent_callers_of_one_fetch_all_get_the_network_token(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        tokens = await asyncio.gather(*(provider.get_token(SCOPE) for _ in range(50)))
    assert len({id(t) for t in tokens}) == 1
    assert tokens[0].metadata is not None and tokens[0].metadata.source is ServedFrom.NETWORK
    assert token_requests(emulator, app) == 1


# -- stats -------------------------------------------------------------------------------------


async def test_stats_report_expiry_requests_failures_and_the_last_error(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        assert provider.stats().keys == ()
        token = await provider.get_token(SCOPE)
        clock.advance(emulator.token_lifetime)  # must refresh: callers wait and see the error
        emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))
        with pytest.raises(IdentityProviderUnavailableError) as caught:
            await provider.get_token(SCOPE)
        stats = provider.stats()
    entry = stats.key(SCOPE)
    assert entry is not None and entry == stats.keys[0]
    assert (entry.scope, entry.tenant_id, entry.claims) == (SCOPE, emulator.tenant_id, False)
    assert entry.expires_on == token.expires_on and entry.refresh_on == token.refresh_on
    assert (entry.requests, entry.failures, entry.consecutive_failures) == (2, 1, 1)
    assert entry.last_error_code == "temporarily_unavailable (AADSTS90033)"
    assert entry.last_correlation_id == caught.value.correlation_id
    assert entry.retry_in is not None and entry.retry_in > 0
    assert entry.last_reason is FetchReason.EXPIRED and entry.last_source is ServedFrom.NETWORK
    assert entry.in_flight is False and entry.shared_cache_hits == 0
    assert (stats.requests, stats.failures, stats.shared_cache_hits) == (2, 1, 0)
    assert stats.client_id == app.client_id and stats.tenant_id == emulator.tenant_id
    assert stats.memory_hits is not None  # an injected clock counts, as telemetry= does
    assert stats.key("api://other/.default") is None


async def test_stats_count_memory_hits_only_with_telemetry(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as plain, make_provider(telemetry=Telemetry()) as counted:
        for provider in (plain, counted):
            for _ in range(5):
                await provider.get_token(SCOPE)
        assert plain.stats().memory_hits is None
        assert counted.stats().memory_hits == 4
        assert type(plain).get_token is TokenProvider.get_token  # the plain warm path


async def test_stats_of_tenants_and_claims_are_their_own_keys(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    claims = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
    async with make_provider() as provider:
        await provider.get_token(SCOPE)
        await provider.get_token(SCOPE, claims=claims)
        keys = provider.stats().keys
    assert sorted((k.claims, k.requests) for k in keys) == [(False, 1), (True, 1)]
    assert all(k.expires_on is not None for k in keys)


class _Broken(Telemetry):
    calls = 0

    def fetch_ended(self, event: Any) -> None:
        _Broken.calls += 1
        raise RuntimeError("a broken exporter")


async def test_a_telemetry_that_raises_never_fails_a_token_request(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_provider(telemetry=_Broken()) as provider:
        await provider.get_token(SCOPE)
        await provider.get_token(SCOPE, force_refresh=True)
    assert _Broken.calls == 2
    warned = [r for r in caplog.records if r.name == "aioentra.telemetry"]
    assert len(warned) == 1 and "RuntimeError" in warned[0].getMessage()


def test_telemetry_must_be_a_telemetry(emulator: Emulator, app: App) -> None:
    from aioentra import ConfigurationError

    with pytest.raises(ConfigurationError, match="telemetry must be"):
        TokenProvider(
            ClientSecret("x"),
            tenant_id=emulator.tenant_id,
            client_id=app.client_id,
            telemetry=object(),  # type: ignore[arg-type]
        )
