"""Token provider benchmarks: aioentra side by side with azure-identity (aio) and msal.

Two measurements, all three libraries in the same run, against the same local
emulator (HTTPS on loopback):

1. **warm get_token**: microseconds per call when the token is cached, with 1,
   100 and 10,000 tokens in the cache (the hit key inserted last, the worst
   case for a linear scan). Extra tokens are written into each library's cache
   the way the library itself stores them; the hit token is a real one.
2. **cold burst**: token requests the server receives when N callers (1, 10,
   100, 1,000) ask at once on an empty cache, with 50 ms of server latency.

Run: ``python benchmarks/bench_provider.py`` (about a minute). Results are printed
and written to ``benchmarks/results/provider.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import azure.identity
import msal
import requests
from azure.identity.aio import ClientSecretCredential

import aioentra
from aioentra import ClientSecret, TokenProvider
from aioentra._flight import FetchReason
from aioentra._token import TokenResponse
from aioentra.emulator import App, Emulator, Fault

RESULTS = Path(__file__).parent / "results" / "provider.md"
HIT_URI = "api://bench-hit"
HIT_SCOPE = f"{HIT_URI}/.default"


def filler_scopes(count: int) -> list[str]:
    return [f"api://bench-filler-{i}/.default" for i in range(count)]


# -- timing ------------------------------------------------------------------------------------


async def time_async(call: Callable[[], Awaitable[Any]], budget: float, max_calls: int) -> float:
    """Median microseconds per call over 7 runs, each up to ``budget`` s or ``max_calls`` calls."""
    for _ in range(min(200, max_calls)):
        await call()
    runs = []
    for _ in range(7):
        calls = 0
        start = time.perf_counter()
        deadline = start + budget
        while calls < max_calls:
            await call()
            calls += 1
            if calls % 16 == 0 and time.perf_counter() > deadline:
                break
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def time_sync(call: Callable[[], Any], budget: float, max_calls: int) -> float:
    for _ in range(min(200, max_calls)):
        call()
    runs = []
    for _ in range(7):
        calls = 0
        start = time.perf_counter()
        deadline = start + budget
        while calls < max_calls:
            call()
            calls += 1
            if calls % 16 == 0 and time.perf_counter() > deadline:
                break
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


# -- the three contenders ----------------------------------------------------------------------


def msal_app(emu: Emulator, app: App) -> Any:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=
    session.verify = emu.ca_file
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.secret,
        authority=emu.authority,
        instance_discovery=False,
        http_client=session,
    )


def msal_fill(client: Any, emu: Emulator, app: App, scopes: list[str]) -> None:
    now = int(time.time())
    for scope in scopes:
        client.token_cache.add(
            {
                "client_id": app.client_id,
                "scope": [scope],
                "token_endpoint": emu.token_endpoint,
                "response": {"access_token": "x" * 900, "expires_in": 3599, "token_type": "Bearer"},
            },
            now=now,
        )


def identity_credential(emu: Emulator, app: App) -> ClientSecretCredential:
    return ClientSecretCredential(
        emu.tenant_id,
        app.client_id,
        app.secret or "",
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    )


def identity_fill(credential: ClientSecretCredential, emu: Emulator, scopes: list[str]) -> None:
    client = credential._client  # the credential's AadClient: fill its cache the way it does
    cache = client._get_cache()
    now = int(time.time())
    for scope in scopes:
        cache.add(
            event={
                "client_id": client._get_cache_client_id(),
                "response": {"access_token": "x" * 900, "expires_in": 3599, "token_type": "Bearer"},
                "scope": [scope],
                "token_endpoint": emu.token_endpoint,
            },
            now=now,
        )


def aioentra_fill(provider: TokenProvider, scopes: list[str]) -> None:
    """Store tokens exactly as a successful request does (``_fetched`` + the cell's ``put``)."""
    clock = provider._clock
    for scope in scopes:
        response = TokenResponse(access_token="x" * 900, expires_in=3599)
        fetched = provider._fetched(
            scope, response, FetchReason.COLD, clock.monotonic(), clock.time()
        )
        provider._flight.put(scope, fetched)


def new_provider(emu: Emulator, app: App, **options: Any) -> TokenProvider:
    return TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        authority=emu.base_url,
        ca_file=emu.ca_file,
        **options,
    )


# -- 1. warm get_token -------------------------------------------------------------------------


