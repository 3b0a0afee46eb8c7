"""A keyed single-flight cell: one fetch in flight per key, refresh windows, back-off, renewals.

Everything here is asyncio and arithmetic on a clock: no msal, no HTTP, no tokens. The token
provider, the managed-identity assertion and anything else that must fetch a value with a
lifetime (keys, secrets) put a :class:`Flight` in front of their fetch function.

A stored value carries two monotonic due times (see :meth:`RefreshPolicy.windows
<aioentra.RefreshPolicy.windows>` for how a token's are chosen)::

    fetched           fresh_until              usable_until
    |---- fresh -------|---- refresh-ahead -----|---- must refresh ---->

``get(key)`` decides, per call:

=======================================  ================================  =========================
state of the key                         the caller gets                   network
=======================================  ================================  =========================
fresh                                    the value                         none
refresh-ahead                            the value                         one background fetch,
                                                                           unless one is in flight
                                                                           or the key backs off
must refresh (or never fetched)          the shared fetch's value or error one fetch, joined by all
must refresh, the key backs off          the last error (a copy)           none
``force=True``                           as "must refresh"                 as "must refresh"
=======================================  ================================  =========================

``renew(key, rejected)`` is for a value that its consumer refused (a 401):

=======================================  ================================  =========================
state of the key                         the caller gets                   network
=======================================  ================================  =========================
holds a usable value other than rejected that value                        none
a fetch is in flight                     its value or error                joins it
the key backs off                        the last error (a copy)           none
renewed less than ``renewal_interval``   the current value (or the         none
ago (per budget)                         ``fallback`` key's)
otherwise                                a new value                       one fetch
=======================================  ================================  =========================

Rules that hold throughout:

* **Single flight.** A key has at most one fetch in flight; every caller awaits the same task
  through :func:`asyncio.shield`, so cancelling a caller, the starter included, never cancels
  the fetch.
* **Background failures are logged, not raised**: a refresh-ahead fetch that fails leaves the
  current value in place and reports to the observer.
* **Back-off.** After a failed fetch the key waits ``RefreshPolicy.failure_delay(failures,
  retry_after)``, which one setting (``max_failure_backoff``) caps, a server's ``Retry-After``
  included.
* **Clocks.** Every due time is on the monotonic clock: a wall clock that steps either way
  changes nothing here. Wall time is only used by owners to report expiry to users.
* A fetch that finishes after a newer value was :meth:`put` for its key does not overwrite it.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ._errors import ProviderClosedError
from ._policy import RefreshPolicy

__all__ = [
    "Clock",
    "FetchReason",
    "Fetched",
    "Flight",
    "FlightObserver",
    "ManualClock",
    "Slot",
    "SystemClock",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
K_contra = TypeVar("K_contra", contravariant=True)

_NEVER = -math.inf


class Clock(Protocol):
    """The two clocks the cell and its owners read."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps: every due time is on it."""
        ...

    def time(self) -> float:
        """Unix time, for expiry times reported to users only."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic` and :func:`time.time`."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to: for tests of refresh windows and back-off.

    >>> clock = ManualClock()
    >>> clock.advance(30)
    >>> clock.monotonic(), clock.time() - ManualClock.EPOCH
    (1030.0, 30.0)
    >>> clock.step_wall(-3600)  # the wall clock steps back; monotonic time does not
    >>> clock.monotonic()
    1030.0
    """

    EPOCH = 1_800_000_000.0
    """The Unix time a new ManualClock starts at."""

    def __init__(self, *, monotonic: float = 1000.0, wall: float = EPOCH) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks."""
        if seconds < 0:
            raise ValueError("time does not run backwards; use step_wall() for the wall clock")
        self._monotonic += seconds
        self._wall += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone (an NTP correction, a VM resumed), either way."""
        self._wall += seconds

    def __repr__(self) -> str:
        return f"ManualClock(monotonic={self._monotonic!r}, wall={self._wall!r})"


