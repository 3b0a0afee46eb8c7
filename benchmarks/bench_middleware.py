"""What the bearer middleware costs per request, on loopback HTTPS.

Three sessions send the same GETs to a minimal aiohttp.web server over TLS:

* ``static``  - no middleware, a fixed ``Authorization`` header (the floor);
* ``noop``    - a pass-through middleware (what aiohttp's middleware machinery costs);
* ``bearer``  - :class:`aioentra.aiohttp.BearerTokenMiddleware` over a real
  :class:`aioentra.TokenProvider` holding a warm token from the emulator.

Runs are interleaved in rounds (one run per arm, in a shuffled order) so that drift and
neighbours' load hit every arm alike. Per arm the table gives the median over rounds of the
mean time per request; the overhead is the median over rounds of the paired ratio
``arm / static`` in the same round, with its interquartile range. Sequential runs send one
request at a time; concurrent runs send batches of ``CONCURRENCY`` with ``asyncio.gather``.

A second, network-free measurement calls the middleware itself with a stub handler, to
give its own CPU cost per request in microseconds.

    python benchmarks/bench_middleware.py            # writes benchmarks/results/middleware.md
"""

from __future__ import annotations

import asyncio
import gc
import platform
import random
import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import trustme
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, web
from yarl import URL

from aioentra import ClientSecret, TokenProvider
from aioentra.aiohttp import BearerTokenMiddleware
from aioentra.emulator import Emulator

ROUNDS = 41
REQUESTS_PER_RUN = 100
CONCURRENCY = 50
RESULTS = Path(__file__).parent / "results" / "middleware.md"


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _noop(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    return await handler(request)


async def _get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    async with session.get(url, headers=headers) as response:
        await response.read()


async def _sequential(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS_PER_RUN):
        await _get(session, url, headers)
    return (time.perf_counter() - started) / REQUESTS_PER_RUN


async def _concurrent(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS_PER_RUN // CONCURRENCY):
        await asyncio.gather(*(_get(session, url, headers) for _ in range(CONCURRENCY)))
    return (time.perf_counter() - started) / REQUESTS_PER_RUN


Run = Callable[[aiohttp.ClientSession, str, dict[str, str]], Awaitable[float]]


async def _measure(
    run: Run, arms: dict[str, tuple[aiohttp.ClientSession, dict[str, str]]], url: str
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for session, headers in arms.values():  # warm up: connections, TLS sessions, caches
        await run(session, url, headers)
    rng = random.Random(1)
    for _ in range(ROUNDS):
        order = list(arms)
        rng.shuffle(order)
        for name in order:
            session, headers = arms[name]
            gc.collect()
            samples[name].append(await run(session, url, headers))
    return samples


def _table(title: str, samples: dict[str, list[float]]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| arm | median µs / request | min µs | overhead vs static (median of paired runs) "
        "| interquartile range |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        median = statistics.median(values)
        if name == "static":
            delta = spread = "—"
        else:
            ratios = [(a / b - 1) * 100 for a, b in zip(values, samples["static"], strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            delta = f"{statistics.median(ratios):+.1f}%"
            spread = f"{q1:+.1f}% … {q3:+.1f}%"
        lines.append(
            f"| {name} | {median * 1e6:.1f} | {min(values) * 1e6:.1f} | {delta} | {spread} |"
        )
    return [*lines, ""]


class _StubResponse:
    status = 200


async def _stub_handler(request: ClientRequest) -> ClientResponse:
    return _StubResponse()  # type: ignore[return-value]


async def _middleware_cpu(bearer: BearerTokenMiddleware, url: str, token: str) -> dict[str, float]:
    """Microseconds per call of each arm's client-side work, with no network."""
    request = ClientRequest("GET", URL(url), loop=asyncio.get_running_loop())

    async def static(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        request.headers["Authorization"] = token
        return await handler(request)

    calls = 50_000
    arms: dict[str, Callable[[ClientRequest, ClientHandlerType], Awaitable[ClientResponse]]] = {
        "static": static,
        "noop": _noop,
        "bearer": bearer,
    }
    best = {name: float("inf") for name in arms}
    for _ in range(5):
        for name, middleware in arms.items():
            started = time.perf_counter()
            for _ in range(calls):
                await middleware(request, _stub_handler)
            best[name] = min(best[name], (time.perf_counter() - started) / calls)
    return best


async def main() -> str:
    tls = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.issue_cert("127.0.0.1").configure_cert(server_ctx)
    app = web.Application()
    app.router.add_get("/items", _ok)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    origin = f"https://127.0.0.1:{port}"
    url = f"{origin}/items"

    async with Emulator() as emu:
        api = emu.add_api("api://bench", roles=["Bench.Read"])
        daemon = emu.add_app("bench")
        emu.grant(daemon, api, ["Bench.Read"])
        scope = "api://bench/.default"
        async with TokenProvider(
            ClientSecret(daemon.secret or ""),
            tenant_id=emu.tenant_id,
            client_id=daemon.client_id,
            authority=emu.base_url,
            ca_file=emu.ca_file,
        ) as provider:
            token = await provider.get_token(scope)  # warm
            bearer = BearerTokenMiddleware(provider, {origin: scope})
            sessions: list[aiohttp.ClientSession] = []

            def session(*middlewares: object) -> aiohttp.ClientSession:
                client_ctx = ssl.create_default_context()
                tls.configure_trust(client_ctx)
                new = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=client_ctx, limit=CONCURRENCY),
                    middlewares=middlewares,  # type: ignore[arg-type]
                )
                sessions.append(new)
                return new

            arms = {
                "static": (session(), {"Authorization": token.authorization}),
                "noop": (session(_noop), {"Authorization": token.authorization}),
                "bearer": (session(bearer), {}),
            }
            try:
                cpu = await _middleware_cpu(bearer, url, token.authorization)
                sequential = await _measure(_sequential, arms, url)
                concurrent = await _measure(_concurrent, arms, url)
            finally:
                for each in sessions:
                    await each.close()
    await runner.cleanup()

    lines = [
        "# aiohttp bearer middleware overhead",
        "",
        f"Loopback HTTPS GET, {ROUNDS} interleaved runs of {REQUESTS_PER_RUN} requests per arm; "
        f"concurrent runs send batches of {CONCURRENCY}. Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {platform.machine()}.",
        "Generated by `python benchmarks/bench_middleware.py`.",
        "",
        *_table("Sequential", sequential),
        *_table(f"Concurrent ({CONCURRENCY} in flight)", concurrent),
        "### The middleware's own CPU cost (stub handler, no network)",
        "",
        "| arm | µs / call | as % of a sequential static request |",
        "|---|---:|---:|",
        *(
            f"| {name} | {value * 1e6:.2f} | "
            f"{value / statistics.median(sequential['static']) * 100:.2f}% |"
            for name, value in cpu.items()
        ),
        "",
        "`static` here sets the header in a middleware; the difference `bearer - static` is what "
        "the scope lookup, the warm `get_token()` call and the header clean-up add.",
        "",
        "`static` sends a fixed Authorization header without middleware; `noop` adds a "
        "pass-through middleware (aiohttp's own per-middleware cost); `bearer` is "
        "BearerTokenMiddleware with a warm TokenProvider.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    report = asyncio.run(main())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
