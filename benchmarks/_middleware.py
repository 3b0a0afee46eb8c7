"""The middleware section of ``run.py``, built on ``bench_middleware.py``'s measurements.

``bench_middleware.py`` measures aioentra's bearer middleware against a static header (and
runs alone, with callgrind). This module calls its functions in worker processes (one per
tree, so a baseline revision's middleware is measured in the same run) and adds
aiohttp-oauth2-client's middleware, holding a warm token, as another arm.
"""

from __future__ import annotations

import ssl
import statistics
from typing import Any

import aiohttp

import bench_middleware as bm
from _common import Check, Contender, Context, Json, Section, Table, failure, fmt, ok, quartiles

MIDDLEWARE_TARGET_NS = 1000.0
OAUTH2 = "aiohttp-oauth2-client"


# == worker side ===================================================================================


async def middleware_round(cpu_rounds: int, rounds: int, oauth2: bool) -> Json:
    """One interleaved measurement of every arm (bench_middleware's), as lists of samples."""
    bm.CPU_ROUNDS, bm.ROUNDS = cpu_rounds, rounds
    async with bm._fixture() as fx:
        stub = dict(bm._stub_arms(fx.bearer, fx.token))
        grant = None
        if oauth2:
            from aiohttp_oauth2_client.grant.client_credentials import ClientCredentialsGrant
            from aiohttp_oauth2_client.middleware import OAuth2Middleware

            # A grant holding the same warm token (it never reaches its token URL).
            grant = ClientCredentialsGrant(
                f"{fx.origin}/token",
                "bench",
                "unused",
                token={"access_token": fx.token.token, "token_type": "Bearer", "expires_in": 3599},
            )
            stub[OAUTH2] = OAuth2Middleware(grant)
        sessions: list[aiohttp.ClientSession] = []

        def session(*middlewares: Any) -> aiohttp.ClientSession:
            context = ssl.create_default_context()
            fx.tls.configure_trust(context)
            new = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=bm.CONCURRENCY),
                middlewares=middlewares,
            )
            sessions.append(new)
            return new

        header = {"Authorization": fx.token.authorization}
        arms: dict[str, tuple[aiohttp.ClientSession, dict[str, str]]] = {
            "static": (session(), header),
            "bearer": (session(fx.bearer), {}),
        }
        if grant is not None:
            arms[OAUTH2] = (session(stub[OAUTH2]), {})
        try:
            cpu = await bm._middleware_cpu(stub, fx.url)
            sequential = await bm._measure(bm._sequential, arms, fx.url)
            concurrent = await bm._measure(bm._concurrent, arms, fx.url)
        finally:
            for each in sessions:
                await each.close()
            if grant is not None:
                await grant.close()
    return {"cpu": cpu, "sequential": sequential, "concurrent": concurrent}


# == parent side ===================================================================================


