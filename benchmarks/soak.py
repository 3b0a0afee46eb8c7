"""The soak: thousands of tasks on short-lived tokens for a minute, bounded, on the emulator.

2,000 tasks share one TokenProvider and each asks for one of 4 scopes every 10 ms, for 60 s,
with 5 s tokens from the emulator (a rollover every 2.5 to 3.1 s per key). The report gives:

* **failed calls**: must be 0;
* **token requests against rollovers times keys**: the emulator's count of token requests must
  equal the provider's count of fetches, key by key (one request per key per rollover: no
  duplicate, no retry), every refresh must have been ahead of time (no caller waited for a
  token), and each key's rollovers must fall within the bounds the refresh window allows for
  the time the key was in use (below);
* **memory over time**: the objects aioentra's own classes have alive, counted after a
  ``gc.collect()`` whenever no fetch is in flight, must not grow; the process's resident
  memory is sampled alongside.

The bounds come from :class:`aioentra.RefreshPolicy`: a token of lifetime ``L`` is refreshed
in the background from ``opens = L * refresh_fraction`` after its fetch started, never
earlier, and callers would wait from ``usable = L - margin_for(L)`` on. When no caller waits
(every refresh is ahead of time), every token's successor was fetched between ``opens`` and
``usable`` after it, so a key in use for ``E`` seconds rolled over ``R`` times with
``floor(E / usable) <= R <= floor(E / opens)``: for 5 s tokens, ``opens`` = 2.5 s and
``usable`` = 3.75 s.

Run: ``python benchmarks/soak.py`` (``--seconds``, ``--tasks``, ``--keys``, ``--lifetime``
to change it; about 60 s). Exits 1 if a check fails; writes ``benchmarks/results/soak.md``.
``tests/soak/test_soak.py`` runs a 10 s version of :func:`soak` in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "soak.md"


@dataclasses.dataclass
class KeyReport:
    scope: str
    fetches: int
    """Fetches the provider made for the key (its ``KeyStats.requests``), the first included."""
    failures: int
    reasons: dict[str, int]
    """Why each token the callers received was fetched (``cold``, ``ahead``, ``expired``...)."""
    seconds_in_use: float
    """From the key's first fetch to the end of the traffic."""
    low: int
    high: int
    """The rollovers the refresh window allows in ``seconds_in_use``."""

    @property
    def rollovers(self) -> int:
        return self.fetches - 1


@dataclasses.dataclass
class SoakReport:
    seconds: float
    tasks: int
    lifetime: float
    opens: float
    usable: float
    calls: int
    failed_calls: int
    failure_kinds: dict[str, int]
    token_requests: int
    keys: list[KeyReport]
    samples: list[tuple[float, int, int]]
    """``(seconds into the run, aioentra objects alive, resident memory in KiB)``."""

    @property
    def fetches(self) -> int:
        return sum(key.fetches for key in self.keys)

    @property
    def late_refreshes(self) -> int:
        """Tokens served that were fetched for another reason than refresh-ahead (a key's
        first token excepted, a cold fetch): each one made callers wait."""
        late = 0
        for key in self.keys:
            for reason, count in key.reasons.items():
                if reason == "cold":
                    late += count - 1
                elif reason != "refresh-ahead":
                    late += count
        return late

    @property
    def object_growth(self) -> int:
        """Objects of aioentra's classes alive at the last sample, less at the first."""
        if len(self.samples) < 2:
            return 0
        return self.samples[-1][1] - self.samples[0][1]

    def problems(self) -> list[str]:
        """What the soak must not show; empty when it passed."""
        found = []
        if self.failed_calls:
            found.append(f"{self.failed_calls} failed calls: {self.failure_kinds}")
        if self.token_requests != self.fetches:
            found.append(
                f"{self.token_requests} token requests for {self.fetches} fetches "
                "(one request per key per rollover)"
            )
        failures = sum(key.failures for key in self.keys)
        if failures:
            found.append(f"{failures} failed fetches")
        if self.late_refreshes:
            found.append(f"{self.late_refreshes} refreshes were not ahead of time")
        for key in self.keys:
            if not key.low <= key.rollovers <= key.high:
                found.append(
                    f"{key.scope}: {key.rollovers} rollovers in {key.seconds_in_use:.1f} s, "
                    f"outside [{key.low}, {key.high}]"
                )
        if len(self.samples) < 2:
            found.append("fewer than two memory samples")
        elif self.object_growth > 0:
            found.append(f"aioentra's objects grew by {self.object_growth} over the run")
        return found


