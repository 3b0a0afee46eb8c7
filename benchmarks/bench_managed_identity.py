"""The managed-identity source under concurrency: aioentra against azure-identity and msal.

``aioentra.ManagedIdentityProvider``, azure-identity aio's ``ManagedIdentityCredential`` and
msal's ``ManagedIdentityClient`` (its calls through ``asyncio.to_thread``) get Key Vault tokens
from the emulator's managed-identity endpoint (the App Service form, found through
``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``). Two measurements: the requests the endpoint
receives when 1, 100 or 1,000 callers ask at once on an empty cache (50 ms of endpoint latency
so that they overlap), with the wall time; and microseconds per warm call.

Run: ``python benchmarks/bench_managed_identity.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/managed_identity.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from _common import (
    Check,
    Contender,
    Context,
    Json,
    Section,
    Table,
    callers_label,
    emulator,
    failure,
    fmt,
    fmt_ratio,
    median,
    ok,
    per_call_async,
    per_call_sync,
    ratio,
    run_alone,
)

RESOURCE = "https://vault.azure.net"
SCOPE = f"{RESOURCE}/.default"


# == worker side ===================================================================================


@contextlib.asynccontextmanager
async def _source(contender: str, client_id: str) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    if contender == "aioentra":
        from aioentra import ManagedIdentityProvider

        async with ManagedIdentityProvider(client_id=client_id) as provider:
            yield lambda: provider.get_token(SCOPE)
    elif contender == "identity":
        from azure.identity.aio import ManagedIdentityCredential

        async with ManagedIdentityCredential(client_id=client_id) as credential:
            yield lambda: credential.get_token(SCOPE)
    else:
        import msal
        import requests

        session = requests.Session()
        session.trust_env = False
        client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=client_id), http_client=session
        )

        async def get() -> Any:
            result = await asyncio.to_thread(client.acquire_token_for_client, resource=RESOURCE)
            assert "access_token" in result, result.get("error")
            return result

        try:
            yield get
        finally:
            session.close()


def _use(environ: dict[str, str]) -> None:
    from aioentra.emulator import MANAGED_IDENTITY_VARIABLES

    for name in MANAGED_IDENTITY_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(environ)


async def mi_cold(environ: dict[str, str], identity: str, contender: str, callers: int) -> float:
    _use(environ)
    async with _source(contender, identity) as get:
        started = time.perf_counter()
        await asyncio.gather(*(get() for _ in range(callers)))
        return time.perf_counter() - started


async def mi_warm(
    environ: dict[str, str], identity: str, contender: str, runs: int, budget: float
) -> float:
    _use(environ)
    if contender == "msal sync":
        async with _source("msal", identity) as get:
            await get()
            client_call = _msal_sync(identity)
            return per_call_sync(client_call, runs=runs, budget=budget)
    async with _source(contender, identity) as get:
        await get()
        return await per_call_async(get, runs=runs, budget=budget)


def _msal_sync(identity: str) -> Callable[[], Any]:
    import msal
    import requests

    session = requests.Session()
    session.trust_env = False
    client = msal.ManagedIdentityClient(
        msal.UserAssignedManagedIdentity(client_id=identity), http_client=session
    )
    client.acquire_token_for_client(resource=RESOURCE)  # one request: then from its cache
    return lambda: client.acquire_token_for_client(resource=RESOURCE)


# == parent side ===================================================================================

COLD = [
    Contender(
        "aioentra `ManagedIdentityProvider`", "mi_cold", {"contender": "aioentra"}, ours=True
    ),
    Contender(
        "azure-identity aio `ManagedIdentityCredential`", "mi_cold", {"contender": "identity"}
    ),
    Contender(
        "msal `ManagedIdentityClient` through `asyncio.to_thread`", "mi_cold", {"contender": "msal"}
    ),
]
WARM = [
    Contender(
        "aioentra `ManagedIdentityProvider`", "mi_warm", {"contender": "aioentra"}, ours=True
    ),
    Contender(
        "azure-identity aio `ManagedIdentityCredential`", "mi_warm", {"contender": "identity"}
    ),
    Contender(
        "msal `ManagedIdentityClient` (sync: blocks the loop)",
        "mi_warm",
        {"contender": "msal sync"},
    ),
    Contender(
        "msal `ManagedIdentityClient` through `asyncio.to_thread`", "mi_warm", {"contender": "msal"}
    ),
]


async def section(ctx: Context) -> Section:
    bursts = [1, 100] if ctx.quick else [1, 100, 1000]
    rounds, warm_rounds = (1, 2) if ctx.quick else (3, 5)
    runs, budget = (3, 0.03) if ctx.quick else (3, 0.1)
    results: dict[int, dict[str, list[Any]]] = {}
    async with emulator() as emu, ctx.pool("bench_managed_identity") as pool:
        from aioentra.emulator import Fault

        environ = emu.managed_identity.environ
        identities: dict[tuple[str, int], str] = {}

        async def before(contender: Contender, index: int) -> Json:
            identity = emu.managed_identity.add_identity()
            emu.faults.add(
                Fault(
                    "managed_identity",
                    "latency",
                    delay=0.05,
                    count=None,
                    client_id=identity.client_id,
                )
            )
            identities[(contender.label, index)] = identity.client_id
            return {"identity": identity.client_id}

        async def after(contender: Contender, index: int, wall: float) -> Json:
            client_id = identities[(contender.label, index)]
            sent = emu.requests.count(endpoint="managed_identity", client_id=client_id)
            return {"wall": wall, "requests": sent}

        for callers in bursts:
            results[callers] = await pool.rounds(
                COLD,
                rounds,
                args={"environ": environ, "callers": callers},
                timeout=180,
                before=before,
                after=after,
            )
        warm_identity = emu.managed_identity.add_identity()
        warm = await pool.rounds(
            WARM,
            warm_rounds,
            args={
                "environ": environ,
                "identity": warm_identity.client_id,
                "runs": runs,
                "budget": budget,
            },
        )
    top = bursts[-1]
    ours = COLD[0].label

    def figure(label: str, callers: int, key: str) -> float | None:
        return median([s[key] for s in ok(results[callers][label])])

    rows = []
    for label in results[bursts[0]]:
        cells = []
        for callers in bursts:
            bad = failure(results[callers][label])
            requests = figure(label, callers, "requests")
            wall = figure(label, callers, "wall")
            cells.append(
                bad or f"{fmt(requests, 0)} · {fmt(None if wall is None else wall * 1e3, 0)} ms"
            )
        reqs = ratio(figure(label, top, "requests"), figure(ours, top, "requests"))
        rows.append([label, *cells, fmt_ratio(reqs)])
    cold_table = Table(
        [
            "contender",
            *(f"{callers_label(n)}: requests · wall" for n in bursts),
            f"requests ÷ aioentra's at {top:,}",
        ],
        rows,
        title="Cold callers at once (endpoint requests · wall time; 50 ms endpoint latency)",
    )
    warm_values = {label: median(ok(samples)) for label, samples in warm.items()}
    warm_rows = [
        [
            label,
            failure(samples) or fmt(warm_values[label]),
            fmt_ratio(ratio(warm_values[label], warm_values[WARM[0].label])),
        ]
        for label, samples in warm.items()
    ]
    warm_table = Table(
        ["contender", "µs per warm call", "÷ aioentra"],
        warm_rows,
        title="Warm calls (one cached token)",
    )
    checks = []
    for label in [c.label for c in pool.expand(COLD) if c.ours]:
        worst = max(
            (figure(label, n, "requests") or 0 for n in bursts if ok(results[n][label])),
            default=None,
        )
        checks.append(
            Check(
                f"1 request per key, any number of cold callers ({label})",
                fmt(worst, 0),
                "1",
                None if worst is None else worst == 1,
            )
        )
    method = (
        f"Cold: {rounds} round(s), a new user-assigned identity per contender, burst and round "
        "(counted by its client id in the emulator's log), the callers released together with "
        f"`asyncio.gather`. Warm: {warm_rounds} interleaved rounds of {runs} timed runs of up "
        f"to {budget:g} s each, one identity. msal's calls go through the default executor's "
        "threads, so at most that many are in flight."
    )
    return Section(
        "managed_identity",
        "10. The managed-identity source",
        method,
        [cold_table, warm_table],
        checks,
    )


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
