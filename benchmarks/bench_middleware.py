"""What the bearer middleware costs per request, on loopback HTTPS and on the CPU.

Three sessions send the same GETs to a minimal aiohttp.web server over TLS:

* ``static``  - no middleware, a fixed ``Authorization`` header (the floor);
* ``noop``    - a pass-through middleware (what aiohttp's middleware machinery costs);
* ``bearer``  - :class:`aioentra.aiohttp.BearerTokenMiddleware` over a real
  :class:`aioentra.TokenProvider` holding a warm token from the emulator.

Runs are interleaved in rounds (one run per arm, in a shuffled order) so that drift and
neighbours' load hit every arm alike. Per arm the table gives the median over rounds of the
mean time per request and of requests per second, with the interquartile range over rounds;
the overhead is the median over rounds of the paired ratio ``arm / static`` in the same
round. Sequential runs send one request at a time; concurrent runs send batches of
``CONCURRENCY`` with ``asyncio.gather``.

A second, network-free measurement calls each middleware itself with a stub handler (the
``static`` arm there is a middleware that sets a fixed header), in interleaved rounds timed
with the process's CPU clock: the middleware's own CPU cost per request, and the median over
rounds of ``bearer - static`` in nanoseconds.

With ``--callgrind`` the same stub calls also run under ``valgrind --tool=callgrind``, one
process per arm and call count; instructions per request are the difference between two
call counts divided by the difference in calls (so start-up cancels out). Instruction counts
do not move with the machine's load.

    python benchmarks/bench_middleware.py              # writes benchmarks/results/middleware.md
    python benchmarks/bench_middleware.py --callgrind  # adds instructions (needs valgrind)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import os
import platform
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import trustme
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, web
from yarl import URL

from aioentra import AccessToken, ClientSecret, TokenProvider
from aioentra.aiohttp import BearerTokenMiddleware
from aioentra.emulator import Emulator

ROUNDS = 41
REQUESTS_PER_RUN = 100
CONCURRENCY = 50
CPU_ROUNDS = 31
CPU_CALLS = 20_000
CALLGRIND_CALLS = (5_000, 25_000)
RESULTS = Path(__file__).parent / "results" / "middleware.md"

Middleware = Callable[[ClientRequest, ClientHandlerType], Awaitable[ClientResponse]]


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


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, statistics.median(values), q3


def _table(title: str, samples: dict[str, list[float]]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| arm | median µs / request | requests/s (median) | requests/s interquartile range "
        "| overhead vs static (median of paired runs) | its interquartile range |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        rate_q1, rate, rate_q3 = _quartiles([1 / value for value in values])
        if name == "static":
            delta = spread = "—"
        else:
            ratios = [(a / b - 1) * 100 for a, b in zip(values, samples["static"], strict=True)]
            q1, median, q3 = _quartiles(ratios)
            delta = f"{median:+.1f}%"
            spread = f"{q1:+.1f}% … {q3:+.1f}%"
        lines.append(
            f"| {name} | {statistics.median(values) * 1e6:.1f} | {rate:,.0f} "
            f"| {rate_q1:,.0f} … {rate_q3:,.0f} | {delta} | {spread} |"
        )
    return [*lines, ""]


class _StubResponse:
    status = 200


async def _stub_handler(request: ClientRequest) -> ClientResponse:
    return _StubResponse()  # type: ignore[return-value]


def _stub_arms(bearer: BearerTokenMiddleware, token: AccessToken) -> dict[str, Middleware]:
    value = token.authorization

    async def static(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        request.headers["Authorization"] = value
        return await handler(request)

    return {"static": static, "noop": _noop, "bearer": bearer}


def _stub_request(url: str) -> ClientRequest:
    """A request as a session hands it to its middlewares (``scheme`` read, Host set)."""
    parsed = URL(url)
    assert parsed.scheme == "https"  # aiohttp's session reads it before building the request
    return ClientRequest("GET", parsed, loop=asyncio.get_running_loop())


async def _stub_calls(middleware: Middleware, request: ClientRequest, calls: int) -> None:
    for _ in range(calls):
        await middleware(request, _stub_handler)


async def _middleware_cpu(arms: dict[str, Middleware], url: str) -> dict[str, list[float]]:
    """Seconds of CPU per call of each arm's client-side work, per round, with no network."""
    request = _stub_request(url)
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for middleware in arms.values():  # warm up
        await _stub_calls(middleware, request, CPU_CALLS)
    rng = random.Random(2)
    for _ in range(CPU_ROUNDS):
        order = list(arms)
        rng.shuffle(order)
        for name in order:
            gc.collect()
            started = time.process_time_ns()
            await _stub_calls(arms[name], request, CPU_CALLS)
            samples[name].append((time.process_time_ns() - started) / CPU_CALLS / 1e9)
    return samples