# Not the provider's: the emulator, and the test suite's secret guard (which keeps every log
# record of a test, rendered, to scan it at the end).
_NOT_COUNTED = (
    "aioentra.emulator",
    "aioentra.testing",
    "aioentra.pytest_plugin",
    "aioentra._secret_guard",
    "aioentra._secret_scan",
)


def _aioentra_objects() -> int:
    """Objects of aioentra's own classes alive (those of :data:`_NOT_COUNTED` excepted)."""
    count = 0
    for obj in gc.get_objects():
        module = type(obj).__dict__.get("__module__")
        if (
            isinstance(module, str)
            and module.startswith("aioentra")
            and not module.startswith(_NOT_COUNTED)
        ):
            count += 1
    return count


def _resident_kib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    return 0


async def soak(
    emu: Any,
    *,
    seconds: float = 60.0,
    tasks: int = 2000,
    keys: int = 4,
    lifetime: int = 5,
    interval: float = 0.01,
    sample_every: float = 2.0,
) -> SoakReport:
    """Run the soak against ``emu`` (an emulator serving in another thread or on this loop).

    Bounded: ``tasks`` callers for ``seconds``, then at most 30 s for the fetches in flight.
    The emulator's token lifetime is set to ``lifetime`` seconds for the run (and restored).
    """
    from aioentra import ClientSecret, RefreshPolicy, TokenProvider

    policy = RefreshPolicy()
    opens = lifetime * policy.refresh_fraction
    usable = lifetime - policy.margin_for(lifetime)
    scopes = []
    app = emu.add_app("soak")
    for index in range(keys):
        uri = f"api://soak-{index}"
        api = emu.state.find_api(emu.tenant_id, uri) or emu.add_api(uri)
        emu.grant(app, api, [])
        scopes.append(f"{uri}/.default")
    saved = emu.state.token_lifetime
    emu.state.token_lifetime = lifetime  # shorter than the emulator's setter allows (msal's 5 min)
    calls = 0
    failures: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {scope: Counter() for scope in scopes}
    first: dict[str, float] = {}
    last: dict[str, str] = dict.fromkeys(scopes, "")
    samples: list[tuple[float, int, int]] = []
    try:
        async with TokenProvider(
            ClientSecret(app.secret or ""),
            tenant_id=emu.tenant_id,
            client_id=app.client_id,
            authority=emu.base_url,
            ca_file=emu.ca_file,
            refresh=policy,
        ) as provider:
            get_token = provider.get_token

            def seen(scope: str, token: Any) -> None:
                # Only strings and floats are kept: no aioentra object outlives the call.
                if token.token != last[scope]:
                    last[scope] = token.token
                    reasons[scope][token.metadata.reason.value] += 1
                    first.setdefault(scope, token.metadata.fetched_at)

            stop = time.monotonic() + seconds

            async def caller(scope: str) -> None:
                nonlocal calls
                while time.monotonic() < stop:
                    try:
                        seen(scope, await get_token(scope))
                    except Exception as exc:
                        failures[type(exc).__name__] += 1
                    calls += 1
                    await asyncio.sleep(interval)

            def in_flight() -> bool:
                return any(key.in_flight for key in provider.stats().keys)

            async def sampler() -> None:
                begun = time.monotonic()
                next_at = begun + max(sample_every, lifetime)  # after the first rollovers
                while time.monotonic() < stop - 0.2:
                    await asyncio.sleep(0.05)
                    if time.monotonic() < next_at or in_flight():
                        continue
                    gc.collect()
                    samples.append((time.monotonic() - begun, _aioentra_objects(), _resident_kib()))
                    next_at += sample_every

            workers = [asyncio.ensure_future(caller(scopes[i % keys])) for i in range(tasks)]
            watch = asyncio.ensure_future(sampler())
            await asyncio.gather(*workers)
            ended = time.time()
            await watch
            for _ in range(600):  # the fetches still in flight end (at most 30 s)
                if not in_flight():
                    break
                await asyncio.sleep(0.05)
            gc.collect()
            samples.append((seconds, _aioentra_objects(), _resident_kib()))
            stats = provider.stats()
    finally:
        emu.state.token_lifetime = saved
    requests = emu.requests.count(endpoint="token", client_id=app.client_id)
    reports = []
    for scope in scopes:
        key = stats.key(scope)
        assert key is not None, scope
        in_use = ended - first.get(scope, ended)
        reports.append(
            KeyReport(
                scope=scope,
                fetches=key.requests,
                failures=key.failures,
                reasons=dict(reasons[scope]),
                seconds_in_use=in_use,
                low=math.floor(in_use / usable),
                high=math.floor(in_use / opens),
            )
        )
    return SoakReport(
        seconds=seconds,
        tasks=tasks,
        lifetime=lifetime,
        opens=opens,
        usable=usable,
        calls=calls,
        failed_calls=sum(failures.values()),
        failure_kinds=dict(failures),
        token_requests=requests,
        keys=reports,
        samples=samples,
    )


