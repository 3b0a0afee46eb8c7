"""The single-flight cell, driven by a manual clock and a scripted fetch: no sockets, no sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from aioentra import IdentityProviderUnavailableError, ProviderClosedError, ThrottledError
from aioentra._flight import Fetched, FetchReason, Flight
from aioentra._policy import RefreshPolicy
from aioentra.testing import ManualClock

pytestmark = pytest.mark.anyio

FRESH = 100.0
USABLE = 200.0


class Source:
    """A scripted fetch: counts calls, can be held open, fails when told to."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()  # fetches answer at once unless held
        self.errors: list[Exception] = []
        self.started = asyncio.Event()

    def hold(self) -> None:
        """Hold the next fetches open until ``gate`` is set; ``started`` tells one began."""
        self.gate.clear()
        self.started.clear()

    async def fetch(self, key: Hashable, reason: FetchReason) -> Fetched[str]:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        now = self.clock.monotonic()
        return Fetched(f"{key}-{self.calls}", now + FRESH, now + USABLE)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def source(clock: ManualClock) -> Source:
    return Source(clock)


def make(
    source: Source, clock: ManualClock, **policy: float
) -> tuple[Flight[Hashable, str], Recorder]:
    recorder = Recorder()
    flight: Flight[Hashable, str] = Flight(
        source.fetch,
        policy=RefreshPolicy(**policy),  # type: ignore[arg-type]
        clock=clock,
        observer=recorder,
    )
    return flight, recorder


class Recorder:
    """The cell's observer, recording what it is told."""

    def __init__(self) -> None:
        self.reasons: list[FetchReason] = []
        self.failures: list[tuple[FetchReason, float, bool]] = []

    def fetched(self, key: Hashable, reason: FetchReason, seconds: float) -> None:
        self.reasons.append(reason)

    def failed(
        self, key: Hashable, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        self.failures.append((reason, backoff, serving))


async def until_started(source: Source) -> None:
    await source.started.wait()
    source.started.clear()


async def test_a_thousand_concurrent_callers_cause_one_fetch(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock)
    source.hold()
    callers = [asyncio.ensure_future(flight.get("k")) for _ in range(1000)]
    await until_started(source)
    source.gate.set()
    values = await asyncio.gather(*callers)
    assert set(values) == {"k-1"} and source.calls == 1
    assert log.reasons == [FetchReason.COLD]
    assert await flight.get("k") == "k-1" and source.calls == 1


async def test_a_cancelled_starter_does_not_cancel_the_fetch(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock)
    source.hold()
    starter = asyncio.ensure_future(flight.get("k"))
    await until_started(source)
    others = [asyncio.ensure_future(flight.get("k")) for _ in range(10)]
    await asyncio.sleep(0)
    starter.cancel()
    source.gate.set()
    assert set(await asyncio.gather(*others)) == {"k-1"}
    with pytest.raises(asyncio.CancelledError):
        await starter
    assert source.calls == 1 and await flight.get("k") == "k-1"


async def test_refresh_ahead_serves_the_old_value_and_fetches_once_in_the_background(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock)
    assert await flight.get("k") == "k-1"
    clock.advance(FRESH)  # the refresh-ahead window
    source.hold()
    served = await asyncio.gather(*(flight.get("k") for _ in range(100)))
    assert set(served) == {"k-1"}  # nobody waited
    assert source.calls == 2 and flight.in_flight("k")
    source.gate.set()
    task = flight.slots["k"].task
    assert task is not None and await task == "k-2"
    assert await flight.get("k") == "k-2"
    assert log.reasons == [FetchReason.COLD, FetchReason.AHEAD]


async def test_background_failures_are_reported_not_raised_and_back_off(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock, failure_backoff=2.0, max_failure_backoff=60.0)
    await flight.get("k")
    clock.advance(FRESH)
    source.errors = [IdentityProviderUnavailableError("down")] * 5
    assert await flight.get("k") == "k-1"
    task = flight.slots["k"].task
    assert task is not None
    with pytest.raises(IdentityProviderUnavailableError):
        await asyncio.shield(task)
    ((reason, backoff, serving),) = log.failures
    assert reason is FetchReason.AHEAD and serving and 1.6 <= backoff <= 2.0
    # During the back-off: the value, and no fetch.
    for _ in range(50):
        assert await flight.get("k") == "k-1"
    assert source.calls == 2
    assert not flight.in_flight("k")
    clock.advance(backoff)
    assert await flight.get("k") == "k-1"
    assert flight.in_flight("k")  # one new background attempt


async def test_get_nowait_answers_what_get_answers_without_waiting(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock, failure_backoff=2.0, max_failure_backoff=60.0)
    assert flight.get_nowait("k") is None  # never fetched: nothing started
    assert source.calls == 0 and not flight.in_flight("k") and flight.hits == 0
    await flight.get("k")
    assert flight.get_nowait("k") == "k-1" and flight.hits == 1  # fresh: counted as get counts
    clock.advance(FRESH)  # the refresh-ahead window
    source.hold()
    assert [flight.get_nowait("k") for _ in range(20)] == ["k-1"] * 20
    assert flight.in_flight("k")
    await until_started(source)
    assert source.calls == 2  # one background refresh, as get starts it
    assert flight.hits == 21
    source.gate.set()
    task = flight.slots["k"].task
    assert task is not None and await task == "k-2"
    assert flight.get_nowait("k") == "k-2" and log.reasons == [FetchReason.COLD, FetchReason.AHEAD]


async def test_get_nowait_starts_nothing_while_the_key_backs_off_or_past_its_window(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock, failure_backoff=2.0, max_failure_backoff=60.0)
    await flight.get("k")
    clock.advance(FRESH)
    source.errors = [IdentityProviderUnavailableError("down")] * 5
    assert flight.get_nowait("k") == "k-1"
    task = flight.slots["k"].task
    assert task is not None
    with pytest.raises(IdentityProviderUnavailableError):
        await asyncio.shield(task)
    assert [flight.get_nowait("k") for _ in range(10)] == ["k-1"] * 10  # backing off
    assert source.calls == 2 and not flight.in_flight("k")
    clock.advance(USABLE)  # past the usable window: get would wait (or raise), so None
    hits = flight.hits
    assert flight.get_nowait("k") is None
    assert source.calls == 2 and not flight.in_flight("k") and flight.hits == hits
    await flight.close()
    assert flight.get_nowait("k") is None


async def test_past_the_usable_window_callers_wait_and_share_one_error(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock)
    await flight.get("k")
    clock.advance(USABLE)
    source.hold()
    source.errors = [IdentityProviderUnavailableError("down")]
    callers = [asyncio.ensure_future(flight.get("k")) for _ in range(100)]
    await until_started(source)
    source.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, IdentityProviderUnavailableError) for r in results)
    assert source.calls == 2
    assert log.failures[0][0] is FetchReason.EXPIRED and log.failures[0][2] is False
    # New callers during the back-off get a copy of the error, without a fetch.
    with pytest.raises(IdentityProviderUnavailableError) as info:
        await flight.get("k")
    assert info.value is not results[0] and info.value.__traceback__ is not None
    assert source.calls == 2