class FetchReason(enum.Enum):
    """Why a fetch was started: reported on every token, in logs, stats and metrics.

    The values are short, stable strings (for log fields and metric attributes);
    :attr:`description` is the phrase log lines use.
    """

    COLD = "cold"
    """Nothing was cached for the key."""
    EXPIRED = "expired"
    """The cached value had left its usable window: callers waited for this fetch."""
    AHEAD = "refresh-ahead"
    """The cached value was in its refresh-ahead window: fetched in the background while
    callers kept getting the cached value."""
    FORCED = "forced"
    """The caller asked for a fresh value (``force_refresh=True``)."""
    CLAIMS = "claims"
    """A resource answered with a claims challenge (CAE): a token with those claims."""
    RENEWAL = "renewal"
    """The consumer rejected the cached value (a 401 with ``invalid_token``)."""

    @property
    def description(self) -> str:
        """The reason in words, for log lines."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    FetchReason.COLD: "no cached token",
    FetchReason.EXPIRED: "the cached token left its usable window",
    FetchReason.AHEAD: "refresh-ahead",
    FetchReason.FORCED: "forced refresh",
    FetchReason.CLAIMS: "claims challenge",
    FetchReason.RENEWAL: "the resource rejected the cached token",
}


@dataclass(frozen=True)
class Fetched(Generic[V]):
    """What a fetch produced: the value and its monotonic due times."""

    value: V
    fresh_until: float
    """From here on the value is refreshed in the background."""
    usable_until: float
    """From here on callers wait for a new value."""
    cached: V | None = None
    """What later callers get from the slot, if not ``value`` itself: the fetch's own waiters
    get ``value`` (say, a token marked "from the network") and later callers ``cached`` (the
    same token marked "from memory"), with nothing done on the warm path."""

    def __post_init__(self) -> None:
        if not self.fresh_until <= self.usable_until:
            raise ValueError("fresh_until must not be after usable_until")


class FlightObserver(Protocol[K_contra]):
    """Hooks for logs and metrics; both are called on the event loop and must not raise."""

    def fetched(self, key: K_contra, reason: FetchReason, seconds: float) -> None:
        """A fetch for ``key`` succeeded after ``seconds``."""
        ...

    def failed(
        self, key: K_contra, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        """A fetch failed; the key makes no new fetch for ``backoff`` seconds.

        ``serving`` says whether callers keep getting the current (still usable) value.
        """
        ...


class _Quiet:
    def fetched(self, key: object, reason: FetchReason, seconds: float) -> None:
        return None

    def failed(
        self, key: object, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        return None


class Slot(Generic[V]):
    """What the cell knows about one key. Owners' warm paths read ``value`` and ``fresh_until``:
    ``now < fresh_until`` implies a stored value."""

    __slots__ = (
        "error",
        "failures",
        "fresh_until",
        "generation",
        "retry_at",
        "task",
        "usable_until",
        "value",
    )

    value: V

    def __init__(self) -> None:
        self.fresh_until = _NEVER
        self.usable_until = _NEVER
        self.generation = 0
        self.task: asyncio.Task[V] | None = None
        self.failures = 0
        self.retry_at = _NEVER
        self.error: Exception | None = None

    def store(self, fetched: Fetched[V]) -> None:
        cached = fetched.cached
        self.value = fetched.value if cached is None else cached
        self.fresh_until = fetched.fresh_until
        self.usable_until = fetched.usable_until
        self.generation += 1
        self.failures = 0
        self.retry_at = _NEVER
        self.error = None

    def __repr__(self) -> str:  # never the value: it may be a secret
        return (
            f"Slot(fresh_until={self.fresh_until!r}, usable_until={self.usable_until!r}, "
            f"in_flight={self.task is not None}, failures={self.failures})"
        )


class Flight(Generic[K, V]):
    """Single-flight fetches per key, with refresh windows, back-off and a renewal limit.

    Args:
        fetch: produces a fresh value for a key (told why it is fetched), with its due
            times; may raise.
        policy: back-off (``failure_delay``) and ``renewal_interval``.
        clock: the clocks (a :class:`ManualClock` in tests).
        observer: told about every finished fetch (logs, metrics).
        same: whether two values are the same (``renew`` compares with the rejected one).
        closed_error: what callers get once :meth:`close` has run.

    The cell is bound to the event loop that first uses it; it is not thread-safe.
    """

    def __init__(
        self,
        fetch: Callable[[K, FetchReason], Awaitable[Fetched[V]]],
        *,
        policy: RefreshPolicy | None = None,
        clock: Clock | None = None,
        observer: FlightObserver[K] | None = None,
        same: Callable[[V, V], bool] | None = None,
        closed_error: Callable[[], Exception] | None = None,
    ) -> None:
        self._fetch = fetch
        self._policy = policy or RefreshPolicy()
        self._clock: Clock = clock or SystemClock()
        self._observer: FlightObserver[K] = observer or _Quiet()
        self._same = same or _equal
        self._closed_error = closed_error or _closed
        self.slots: dict[K, Slot[V]] = {}
        """Slots by key; owners' warm paths read them directly."""
        self._renewed: dict[Hashable, float] = {}
        self.hits = 0
        """Calls :meth:`get` and :meth:`renew` answered with a stored value, without a fetch
        (owners' warm paths, which read :attr:`slots` themselves, count their own)."""
        self._closed = False

    # -- reading --------------------------------------------------------------------------------

    def peek(self, key: K) -> V | None:
        """The key's usable value, if any, without fetching."""
        slot = self.slots.get(key)
        if slot is None or self._clock.monotonic() >= slot.usable_until:
            return None
        return slot.value

    def renewal_due(self, budget: Hashable) -> float:
        """When (monotonic) a renewal spending ``budget`` may fetch again; past values mean now."""
        return self._renewed.get(budget, _NEVER) + self._policy.renewal_interval

    def in_flight(self, key: K) -> bool:
        slot = self.slots.get(key)
        return slot is not None and slot.task is not None

    def tasks(self) -> Iterator[asyncio.Task[V]]:
        """The fetches in flight."""
        return (slot.task for slot in list(self.slots.values()) if slot.task is not None)

    def get_nowait(self, key: K) -> V | None:
        """What :meth:`get` returns without waiting, or ``None`` where it would wait.

        A fresh or refresh-ahead value is returned and counted in :attr:`hits` as ``get``
        returns and counts it, the background refresh started as ``get`` starts it (once: not
        while one is in flight or the key backs off). For a key never fetched, past the usable
        window and once the cell is closed: ``None``, and nothing is started. Call it on the
        cell's event loop (it may start a task).
        """
        slot = self.slots.get(key)
        if slot is None or self._closed:
            return None
        return slot.value if self._serve(key, slot, self._clock.monotonic()) else None

    async def get(self, key: K, *, force: bool = False) -> V:
        """The key's value, by the first table of the module docstring."""
        slot = self._slot(key)
        now = self._clock.monotonic()
        if not force and self._serve(key, slot, now):
            return slot.value
        task = slot.task
        if task is None:
            if now < slot.retry_at and slot.error is not None:
                raise _fresh_copy(slot.error)
            if force:
                reason = FetchReason.FORCED
            else:
                reason = FetchReason.COLD if slot.generation == 0 else FetchReason.EXPIRED
            task = self._start(key, slot, reason)
        return await self._wait(task)

    async def renew(
        self,
        key: K,
        rejected: V | None = None,
        *,
        budget: Hashable | None = None,
        fallback: K | None = None,
        reason: FetchReason = FetchReason.RENEWAL,
    ) -> V:
        """A value other than ``rejected``, by the second table of the module docstring.

        Args:
            rejected: the value the consumer refused; ``None`` asks for any value of ``key``
                (a key with a usable value answers at once).
            budget: the key whose renewal interval this renewal spends (default: ``key``), so
                that renewals of many related keys share one limit.
            fallback: the key whose value answers a limited renewal when ``key`` has none.
            reason: what a fetch is reported as (``CLAIMS`` for a claims challenge).
        """
        slot = self._slot(key)
        now = self._clock.monotonic()
        usable = now < slot.usable_until
        if usable and (rejected is None or not self._same(slot.value, rejected)):
            self.hits += 1
            return slot.value
        if slot.task is not None:
            return await self._wait(slot.task)
        if now < slot.retry_at and slot.error is not None:
            raise _fresh_copy(slot.error)
        spent = key if budget is None else budget
        last = self._renewed.get(spent, _NEVER)
        if now < last + self._policy.renewal_interval:
            if usable:
                self.hits += 1
                return slot.value
            if fallback is not None:
                return await self.get(fallback)
        self._remember_renewal(spent, now)
        return await self._wait(self._start(key, slot, reason))

    # -- writing --------------------------------------------------------------------------------

    def put(self, key: K, fetched: Fetched[V]) -> None:
        """Store a value obtained elsewhere (it supersedes a fetch in flight for ``key``)."""
        self._slot(key).store(fetched)

    def discard(self, key: K) -> bool:
        """Forget ``key`` unless a fetch for it is in flight; True if it was forgotten."""
        slot = self.slots.get(key)
        if slot is None:
            return True
        if slot.task is not None:
            return False
        del self.slots[key]
        self._renewed.pop(key, None)
        return True

    async def close(self) -> None:
        """Cancel the fetches in flight and wait for them; later calls raise ``closed_error``."""
        self._closed = True
        tasks = list(self.tasks())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.slots.clear()
        self._renewed.clear()

    def __len__(self) -> int:
        return len(self.slots)

    def __repr__(self) -> str:
        in_flight = sum(1 for _ in self.tasks())
        return f"Flight(keys={len(self.slots)}, in_flight={in_flight}, closed={self._closed})"

    # -- internals ------------------------------------------------------------------------------

    def _slot(self, key: K) -> Slot[V]:
        slot = self.slots.get(key)
        if slot is None:
            if self._closed:
                raise self._closed_error()
            slot = self.slots[key] = Slot()
        return slot

    def _serve(self, key: K, slot: Slot[V], now: float) -> bool:
        """Whether ``get`` answers from ``slot`` at ``now``: its value is usable. Counts the hit
        and starts the refresh-ahead fetch when it is due."""
        if now >= slot.usable_until:
            return False
        if now >= slot.fresh_until and slot.task is None and now >= slot.retry_at:
            self._start(key, slot, FetchReason.AHEAD)
        self.hits += 1
        return True

    def _start(self, key: K, slot: Slot[V], reason: FetchReason) -> asyncio.Task[V]:
        if self._closed:
            raise self._closed_error()
        task = asyncio.get_running_loop().create_task(self._run(key, slot, reason))
        slot.task = task
        task.add_done_callback(lambda done: _finished(slot, done))
        return task

    async def _run(self, key: K, slot: Slot[V], reason: FetchReason) -> V:
        clock = self._clock
        generation = slot.generation
        started = clock.monotonic()
        try:
            fetched = await self._fetch(key, reason)
        except Exception as error:
            slot.failures += 1
            backoff = self._policy.failure_delay(slot.failures, _retry_after(error))
            now = clock.monotonic()
            slot.retry_at = now + backoff
            slot.error = error
            self._observer.failed(key, reason, error, backoff, now < slot.usable_until)
            raise
        if slot.generation == generation:
            slot.store(fetched)
        self._observer.fetched(key, reason, clock.monotonic() - started)
        return fetched.value

    async def _wait(self, task: asyncio.Task[V]) -> V:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._closed and not _cancelling():
                raise self._closed_error() from None
            raise

    def _remember_renewal(self, budget: Hashable, now: float) -> None:
        renewed = self._renewed
        renewed[budget] = now
        if len(renewed) > 2 * len(self.slots) + 64:
            horizon = now - self._policy.renewal_interval
            for stale in [k for k, at in renewed.items() if at <= horizon]:
                del renewed[stale]


def _finished(slot: Slot[Any], task: asyncio.Task[Any]) -> None:
    if slot.task is task:
        slot.task = None
    if not task.cancelled():
        task.exception()  # retrieved: a background failure is reported, not lost


def _equal(a: object, b: object) -> bool:
    return a == b


def _closed() -> Exception:
    return ProviderClosedError("closed; create a new one")


def _retry_after(error: Exception) -> float | None:
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


def _fresh_copy(error: Exception) -> Exception:
    """A copy of a stored error without its traceback: each caller raises its own, and no
    caller's frames pile up on the stored one."""
    try:
        fresh = copy.copy(error)
    except Exception:  # an exception type that cannot be copied: raise it as it is
        return error.with_traceback(None)
    fresh.__traceback__ = None
    return fresh


def _cancelling() -> int:
    """How many cancellations the current task has pending (0 on Python 3.10)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0