async def bench_warm(emu: Emulator, sizes: list[int], budget: float) -> list[list[str]]:
    rows = []
    for size in sizes:
        fillers = filler_scopes(size - 1)
        app = emu.add_app("bench-warm")
        emu.grant(app, emu_api(emu), [])

        async with new_provider(emu, app) as provider:
            aioentra_fill(provider, fillers)
            await provider.get_token(HIT_SCOPE)
            ours = await time_async(lambda: provider.get_token(HIT_SCOPE), budget, 20_000)
            # OpenTelemetry is installed in this environment, not enabled: a provider without
            # telemetry= never imports it (tests/test_package.py checks that).

        # telemetry= with the OpenTelemetry API alone (no SDK): the counting warm path.
        from aioentra.otel import OpenTelemetry

        async with new_provider(emu, app, telemetry=OpenTelemetry()) as provider:
            aioentra_fill(provider, fillers)
            await provider.get_token(HIT_SCOPE)
            counted = await time_async(lambda: provider.get_token(HIT_SCOPE), budget, 20_000)

        async with identity_credential(emu, app) as credential:
            identity_fill(credential, emu, fillers)
            await credential.get_token(HIT_SCOPE)
            before = emu.requests.count(endpoint="token", client_id=app.client_id)
            theirs = await time_async(lambda: credential.get_token(HIT_SCOPE), budget, 20_000)
            assert emu.requests.count(endpoint="token", client_id=app.client_id) == before

        # msal's constructor does tenant discovery: off the loop that serves the emulator.
        client = await asyncio.to_thread(msal_app, emu, app)
        msal_fill(client, emu, app, fillers)
        await asyncio.to_thread(client.acquire_token_for_client, [HIT_SCOPE])
        result = await asyncio.to_thread(client.acquire_token_for_client, [HIT_SCOPE])
        assert result["token_source"] == "cache"
        acquire = client.acquire_token_for_client
        sync_msal = time_sync(functools.partial(acquire, [HIT_SCOPE]), budget, 20_000)
        threaded_msal = await time_async(
            functools.partial(asyncio.to_thread, acquire, [HIT_SCOPE]),
            budget,
            20_000,
        )
        client.http_client.close()
        rows.append(
            [
                f"{size:,}",
                f"{ours:.2f}",
                f"{counted:.2f}",
                f"{theirs:.2f}",
                f"{sync_msal:.2f}",
                f"{threaded_msal:.2f}",
            ]
        )
        print("warm", rows[-1], flush=True)
    return rows


# -- 2. cold burst -----------------------------------------------------------------------------


async def bench_cold(emu: Emulator, bursts: list[int]) -> list[list[str]]:
    rows = []
    for callers in bursts:
        counts = []
        for contender in ("aioentra", "azure-identity", "msal"):
            app = emu.add_app(f"bench-cold-{contender}")
            emu.grant(app, emu_api(emu), [])
            emu.faults.add(
                Fault(
                    endpoint="token",
                    kind="latency",
                    delay=0.05,
                    count=None,
                    client_id=app.client_id,
                )
            )
            if contender == "aioentra":
                async with new_provider(emu, app) as provider:
                    await asyncio.gather(*(provider.get_token(HIT_SCOPE) for _ in range(callers)))
            elif contender == "azure-identity":
                async with identity_credential(emu, app) as credential:
                    await asyncio.gather(*(credential.get_token(HIT_SCOPE) for _ in range(callers)))
            else:
                client = await asyncio.to_thread(msal_app, emu, app)
                await asyncio.to_thread(burst_threads, client, callers)
                client.http_client.close()
            counts.append(emu.requests.count(endpoint="token", client_id=app.client_id))
        emu.faults.clear()
        rows.append([f"{callers:,}", *(f"{c:,}" for c in counts)])
        print("cold", rows[-1], flush=True)
    return rows


def burst_threads(client: Any, callers: int) -> None:
    """``callers`` threads released together, each calling acquire_token_for_client."""
    barrier = threading.Barrier(callers)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            client.acquire_token_for_client([HIT_SCOPE])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


_APIS: dict[int, Any] = {}


def emu_api(emu: Emulator) -> Any:
    return _APIS[id(emu)]


# -- report ------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    sizes = [1, 100] if args.quick else [1, 100, 10_000]
    bursts = [1, 10] if args.quick else [1, 10, 100, 1000]
    budget = 0.05 if args.quick else 0.25
    async with Emulator() as emu:
        _APIS[id(emu)] = emu.add_api(HIT_URI)
        warm = await bench_warm(emu, sizes, budget)
        cold = await bench_cold(emu, bursts)
    environment = (
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"aioentra {aioentra.__version__}, azure-identity {azure.identity.__version__}, "
        f"msal {msal.__version__}, aiohttp {aiohttp.__version__}"
    )
    report = "\n\n".join(
        [
            "# Token provider benchmarks",
            f"Generated by `python benchmarks/bench_provider.py`. {environment}.",
            "## Warm `get_token` (µs per call, median of 7 runs; lower is better)",
            table(
                [
                    "cached tokens",
                    "aioentra `await get_token`",
                    "aioentra with `telemetry=OpenTelemetry()` (API only)",
                    "azure-identity aio `await get_token`",
                    "msal `acquire_token_for_client` (sync, blocks the loop)",
                    "msal via `asyncio.to_thread`",
                ],
                warm,
            ),
            "## Cold burst (token requests the server received; 50 ms server latency)",
            table(["concurrent callers", "aioentra", "azure-identity aio", "msal (threads)"], cold),
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
