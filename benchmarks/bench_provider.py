"""Token provider benchmarks: warm ``get_token`` and cold bursts, aioentra and its anchors.

1. **Warm get_token**: microseconds per call with the token cached, with 1, 100 and 10,000
   tokens in the cache (the hit key inserted last, the worst case for a linear scan), next
   to the floor (an awaited coroutine returning a dict value, with and without a clock
   compare), azure-identity aio, msal (sync, and through ``asyncio.to_thread``) and
   aiohttp-oauth2-client; then the paths Azure SDK clients take: ``as_azure_credential()``
   and azure-core's ``AsyncBearerTokenCredentialPolicy`` over it and over azure-identity.
2. **Cold burst**: token requests the server receives, and the wall time until every caller
   has a token, when 1, 10, 100 or 1,000 callers ask at once on an empty cache (50 ms of
   server latency so that they overlap).

Run: ``python benchmarks/bench_provider.py`` (``--quick`` for a smoke run, ``--baseline REV``
to add aioentra from a git revision). Writes ``benchmarks/results/provider.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import threading
import time
from typing import Any

from _common import (
    FLOOR_SCOPE,
    TIMES,
    Check,
    Contender,
    Context,
    FloorCache,
    Json,
    Section,
    Table,
    aioentra_fill,
    bearer_policy,
    callers_label,
    close_grant,
    emulator,
    failure,
    filler_scopes,
    fmt,
    fmt_ratio,
    identity_credential,
    identity_fill,
    median,
    msal_app,
    msal_fill,
    new_app,
    new_provider,
    oauth2_grant,
    ok,
    paired_ratio,
    per_call_async,
    per_call_sync,
    pipeline_request,
    policy_call,
    ratio,
    run_alone,
    target_for,
    token_requests,
)

HIT_URI = "api://bench-hit"
HIT_SCOPE = f"{HIT_URI}/.default"
FILLER_TOKEN = "x" * 900
WARM_TARGET = 1.25
ADAPTER_TARGET = 1.5


# == worker side: one measurement per call ========================================================


async def warm_floor(target: Json, size: int, runs: int, budget: float, clock: bool) -> float:
    cache = FloorCache(size, {"token": FILLER_TOKEN}, clock=clock)
    return await per_call_async(cache.get_token, FLOOR_SCOPE, runs=runs, budget=budget)


async def warm_aioentra(
    target: Json, size: int, runs: int, budget: float, telemetry: bool = False
) -> float:
    options: Json = {}
    if telemetry:
        from aioentra.otel import OpenTelemetry

        options["telemetry"] = OpenTelemetry()
    async with new_provider(target, **options) as provider:
        aioentra_fill(provider, filler_scopes(size - 1), token=FILLER_TOKEN)
        await provider.get_token(HIT_SCOPE)
        return await per_call_async(provider.get_token, HIT_SCOPE, runs=runs, budget=budget)


async def warm_identity(target: Json, size: int, runs: int, budget: float) -> float:
    async with identity_credential(target) as credential:
        identity_fill(credential, target, filler_scopes(size - 1), token=FILLER_TOKEN)
        await credential.get_token(HIT_SCOPE)
        return await per_call_async(credential.get_token, HIT_SCOPE, runs=runs, budget=budget)


async def warm_msal(target: Json, size: int, runs: int, budget: float, threaded: bool) -> float:
    client = await asyncio.to_thread(msal_app, target)
    try:
        msal_fill(client, target, filler_scopes(size - 1), token=FILLER_TOKEN)
        await asyncio.to_thread(client.acquire_token_for_client, [HIT_SCOPE])
        result = await asyncio.to_thread(client.acquire_token_for_client, [HIT_SCOPE])
        assert result["token_source"] == "cache", result.get("error")
        acquire = client.acquire_token_for_client
        if threaded:
            return await per_call_async(
                asyncio.to_thread, acquire, [HIT_SCOPE], runs=runs, budget=budget
            )
        return per_call_sync(acquire, [HIT_SCOPE], runs=runs, budget=budget)
    finally:
        client.http_client.close()


async def warm_oauth2(target: Json, size: int, runs: int, budget: float) -> float:
    grant = oauth2_grant(target)
    try:
        await grant.prepare_headers()  # fetches the token
        return await per_call_async(grant.prepare_headers, runs=runs, budget=budget)
    finally:
        await close_grant(grant)


async def warm_path(target: Json, runs: int, budget: float, path: str) -> float:
    """The paths Azure SDK clients take, warm (one cached token)."""
    if path == "floor":
        cache = FloorCache(1, {"token": FILLER_TOKEN}, clock=True)
        return await per_call_async(cache.get_token, FLOOR_SCOPE, runs=runs, budget=budget)
    if path.startswith("identity"):
        async with identity_credential(target) as credential:
            await credential.get_token_info(HIT_SCOPE)
            if path == "identity get_token_info":
                call: Any = functools.partial(credential.get_token_info, HIT_SCOPE)
            else:
                call = policy_call(bearer_policy(credential, HIT_SCOPE))
            await call()
            return await per_call_async(call, runs=runs, budget=budget)
    async with new_provider(target) as provider:
        await provider.get_token(HIT_SCOPE)
        adapter = provider.as_azure_credential()
        calls: dict[str, Any] = {
            "native": functools.partial(provider.get_token, HIT_SCOPE),
            "adapter get_token": functools.partial(adapter.get_token, HIT_SCOPE),
            "adapter get_token_info": functools.partial(adapter.get_token_info, HIT_SCOPE),
            "adapter policy": None,
        }
        call = calls[path]
        if call is None:
            call = policy_call(bearer_policy(adapter, HIT_SCOPE))
        await call()
        return await per_call_async(call, runs=runs, budget=budget)


async def cold(target: Json, callers: int, contender: str) -> float:
    """Seconds until ``callers`` concurrent first callers all hold a token."""
    scope = target["scope"]
    if contender == "aioentra" or contender == "aioentra policy":
        async with new_provider(target) as provider:
            if contender == "aioentra":
                calls = [provider.get_token(scope) for _ in range(callers)]
            else:
                policy = bearer_policy(provider.as_azure_credential(), scope)
                calls = [policy.on_request(pipeline_request()) for _ in range(callers)]
            started = time.perf_counter()
            await asyncio.gather(*calls)
            return time.perf_counter() - started
    if contender.startswith("identity"):
        async with identity_credential(target) as credential:
            if contender == "identity":
                calls = [credential.get_token(scope) for _ in range(callers)]
            else:
                policy = bearer_policy(credential, scope)
                calls = [policy.on_request(pipeline_request()) for _ in range(callers)]
            started = time.perf_counter()
            await asyncio.gather(*calls)
            return time.perf_counter() - started
    if contender == "oauth2":
        grant = oauth2_grant(target)
        try:
            started = time.perf_counter()
            await asyncio.gather(*(grant.prepare_headers() for _ in range(callers)))
            return time.perf_counter() - started
        finally:
            await close_grant(grant)
    client = await asyncio.to_thread(msal_app, target)  # its tenant discovery, not timed
    try:
        started = time.perf_counter()
        if contender == "msal threads":
            await asyncio.to_thread(_burst_threads, client, scope, callers)
        else:
            results = await asyncio.gather(
                *(
                    asyncio.to_thread(client.acquire_token_for_client, [scope])
                    for _ in range(callers)
                )
            )
            assert all("access_token" in r for r in results)
        return time.perf_counter() - started
    finally:
        client.http_client.close()


def _burst_threads(client: Any, scope: str, callers: int) -> None:
    """``callers`` threads released together, each calling acquire_token_for_client."""
    barrier = threading.Barrier(callers)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            result = client.acquire_token_for_client([scope])
            assert "access_token" in result, result.get("error")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# == parent side ==================================================================================

WARM_CONTENDERS = [
    Contender("floor: awaited dict lookup", "warm_floor", {"clock": False}),
    Contender("floor: awaited dict lookup + clock compare", "warm_floor", {"clock": True}),
    Contender("aioentra `await get_token`", "warm_aioentra", ours=True),
    Contender(
        "aioentra with `telemetry=OpenTelemetry()` (API only)",
        "warm_aioentra",
        {"telemetry": True},
        ours=True,
    ),
    Contender("azure-identity aio `await get_token`", "warm_identity"),
    Contender(
        "msal `acquire_token_for_client` (sync: blocks the loop)", "warm_msal", {"threaded": False}
    ),
    Contender("msal through `asyncio.to_thread`", "warm_msal", {"threaded": True}),
    Contender("aiohttp-oauth2-client `prepare_headers` (one token per grant)", "warm_oauth2"),
]
FLOOR = WARM_CONTENDERS[1].label
OURS = WARM_CONTENDERS[2].label

PATHS = [
    ("floor: awaited dict lookup + clock compare", "floor", False),
    ("aioentra `await get_token` (native)", "native", True),
    ("aioentra `as_azure_credential().get_token`", "adapter get_token", True),
    ("aioentra `as_azure_credential().get_token_info`", "adapter get_token_info", True),
    ("azure-core bearer policy `on_request` over `as_azure_credential()`", "adapter policy", True),
    ("azure-identity aio `get_token_info`", "identity get_token_info", False),
    (
        "azure-core bearer policy `on_request` over azure-identity (token held)",
        "identity policy",
        False,
    ),
]


async def warm_section(ctx: Context) -> Section:
    sizes = [1, 100] if ctx.quick else [1, 100, 10_000]
    rounds = 3 if ctx.quick else 5
    runs, budget = (3, 0.03) if ctx.quick else (3, 0.1)
    async with emulator() as emu, ctx.pool("bench_provider") as pool:
        api = emu.add_api(HIT_URI)
        target = target_for(emu, new_app(emu, api, "bench-warm"), HIT_SCOPE)
        by_size: dict[int, dict[str, list[Any]]] = {}
        for size in sizes:
            contenders = [c for c in WARM_CONTENDERS if size == 1 or c.function != "warm_oauth2"]
            by_size[size] = await pool.rounds(
                contenders,
                rounds,
                args={"target": target, "size": size, "runs": runs, "budget": budget},
            )
        paths = await pool.rounds(
            [
                Contender(label, "warm_path", {"path": path}, ours=ours)
                for label, path, ours in PATHS
            ],
            rounds,
            args={"target": target, "runs": runs, "budget": budget},
        )
    labels = list(by_size[sizes[0]])

    def value(label: str, size: int) -> float | None:
        return median(ok(by_size[size].get(label, [])))

    rows = []
    for label in labels:
        cells = []
        for size in sizes:
            samples = by_size[size].get(label)
            if samples is None:
                cells.append("—")
            else:
                cells.append(failure(samples) or fmt(median(ok(samples))))
        vs_ours = " / ".join(fmt_ratio(ratio(value(label, s), value(OURS, s))) for s in sizes)
        vs_floor = " / ".join(fmt_ratio(ratio(value(label, s), value(FLOOR, s))) for s in sizes)
        rows.append([label, *cells, vs_ours, vs_floor])
    size_names = [f"{s:,} cached" for s in sizes]
    warm = Table(
        [
            "contender",
            *(f"µs per call, {n}" for n in size_names),
            f"÷ aioentra ({' / '.join(f'{s:,}' for s in sizes)})",
            f"÷ floor + clock ({' / '.join(f'{s:,}' for s in sizes)})",
        ],
        rows,
        title="Warm `get_token` (µs per call, median over rounds; lower is better)",
    )
    path_values = {label: median(ok(samples)) for label, samples in paths.items()}
    native = path_values[PATHS[1][0]]
    path_rows = [
        [
            label,
            failure(samples) or fmt(path_values[label]),
            fmt_ratio(ratio(path_values[label], native)),
        ]
        for label, samples in paths.items()
    ]
    adapter = Table(
        ["path (one cached token)", "µs per call", "÷ native `get_token`"],
        path_rows,
        title="The paths of Azure SDK clients (`as_azure_credential()`, azure-core's policy)",
    )
    checks = []
    for label in [OURS] + ([f"{OURS} @ {ctx.baseline.label}"] if ctx.baseline else []):
        for size in sizes:
            r = paired_ratio(by_size[size][label], by_size[size][FLOOR])
            checks.append(
                Check(
                    f"warm hit within {WARM_TARGET}{TIMES} of the floor, {size:,} cached"
                    + ("" if label == OURS else f" ({label.split(' @ ')[1]})"),
                    fmt_ratio(r),
                    f"≤ {WARM_TARGET}{TIMES}",
                    None if r is None else r <= WARM_TARGET,
                )
            )
    for label in [PATHS[3][0]] + (
        [f"{PATHS[3][0]} @ {ctx.baseline.label}"] if ctx.baseline else []
    ):
        r = paired_ratio(paths[label], paths[label.replace(PATHS[3][0], PATHS[1][0])])
        checks.append(
            Check(
                f"`as_azure_credential().get_token_info` within {ADAPTER_TARGET}{TIMES} of native"
                + ("" if " @ " not in label else f" ({label.split(' @ ')[1]})"),
                fmt_ratio(r),
                f"≤ {ADAPTER_TARGET}{TIMES}",
                None if r is None else r <= ADAPTER_TARGET,
            )
        )
    method = (
        f"{rounds} interleaved rounds per cache size; in each round every contender runs "
        f"{runs} timed runs of up to {budget:g} s after a warm-up, in its own worker process "
        "(one process per tree), and the round's figure is their median. The hit token is a "
        "real one from the emulator; the other cached tokens are written into each library's "
        "cache the way that library stores a response (aioentra's single-flight cell, "
        "azure-identity's and msal's `TokenCache.add` event), with the hit key inserted last. "
        "The floor is an `async def` returning a dict value, awaited (and, in the second row, "
        "checking `time.monotonic()` against the stored deadline first): what any async cache "
        "must at least do. aiohttp-oauth2-client holds one token per grant object, so only "
        "its one-token figure applies. The policy rows call `on_request` on one reused "
        "request; the policy holds its token (azure-identity's) or asks the adapter when its "
        "`refresh_on` has passed. The targets compare the median over rounds of the ratio "
        "in each round (both measured back to back), which the machine's load disturbs less "
        "than a ratio of medians."
    )
    return Section("warm", "1. Warm `get_token`", method, [warm, adapter], checks)


COLD_CONTENDERS = [
    Contender("aioentra", "cold", {"contender": "aioentra"}, ours=True),
    Contender("azure-identity aio", "cold", {"contender": "identity"}),
    Contender(
        "azure-identity aio behind azure-core's bearer policy",
        "cold",
        {"contender": "identity policy"},
    ),
    Contender(
        "aioentra behind azure-core's bearer policy (`as_azure_credential()`)",
        "cold",
        {"contender": "aioentra policy"},
        ours=True,
    ),
    Contender("msal, one thread per caller", "cold", {"contender": "msal threads"}),
    Contender("msal through `asyncio.to_thread`", "cold", {"contender": "msal to_thread"}),
    Contender("aiohttp-oauth2-client (one grant)", "cold", {"contender": "oauth2"}),
]


async def cold_section(ctx: Context) -> Section:
    bursts = [1, 10, 100] if ctx.quick else [1, 10, 100, 1000]
    rounds = 1 if ctx.quick else 3
    results: dict[int, dict[str, list[Any]]] = {}
    async with emulator() as emu, ctx.pool("bench_provider") as pool:
        api = emu.add_api(HIT_URI)
        apps: dict[tuple[str, int], str] = {}

        async def before(contender: Contender, index: int) -> Json:
            app = new_app(emu, api, "bench-cold", latency=0.05)
            apps[(contender.label, index)] = app.client_id
            return {"target": target_for(emu, app, HIT_SCOPE)}

        async def after(contender: Contender, index: int, wall: float) -> Json:
            return {"wall": wall, "requests": token_requests(emu, apps[(contender.label, index)])}

        for callers in bursts:
            results[callers] = await pool.rounds(
                COLD_CONTENDERS,
                rounds,
                args={"callers": callers},
                timeout=180,
                before=before,
                after=after,
            )
    labels = list(results[bursts[0]])
    top = bursts[-1]

    def figure(label: str, callers: int, key: str) -> float | None:
        return median([s[key] for s in ok(results[callers][label])])

    rows = []
    for label in labels:
        cells = []
        for callers in bursts:
            samples = results[callers][label]
            bad = failure(samples)
            if bad:
                cells.append(bad)
            else:
                requests = figure(label, callers, "requests")
                wall = figure(label, callers, "wall")
                cells.append(
                    f"{fmt(requests, 0)} · {fmt(None if wall is None else wall * 1e3, 0)} ms"
                )
        reqs = ratio(
            figure(label, top, "requests"), figure(COLD_CONTENDERS[0].label, top, "requests")
        )
        wall = ratio(figure(label, top, "wall"), figure(COLD_CONTENDERS[0].label, top, "wall"))
        rows.append([label, *cells, f"{fmt_ratio(reqs)} · {fmt_ratio(wall)}"])
    table = Table(
        [
            "contender",
            *(f"{callers_label(n)}: requests · wall" for n in bursts),
            f"÷ aioentra at {top:,}: requests · wall",
        ],
        rows,
        title="Cold burst (token requests the server received · wall time until every caller "
        "has a token; median over rounds)",
    )
    checks = []
    for label in [c.label for c in pool.expand(COLD_CONTENDERS) if c.ours]:
        worst = max(
            (figure(label, n, "requests") or 0 for n in bursts if ok(results[n][label])),
            default=None,
        )
        checks.append(
            Check(
                f"1 token request per key, any burst ({label})",
                fmt(worst, 0),
                "1",
                None if worst is None else worst == 1,
            )
        )
    method = (
        f"{rounds} round(s); each contender and burst size uses a new app (its own client id) "
        "so that the emulator's request log counts its token requests, with 50 ms of latency on "
        "that app's token endpoint so that the callers overlap. The wall time runs from "
        "releasing the callers to the last token; msal's client is built (its tenant discovery) "
        "before that. aioentra starts its engine (the tenant discovery) inside the first "
        "request, so its wall time includes that. `asyncio.to_thread` uses the default "
        "executor's threads, so at most that many msal calls are in flight."
    )
    return Section("cold", "2. Cold bursts", method, [table], checks)


SECTIONS = [warm_section, cold_section]

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(run_alone(SECTIONS, __file__, __doc__))