def render(report: SoakReport) -> str:
    problems = report.problems()
    lines = [
        "# Soak",
        "",
        f"Generated by `python benchmarks/soak.py`: {report.tasks:,} tasks, {len(report.keys)} "
        f"keys, {report.lifetime:g} s tokens, {report.seconds:g} s, every task calling every "
        f"10 ms. Refresh window of a {report.lifetime:g} s token: from {report.opens:g} s "
        f"(never earlier) to {report.usable:g} s (callers would wait from there).",
        "",
        f"**{'Passed' if not problems else 'Failed'}**"
        + ("" if not problems else ": " + "; ".join(problems)),
        "",
        "| figure | value |",
        "|---|---|",
        f"| calls | {report.calls:,} |",
        f"| failed calls | {report.failed_calls:,} |",
        f"| token requests (emulator) | {report.token_requests:,} |",
        f"| fetches (provider, every key) | {report.fetches:,} |",
        f"| refreshes not ahead of time | {report.late_refreshes:,} |",
        f"| aioentra objects: first sample → last | {report.samples[0][1]:,} → "
        f"{report.samples[-1][1]:,} |"
        if report.samples
        else "| aioentra objects | no sample |",
        "",
        "| key | seconds in use | rollovers | allowed | reasons of the tokens served |",
        "|---|---|---|---|---|",
        *(
            f"| `{key.scope}` | {key.seconds_in_use:.1f} | {key.rollovers} | "
            f"{key.low} … {key.high} | "
            + ", ".join(f"{name} {count}" for name, count in sorted(key.reasons.items()))
            + " |"
            for key in report.keys
        ),
        "",
        "Memory over time (after a `gc.collect()`, with no fetch in flight):",
        "",
        "| seconds | aioentra objects | resident memory (MiB) |",
        "|---|---|---|",
        *(f"| {t:.0f} | {objects:,} | {rss / 1024:.1f} |" for t, objects, rss in report.samples),
        "",
    ]
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> int:
    from aioentra.emulator import Emulator

    emu = Emulator()
    with emu.serve_in_thread():  # its own loop, so that serving does not delay the callers
        report = await soak(
            emu, seconds=args.seconds, tasks=args.tasks, keys=args.keys, lifetime=args.lifetime
        )
    text = render(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 1 if report.problems() else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--lifetime", type=int, default=5)
    sys.exit(asyncio.run(_main(parser.parse_args())))