async def section(ctx: Context) -> Section:
    calls, cpu_rounds, rounds = (1, 7, 7) if ctx.quick else (3, 11, 11)
    async with ctx.pool("_middleware") as pool:
        samples = await pool.rounds(
            [Contender("this tree", "middleware_round", ours=True)],
            calls,
            args={"cpu_rounds": cpu_rounds, "rounds": rounds, "oauth2": True},
            timeout=600,
        )
    # Arms by name over every call: bearer of this tree, bearer of the baseline, the anchors.
    pooled: dict[str, dict[str, list[float]]] = {"cpu": {}, "sequential": {}, "concurrent": {}}
    paired: dict[str, dict[str, list[float]]] = {"cpu": {}, "sequential": {}, "concurrent": {}}
    errors = []
    for label, results in samples.items():
        tree = "" if " @ " not in label else f" @ {label.split(' @ ')[1]}"
        bad = failure(results)
        if bad:
            errors.append(f"{label}: {bad}")
        for result in ok(results):
            for kind in pooled:
                measured = result[kind]
                for arm, values in measured.items():
                    if tree and arm != "bearer":
                        continue  # the anchors and the static floor come from this tree
                    name = {"bearer": "aioentra `BearerTokenMiddleware`"}.get(arm, arm) + tree
                    pooled[kind].setdefault(name, []).extend(values)
                    if arm == "static":
                        continue
                    if kind == "cpu":
                        diffs = [
                            (a - b) * 1e9 for a, b in zip(values, measured["static"], strict=True)
                        ]
                    else:
                        diffs = [
                            (a / b - 1) * 100
                            for a, b in zip(values, measured["static"], strict=True)
                        ]
                    paired[kind].setdefault(name, []).extend(diffs)
    cpu_rows = []
    for name, values in pooled["cpu"].items():
        q1, mid, q3 = quartiles(values)
        diffs = paired["cpu"].get(name)
        if diffs:
            d1, dm, d3 = quartiles(diffs)
            above = f"{dm:+,.0f}"
            spread = f"{d1:+,.0f} … {d3:+,.0f}"
        else:
            above = spread = "—"
        cpu_rows.append(
            [name, fmt(mid * 1e9, 0), f"{q1 * 1e9:,.0f} … {q3 * 1e9:,.0f}", above, spread]
        )
    tables = [
        Table(
            [
                "arm",
                "ns per call (median)",
                "interquartile range",
                "above static, ns (median of paired rounds)",
                "its interquartile range",
            ],
            cpu_rows,
            title="The middleware's own CPU cost (stub handler, no network)",
        )
    ]
    for kind, title in (
        ("sequential", "Loopback HTTPS, one request at a time"),
        ("concurrent", f"Loopback HTTPS, {bm.CONCURRENCY} requests in flight"),
    ):
        rows = []
        for name, values in pooled[kind].items():
            rates = [1 / v for v in values]
            r1, rate, r3 = quartiles(rates)
            diffs = paired[kind].get(name)
            if diffs:
                d1, dm, d3 = quartiles(diffs)
                overhead = f"{dm:+.1f}%"
                spread = f"{d1:+.1f}% … {d3:+.1f}%"
                resolved = "yes" if d1 > 0 or d3 < 0 else "no: the range spans 0"
            else:
                overhead = spread = resolved = "—"
            rows.append(
                [
                    name,
                    fmt(statistics.median(values) * 1e6, 1),
                    fmt(rate, 0),
                    f"{r1:,.0f} … {r3:,.0f}",
                    overhead,
                    spread,
                    resolved,
                ]
            )
        tables.append(
            Table(
                [
                    "arm",
                    "µs per request (median)",
                    "requests/s (median)",
                    "requests/s interquartile range",
                    "vs static (median of paired runs)",
                    "its interquartile range",
                    "resolved from the noise?",
                ],
                rows,
                title=title,
            )
        )
    checks = []
    for name, diffs in paired["cpu"].items():
        if not name.startswith("aioentra"):
            continue
        above_ns = statistics.median(diffs)
        checks.append(
            Check(
                f"middleware at most 1 µs of CPU above static ({name})",
                f"{above_ns:+,.0f} ns",
                f"≤ {MIDDLEWARE_TARGET_NS:,.0f} ns",
                above_ns <= MIDDLEWARE_TARGET_NS,
            )
        )
    if not checks:
        checks.append(
            Check("middleware at most 1 µs of CPU above static", "n/a", "≤ 1,000 ns", None)
        )
    method = (
        f"`bench_middleware.py`'s measurements, {calls} call(s) per tree in worker processes, "
        f"each of {cpu_rounds} interleaved CPU rounds of {bm.CPU_CALLS:,} stub calls per arm "
        f"and {rounds} interleaved rounds of {bm.REQUESTS_PER_RUN} requests per arm to a "
        "minimal aiohttp server on loopback HTTPS; figures pool the rounds of every call. "
        "`static` sets a fixed `Authorization` header (from a middleware in the stub rounds, "
        "without one over the network); `aioentra BearerTokenMiddleware` holds a warm "
        "`TokenProvider`; aiohttp-oauth2-client's `OAuth2Middleware` holds the same token in "
        "its grant. CPU is the process's CPU time; the overhead over the network is the "
        "paired ratio to `static` in the same round, with its interquartile range: where "
        "that range spans 0, the difference is within the noise and no percentage is claimed."
    )
    notes = [f"Failed: {e}" for e in errors]
    return Section("middleware", "5. The aiohttp middleware", method, tables, checks, notes)