async def test_back_off_doubles_honours_retry_after_and_one_setting_caps_both(
    source: Source, clock: ManualClock
) -> None:
    flight, log = make(source, clock, failure_backoff=1.0, max_failure_backoff=30.0)
    for _ in range(4):
        source.errors = [IdentityProviderUnavailableError("down")]
        with pytest.raises(IdentityProviderUnavailableError):
            await flight.get("k")
        clock.advance(log.failures[-1][1])
    for i, (_, backoff, _) in enumerate(log.failures):
        assert 0.8 * 2**i <= backoff <= 2**i  # doubling, with up to 20% jitter
    source.errors = [ThrottledError("slow down", retry_after=10.0)]
    with pytest.raises(ThrottledError):
        await flight.get("t")
    assert log.failures[-1][1] == 10.0  # Retry-After beyond the exponential delay
    clock.advance(10.0)
    source.errors = [ThrottledError("slow down", retry_after=86400.0)]
    with pytest.raises(ThrottledError):
        await flight.get("t")
    assert log.failures[-1][1] == 30.0  # capped, however long the server asks
    calls = source.calls
    with pytest.raises(ThrottledError):
        await flight.get("t", force=True)  # forced, and still backing off
    assert source.calls == calls
    clock.advance(30.0)
    assert await flight.get("t", force=True) == f"t-{calls + 1}"


