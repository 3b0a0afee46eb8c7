"""An identity-provider outage while the token is still valid: do callers notice?

Each contender holds a token with 200 s left whose refresh is due (the state a long-running
process is in near the end of a token's life: azure-identity and azure-core's policy refresh
in the last five minutes, aioentra from its refresh-ahead point), and 200 tasks ask for a
token every 10 ms while the emulator's token endpoint fails for that app: 503 answers, a hang
(requests answered only after the outage), or reset connections. The table gives the worst
caller latency, the calls over 10 ms and over 1 s, errors, and the token requests sent during
the outage.

Run: ``python benchmarks/bench_outage.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/outage.md``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from _common import (
    Check,
    Contender,
    Context,
    Failed,
    Json,
    Section,
    Table,
    WorkerError,
    aioentra_seed_due,
    calling,
    drive_callers,
    emulator,
    fmt,
    identity_fill,
    new_app,
    run_alone,
    target_for,
)

API_URI = "api://bench-outage"
SCOPE = f"{API_URI}/.default"
LEFT = 200  # seconds left on the held token
TASKS = 200


# == worker side ===================================================================================


async def outage(
    target: Json,
    contender: str,
    tasks: int,
    seconds: float,
    grace: float,
    token: str,
    start_at: float,
    setup: float,
) -> Json:
    async with calling(target, contender) as (source, call):
        if contender.startswith("aioentra"):
            await source.get_token(SCOPE)  # a real first request: the engine is started
            aioentra_seed_due(source, SCOPE, token=token, expires_in=LEFT)
        else:
            # Stored the way its AadClient stores a response; it sent no request yet, so its
            # 30 s throttle between refresh attempts does not hold it back.
            identity_fill(source, target, [SCOPE], token=token, expires_in=LEFT)
        wait = start_at - time.time()
        if wait < 0:
            raise RuntimeError(f"set-up took {setup - wait:.1f} s, more than {setup:g} s")
        await asyncio.sleep(wait + 0.05)
        return await drive_callers(call, tasks=tasks, seconds=seconds, grace=grace)


# == parent side ===================================================================================

CONTENDERS = [
    Contender("aioentra", "outage", {"contender": "aioentra"}, ours=True),
    Contender("azure-identity aio", "outage", {"contender": "identity"}),
    Contender(
        "azure-identity aio behind azure-core's bearer policy",
        "outage",
        {"contender": "identity policy"},
    ),
    Contender(
        "aioentra behind azure-core's bearer policy (`as_azure_credential()`)",
        "outage",
        {"contender": "aioentra policy"},
        ours=True,
    ),
]


def _fault(kind: str, client_id: str, seconds: float) -> Any:
    from aioentra.emulator import Fault

    if kind == "503":
        return Fault("token", "status", status=503, count=None, client_id=client_id)
    if kind == "hang":
        return Fault("token", "latency", delay=seconds, count=None, client_id=client_id)
    return Fault("token", "reset", count=None, client_id=client_id)


async def section(ctx: Context) -> Section:
    if ctx.quick:
        kinds, seconds, tail, grace, setup = ["503"], 2.0, 1.0, 6.0, 1.5
    else:
        kinds, seconds, tail, grace, setup = ["503", "hang", "reset"], 12.0, 2.0, 20.0, 4.0
    rows: list[list[str]] = []
    checks: list[Check] = []
    async with emulator() as emu, ctx.pool("bench_outage") as pool:
        api = emu.add_api(API_URI)
        for kind in kinds:
            for contender in pool.expand(CONTENDERS):
                app = new_app(emu, api, "bench-outage")
                token, _ = emu.issue_access_token(
                    tenant_id=emu.tenant_id,
                    client_id=app.client_id,
                    object_id=app.object_id,
                    resource=API_URI,
                    lifetime=LEFT,
                )
                start_at = time.time() + setup
                running = asyncio.ensure_future(
                    pool.call(
                        contender,
                        timeout=setup + seconds + tail + grace + 60,
                        target=target_for(emu, app, SCOPE),
                        tasks=TASKS,
                        seconds=seconds + tail,
                        grace=grace,
                        token=token,
                        start_at=start_at,
                        setup=setup,
                    )
                )
                await asyncio.sleep(max(0.0, start_at - time.time()))
                fault = emu.faults.add(_fault(kind, app.client_id, seconds))
                await asyncio.sleep(seconds)
                emu.faults.remove(fault)
                try:
                    result: Json | Failed = await running
                except WorkerError as exc:
                    result = Failed(str(exc))
                sent = [
                    r
                    for r in emu.requests.filter("token", client_id=app.client_id)
                    if start_at <= r.time < start_at + seconds
                ]
                rows.append(_row(kind, contender.label, result, len(sent)))
                if contender.ours:
                    checks += _checks(kind, contender.label, result)
    table = Table(
        [
            "outage",
            "contender",
            "worst caller (ms)",
            "p99 (µs)",
            "calls over 10 ms",
            "calls over 1 s",
            "errors",
            "unfinished",
            "calls",
            "token requests during the outage",
        ],
        rows,
        title=f"{seconds:g} s outages of the token endpoint, {TASKS} tasks calling every 10 ms, "
        f"a token with {LEFT} s left",
    )
    method = (
        f"One run per outage kind and contender, one after another, each with a new app. The "
        f"held token is minted by the emulator with {LEFT} s left and stored the way each "
        "library stores a response; aioentra's provider first makes one real request (so its "
        "engine is started) and its cell is then set to that token with the refresh-ahead due "
        "now; azure-identity's credential has sent no request, as one that fetched its token "
        "an hour ago. The callers run for the outage and "
        f"{tail:g} s after it; calls still waiting {grace:g} s later are cancelled "
        "(`unfinished`). Kinds: `503` (every token request answered 503), `hang` (every token "
        f"request answered only after {seconds:g} s), `reset` (every connection dropped). "
        "msal and aiohttp-oauth2-client do not apply: msal treats a token with less than five "
        "minutes left as expired (every call of its would be a failing request), and "
        "aiohttp-oauth2-client does not refresh a token until 30 s before it expires."
    )
    return Section("outage", "4. Outage while the token is valid", method, [table], checks)


def _row(kind: str, label: str, result: Json | Failed, sent: int) -> list[str]:
    if isinstance(result, Failed):
        return [kind, label, str(result), *([""] * 7)]
    p99 = result["p99"]
    worst = result["max"]
    return [
        kind,
        label,
        fmt(None if worst is None else worst * 1e3, 1),
        fmt(None if p99 is None else p99 * 1e6, 1),
        fmt(result["over_10ms"], 0),
        fmt(result["over_1s"], 0),
        fmt(result["errors"], 0)
        + (f" ({', '.join(result['error_kinds'])})" if result["error_kinds"] else ""),
        fmt(result["unfinished"], 0),
        fmt(result["calls"], 0),
        fmt(sent, 0),
    ]


def _checks(kind: str, label: str, result: Json | Failed) -> list[Check]:
    if isinstance(result, Failed):
        return [Check(f"0 errors, 0 stalls over 10 ms ({kind}, {label})", "n/a", "0 / 0", None)]
    errors = result["errors"] + result["unfinished"]
    stalls = result["over_10ms"]
    return [
        Check(
            f"0 errors and 0 stalls over 10 ms during the outage ({kind}, {label})",
            f"{errors} errors, {stalls} stalls",
            "0 errors, 0 stalls",
            errors == 0 and stalls == 0,
        )
    ]


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