def _cpu_table(samples: dict[str, list[float]], sequential_static: float) -> list[str]:
    lines = [
        "### The middleware's own CPU cost (stub handler, no network)",
        "",
        f"{CPU_ROUNDS} interleaved rounds of {CPU_CALLS:,} calls per arm, process CPU time.",
        "",
        "| arm | ns / call (median) | interquartile range | above static, ns "
        "(median of paired rounds) | its interquartile range | as % of a sequential "
        "static request |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in samples.items():
        q1, median, q3 = _quartiles(values)
        if name == "static":
            delta = spread = "—"
        else:
            diffs = [(a - b) * 1e9 for a, b in zip(values, samples["static"], strict=True)]
            d1, dm, d3 = _quartiles(diffs)
            delta, spread = f"{dm:+.0f}", f"{d1:+.0f} … {d3:+.0f}"
        lines.append(
            f"| {name} | {median * 1e9:.0f} | {q1 * 1e9:.0f} … {q3 * 1e9:.0f} | {delta} "
            f"| {spread} | {median / sequential_static * 100:.2f}% |"
        )
    return [*lines, ""]


@dataclass
class _Fixture:
    provider: TokenProvider
    token: AccessToken
    bearer: BearerTokenMiddleware
    tls: trustme.CA
    origin: str
    url: str


@contextlib.asynccontextmanager
async def _fixture() -> AsyncIterator[_Fixture]:
    """A TLS server on loopback and a provider holding a warm token for its origin."""
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
    try:
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
                yield _Fixture(provider, token, bearer, tls, origin, f"{origin}/items")
    finally:
        await runner.cleanup()


async def _stub_only(arm: str, calls: int) -> None:
    """The ``--stub`` child: ``calls`` stub calls of one arm, inside ``functools.reduce``.

    Callgrind counts only inside that C function (``--toggle-collect``): the calls, driven
    by one ``send`` (nothing in them suspends), without the start-up around them.
    """
    async with _fixture() as fx:
        middleware = _stub_arms(fx.bearer, fx.token)[arm]
        request = _stub_request(fx.url)

        def drive(_: None, __: int) -> None:
            calls_done = _stub_calls(middleware, request, calls)
            try:
                calls_done.send(None)
            except StopIteration:
                return
            raise RuntimeError(f"the {arm} middleware suspended with a warm token")

        gc.collect()
        functools.reduce(drive, [0], None)


_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _instructions(arms: list[str]) -> dict[str, float]:
    """Instructions per stub call of each arm, from callgrind runs at two call counts."""
    low, high = CALLGRIND_CALLS
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for arm in arms:
            totals = []
            for calls in (low, high):
                out = Path(folder) / f"{arm}-{calls}.out"
                subprocess.run(
                    [
                        "valgrind",
                        "--tool=callgrind",
                        "--collect-atstart=no",
                        "--toggle-collect=functools_reduce",
                        f"--callgrind-out-file={out}",
                        sys.executable,
                        __file__,
                        "--stub",
                        arm,
                        str(calls),
                    ],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                found = _TOTAL.search(out.read_text(encoding="utf-8", errors="replace"))
                assert found is not None, "no totals in the callgrind output"
                totals.append(int(found.group(1)))
            counts[arm] = (totals[1] - totals[0]) / (high - low)
    return counts


def _instructions_table(counts: dict[str, float]) -> list[str]:
    low, high = CALLGRIND_CALLS
    return [
        "### Instructions per stub call (callgrind)",
        "",
        f"`valgrind --tool=callgrind`, one process per arm at {low:,} and {high:,} calls, "
        "counting only inside the loop of calls; instructions per call = the difference of "
        "the totals / the difference of the calls.",
        "",
        "| arm | instructions / call | above static | ratio to static |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {value:,.0f} | "
            + ("—" if name == "static" else f"{value - counts['static']:+,.0f}")
            + f" | {value / counts['static']:.2f} |"
            for name, value in counts.items()
        ),
        "",
    ]


async def main(callgrind: bool) -> str:
    async with _fixture() as fx:
        sessions: list[aiohttp.ClientSession] = []

        def session(*middlewares: object) -> aiohttp.ClientSession:
            client_ctx = ssl.create_default_context()
            fx.tls.configure_trust(client_ctx)
            new = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_ctx, limit=CONCURRENCY),
                middlewares=middlewares,  # type: ignore[arg-type]
            )
            sessions.append(new)
            return new

        header = {"Authorization": fx.token.authorization}
        arms = {
            "static": (session(), header),
            "noop": (session(_noop), header),
            "bearer": (session(fx.bearer), {}),
        }
        try:
            cpu = await _middleware_cpu(_stub_arms(fx.bearer, fx.token), fx.url)
            sequential = await _measure(_sequential, arms, fx.url)
            concurrent = await _measure(_concurrent, arms, fx.url)
        finally:
            for each in sessions:
                await each.close()

    counts = _instructions(["static", "bearer"]) if callgrind else None
    lines = [
        "# aiohttp bearer middleware overhead",
        "",
        f"Loopback HTTPS GET, {ROUNDS} interleaved runs of {REQUESTS_PER_RUN} requests per arm; "
        f"concurrent runs send batches of {CONCURRENCY}. Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {platform.machine()}.",
        "Generated by `python benchmarks/bench_middleware.py"
        + (" --callgrind`." if callgrind else "`."),
        "",
        *_table("Sequential", sequential),
        *_table(f"Concurrent ({CONCURRENCY} in flight)", concurrent),
        *_cpu_table(cpu, statistics.median(sequential["static"])),
        *(_instructions_table(counts) if counts is not None else []),
        "`static` sends a fixed Authorization header (without middleware over the network, from "
        "a middleware in the stub runs); `noop` adds a pass-through middleware (aiohttp's own "
        "per-middleware cost); `bearer` is BearerTokenMiddleware with a warm TokenProvider. "
        "`bearer - static` in the stub runs is what the origin lookup, the warm token and the "
        "header clean-up add. The stub runs reuse one request; the middleware reads nothing "
        "from its URL that a new request would not have ready (the scheme and netloc yarl "
        "keeps in slots).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--stub", nargs=2, metavar=("ARM", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_stub_only(args.stub[0], int(args.stub[1])))
        sys.exit(0)
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind on PATH")
    report = asyncio.run(main(args.callgrind))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