async def test_renewal_is_limited_per_key(source: Source, clock: ManualClock) -> None:
    flight, log = make(source, clock, renewal_interval=30.0)
    first = await flight.get("k")
    renewed = await asyncio.gather(*(flight.renew("k", first) for _ in range(50)))
    assert set(renewed) == {"k-2"} and source.calls == 2
    # The consumer keeps rejecting: within the interval, the current value, no fetch.
    for _ in range(50):
        assert await flight.renew("k", "k-2") == "k-2"
    assert source.calls == 2
    # A late report of an older rejected value gets the newer one.
    assert await flight.renew("k", first) == "k-2"
    clock.advance(30.0)
    assert await flight.renew("k", "k-2") == "k-3"
    assert log.reasons == [FetchReason.COLD, FetchReason.RENEWAL, FetchReason.RENEWAL]


async def test_renewals_of_related_keys_share_a_budget_and_fall_back(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock, renewal_interval=30.0)
    assert await flight.get("plain") == "plain-1"
    assert await flight.renew("claims-a", budget="claims", fallback="plain") == "claims-a-2"
    # The same claims again: its value, at once.
    assert await flight.renew("claims-a", budget="claims", fallback="plain") == "claims-a-2"
    # New claims every time: the budget is spent, the fallback key answers.
    for n in range(20):
        assert await flight.renew(f"claims-{n}", budget="claims", fallback="plain") == "plain-1"
    assert source.calls == 2


async def test_renewal_during_back_off_raises_the_last_error(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock)
    first = await flight.get("k")
    source.errors = [ThrottledError("slow down", retry_after=20.0)]
    with pytest.raises(ThrottledError):
        await flight.renew("k", first)
    with pytest.raises(ThrottledError):
        await flight.renew("k", first)
    assert await flight.get("k") == first  # plain callers keep the usable value
    assert source.calls == 2


async def test_a_wall_clock_step_changes_nothing(source: Source, clock: ManualClock) -> None:
    flight, _ = make(source, clock)
    await flight.get("k")
    clock.step_wall(-3600)  # backwards: the value must still leave its window on time
    clock.advance(USABLE)
    source.hold()
    waiter = asyncio.ensure_future(flight.get("k"))
    await until_started(source)
    assert not waiter.done()  # past usable: the caller waits for a new value
    source.gate.set()
    assert await waiter == "k-2"
    clock.step_wall(+7200)  # forwards: the fresh value stays fresh
    assert flight.peek("k") == "k-2"
    assert await flight.get("k") == "k-2" and source.calls == 2


async def test_put_supersedes_a_fetch_in_flight(source: Source, clock: ManualClock) -> None:
    flight, _ = make(source, clock)
    source.hold()
    waiter = asyncio.ensure_future(flight.get("k"))
    await until_started(source)
    now = clock.monotonic()
    flight.put("k", Fetched("newer", now + FRESH, now + USABLE))
    source.gate.set()
    assert await waiter == "k-1"  # the waiter gets what it waited for ...
    assert await flight.get("k") == "newer"  # ... but the newer value stays


async def test_discard_keeps_keys_in_flight(source: Source, clock: ManualClock) -> None:
    flight, _ = make(source, clock)
    await flight.get("done")
    source.hold()
    waiter = asyncio.ensure_future(flight.get("busy"))
    await until_started(source)
    assert flight.discard("done") and flight.peek("done") is None
    assert not flight.discard("busy")
    source.gate.set()
    await waiter


async def test_close_cancels_fetches_and_callers_get_the_closed_error(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock)
    source.hold()
    waiter = asyncio.ensure_future(flight.get("k"))
    await until_started(source)
    await flight.close()
    with pytest.raises(ProviderClosedError):
        await waiter
    with pytest.raises(ProviderClosedError):
        await flight.get("k")
    assert list(flight.tasks()) == [] and len(flight) == 0


async def test_cancelling_a_waiter_during_close_is_a_cancellation(
    source: Source, clock: ManualClock
) -> None:
    flight, _ = make(source, clock)
    source.hold()
    waiter = asyncio.ensure_future(flight.get("k"))
    await until_started(source)
    waiter.cancel()
    await flight.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


def test_fetched_refuses_windows_out_of_order() -> None:
    with pytest.raises(ValueError, match="fresh_until"):
        Fetched("v", 10.0, 5.0)


def test_slot_repr_never_shows_the_value() -> None:
    flight: Flight[str, str] = Flight(lambda key, reason: _never())
    flight.put("k", Fetched("secret-value", 1.0, 2.0))
    assert "secret-value" not in repr(flight.slots["k"]) + repr(flight)


async def _never() -> Fetched[str]:
    raise AssertionError("not fetched")
