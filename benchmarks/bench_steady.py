"""Steady traffic across token rollovers: requests per rollover and caller latency.

Short-lived tokens (6 s, the emulator's token lifetime) roll over every few seconds while 200
or 2,000 tasks each ask for a token every 10 ms. For each contender (aioentra, azure-identity
aio, and azure-core's bearer policy over each of them, the way an Azure SDK client asks) the
table gives the token requests the emulator received during the run, the rollovers they
formed, requests per rollover, caller latency p50 / p99 / max, calls over 1 ms, and errors.

Run: ``python benchmarks/bench_steady.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/steady.md``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _common import (
    Check,
    Contender,
    Context,
    Json,
    Section,
    Table,
    calling,
    drive_callers,
    emulator,
    episodes,
    failure,
    fmt,
    median,
    new_app,
    ok,
    run_alone,
    set_token_lifetime,
    target_for,
)

API_URI = "api://bench-steady"
SCOPE = f"{API_URI}/.default"


# == worker side ===================================================================================


async def steady(target: Json, contender: str, tasks: int, seconds: float, grace: float) -> Json:
    waited = 0

    def count_waits(token: Any) -> None:
        # aioentra marks the token a call got from a request it waited for ("network");
        # a call answered from memory gets "memory".
        nonlocal waited
        metadata = getattr(token, "metadata", None)  # None: a baseline from before metadata
        if metadata is not None and metadata.source.value != "memory":
            waited += 1

    async with calling(target, contender) as (_, call):
        await call()  # the first token, before the traffic starts
        started = time.time()
        result = await drive_callers(
            call,
            tasks=tasks,
            seconds=seconds,
            grace=grace,
            on_result=count_waits if contender == "aioentra" else None,
        )
        return {**result, "started": started, "waited": waited if contender == "aioentra" else None}


# == parent side ===================================================================================

CONTENDERS = [
    Contender("aioentra", "steady", {"contender": "aioentra"}, ours=True),
    Contender("azure-identity aio", "steady", {"contender": "identity"}),
    Contender(
        "azure-identity aio behind azure-core's bearer policy",
        "steady",
        {"contender": "identity policy"},
    ),
    Contender(
        "aioentra behind azure-core's bearer policy (`as_azure_credential()`)",
        "steady",
        {"contender": "aioentra policy"},
        ours=True,
    ),
]


async def section(ctx: Context) -> Section:
    if ctx.quick:
        lifetime, seconds, sizes, grace = 4, 5.0, [200], 5.0
    else:
        lifetime, seconds, sizes, grace = 6, 20.0, [200, 2000], 15.0
    gap = lifetime / 4
    results: dict[int, dict[str, list[Any]]] = {}
    async with emulator() as emu, ctx.pool("bench_steady") as pool:
        set_token_lifetime(emu, lifetime)
        api = emu.add_api(API_URI)
        apps: dict[tuple[str, int], str] = {}

        async def before(contender: Contender, index: int) -> Json:
            app = new_app(emu, api, "bench-steady")
            apps[(contender.label, index)] = app.client_id
            return {"target": target_for(emu, app, SCOPE)}

        async def after(contender: Contender, index: int, result: Json) -> Json:
            times = [
                record.time
                for record in emu.requests.filter("token", client_id=apps[(contender.label, index)])
                if record.time >= result["started"]
            ]
            return {**result, "requests": len(times), "rollovers": episodes(times, gap)}

        for tasks in sizes:
            results[tasks] = await pool.rounds(
                CONTENDERS,
                1,
                args={"tasks": tasks, "seconds": seconds, "grace": grace},
                timeout=seconds + grace + 120,
                before=before,
                after=after,
            )
    rows = []
    checks = []
    for tasks in sizes:
        for label, samples in results[tasks].items():
            bad = failure(samples)
            if bad:
                rows.append([f"{tasks:,}", label, bad, *([""] * 9)])
                continue
            runs = ok(samples)

            def pick(key: str, runs: list[Json] = runs) -> float | None:
                return median([r[key] for r in runs])

            requests, rollovers = pick("requests"), pick("rollovers")
            per = None if not requests or not rollovers else requests / rollovers
            p50, p99, worst = pick("p50"), pick("p99"), pick("max")
            waited = (
                pick("waited") if label.startswith("aioentra") and " policy" not in label else None
            )
            rows.append(
                [
                    f"{tasks:,}",
                    label,
                    fmt(requests, 0),
                    fmt(rollovers, 0),
                    fmt(per),
                    fmt(None if p50 is None else p50 * 1e6, 1),
                    fmt(None if p99 is None else p99 * 1e6, 1),
                    fmt(None if worst is None else worst * 1e3, 1),
                    f"{fmt(pick('over_1ms'), 0)} of {fmt(pick('calls'), 0)}",
                    "—" if waited is None else fmt(waited, 0),
                    fmt(pick("errors"), 0),
                    fmt(pick("unfinished"), 0),
                ]
            )
            if label.startswith("aioentra"):
                checks.append(
                    Check(
                        f"1 token request per rollover ({label}, {tasks:,} tasks)",
                        fmt(per),
                        "1.00",
                        None if per is None else per == 1,
                    )
                )
                over = pick("over_1ms")
                checks.append(
                    Check(
                        f"0 calls over 1 ms in steady state ({label}, {tasks:,} tasks)",
                        fmt(over, 0),
                        "0",
                        None if over is None else over == 0,
                    )
                )
    table = Table(
        [
            "tasks",
            "contender",
            "token requests",
            "rollovers",
            "requests per rollover",
            "p50 (µs)",
            "p99 (µs)",
            "max (ms)",
            "calls over 1 ms",
            "calls that waited for a request",
            "errors",
            "unfinished",
        ],
        rows,
        title=f"{seconds:g} s of traffic, {lifetime} s tokens, every task calling every 10 ms",
    )
    method = (
        f"One run per contender and task count, one after another, each with a new app; the "
        f"first token is fetched before the traffic starts. Token requests are those the "
        f"emulator logged for that app during the run; a rollover is a cluster of them no more "
        f"than {gap:g} s apart (a quarter of the lifetime), so a thundering herd counts as one "
        f"rollover with many requests. Latency is measured around each `await`; a call that "
        f"never suspends (a cache hit) measures microseconds whatever else the loop does. After "
        f"the run, calls still waiting get {grace:g} s more, then are cancelled (`unfinished`). "
        "For aioentra alone, `calls that waited for a request` counts the calls whose token "
        "came from a request they waited for (its metadata says `network`, not `memory`): "
        "with refresh-ahead working that is 0, whatever the load; calls over 1 ms with none "
        "waiting are the machine's (a preempted process, a garbage collection). "
        "msal and aiohttp-oauth2-client do not apply: msal treats a token with less than five "
        "minutes left as expired and aiohttp-oauth2-client one with less than 30 s, so with "
        "these lifetimes every call of theirs is a token request."
    )
    return Section("steady", "3. Steady traffic across rollovers", method, [table], checks)


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
