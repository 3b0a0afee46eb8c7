"""N cold worker processes at once: the token and discovery requests they send.

8 and 20 processes (``_replica.py``, the machinery of ``bench_redis.py``) start with an empty
cache and are released together; each has 10 concurrent callers asking for its first token
from the local emulator. Contenders: aioentra alone, aioentra with the shared Redis cache
(``aioentra.redis.RedisCache``, a ``redis-server`` started here), azure-identity aio and msal.
The emulator's request log counts the token requests (by the run's client id) and the
discovery requests (OpenID configuration and instance discovery) each run caused.

Run: ``python benchmarks/bench_processes.py`` (``--quick`` for a smoke run; needs
``redis-server``). Writes ``benchmarks/results/processes.md``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

from _common import (
    Check,
    Context,
    Failed,
    Json,
    Section,
    Table,
    emulator,
    fmt,
    median,
    new_app,
    ok,
    run_alone,
    token_requests,
    worker_env,
)
from bench_redis import redis_server, run_replicas

API_URI = "api://bench-processes"
CALLERS = 10

CONTENDERS = [
    # label, library, with Redis, ours
    ("aioentra", "aioentra", False, True),
    ("aioentra with the shared Redis cache", "aioentra", True, True),
    ("azure-identity aio", "azure-identity", False, False),
    ("msal (calls in threads)", "msal", False, False),
]


@contextlib.asynccontextmanager
async def _redis() -> AsyncIterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    workdir = tempfile.mkdtemp(prefix="aioentra-bench-processes-")
    try:
        async with redis_server(workdir) as url:
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def section(ctx: Context) -> Section:
    sizes, rounds = ([4], 1) if ctx.quick else ([8, 20], 2)
    contenders: list[tuple[str, str, bool, dict[str, str]]] = []
    for label, library, redis, ours in CONTENDERS:
        contenders.append((label, library, redis, worker_env(None)))
        if ours and ctx.baseline is not None:
            env = worker_env(str(ctx.baseline.src))
            contenders.append((f"{label} @ {ctx.baseline.label}", library, redis, env))
    results: dict[int, dict[str, list[Any]]] = {n: {c[0]: [] for c in contenders} for n in sizes}
    key = base64.b64encode(os.urandom(32)).decode()
    async with emulator() as emu, _redis() as redis_url:
        api = emu.add_api(API_URI)
        for _ in range(rounds):
            for count in sizes:
                for label, library, redis, env in contenders:
                    if redis and redis_url is None:
                        results[count][label].append(Failed("redis-server is not installed"))
                        continue
                    app = new_app(emu, api, "bench-processes")
                    config: Json = {
                        "library": library,
                        "authority": emu.base_url,
                        "tenant_id": emu.tenant_id,
                        "client_id": app.client_id,
                        "secret": app.secret,
                        "ca_file": emu.ca_file,
                        "scope": f"{API_URI}/.default",
                        "mode": "cold",
                        "callers": CALLERS,
                        "redis_url": redis_url if redis else None,
                        "key": key,
                        "prefix": uuid.uuid4().hex,
                    }
                    discovery = emu.requests.count(endpoint="discovery")
                    try:
                        _, wall = await run_replicas(count, config, env=env)
                    except (AssertionError, ValueError, OSError) as exc:
                        results[count][label].append(Failed(f"{type(exc).__name__}: {exc}"))
                        continue
                    results[count][label].append(
                        {
                            "token": token_requests(emu, app.client_id),
                            "discovery": emu.requests.count(endpoint="discovery") - discovery,
                            "wall": wall,
                        }
                    )
    rows = []
    checks = []
    for count in sizes:
        for label, runs in results[count].items():
            good = ok(runs)
            if not good:
                rows.append([f"{count}", label, str(runs[0]) if runs else "n/a", "", "", ""])
                continue
            tokens = median([r["token"] for r in good])
            discovery = median([r["discovery"] for r in good])
            wall = median([r["wall"] for r in good])
            rows.append(
                [
                    f"{count}",
                    label,
                    fmt(tokens, 0),
                    fmt(discovery, 0),
                    fmt(None if tokens is None else tokens / count),
                    fmt(None if wall is None else wall * 1e3, 0),
                ]
            )
            if label.startswith("aioentra with the shared Redis cache"):
                checks.append(
                    Check(
                        f"1 token request for {count} processes (shared cache"
                        + ("" if " @ " not in label else f", {label.split(' @ ')[1]}")
                        + ")",
                        fmt(tokens, 0),
                        "1",
                        None if tokens is None else tokens == 1,
                    )
                )
            elif label.startswith("aioentra"):
                checks.append(
                    Check(
                        f"1 token request per process, {count} processes (no shared cache"
                        + ("" if " @ " not in label else f", {label.split(' @ ')[1]}")
                        + ")",
                        fmt(None if tokens is None else tokens / count),
                        "1.00",
                        None if tokens is None else tokens == count,
                    )
                )
    table = Table(
        [
            "processes",
            "contender",
            "token requests",
            "discovery requests",
            "token requests per process",
            "wall time (ms)",
        ],
        rows,
        title=f"Cold processes released together, {CALLERS} concurrent callers each (median of "
        f"{rounds} round(s))",
    )
    method = (
        "Each run starts the processes (each builds its client and prints `ready`), then "
        "releases them together; the wall time runs from the release to the last process's "
        "answer. Every run uses a new app, so its token requests are counted by client id; "
        "discovery requests (the OpenID configuration, instance discovery) carry no client id "
        "and are counted as the difference over the run. msal builds its client (its tenant "
        "discovery) before `ready`, aioentra in its first request. azure-identity aio sends no "
        "discovery request: it posts to the token endpoint it derives from the authority."
    )
    return Section("processes", "8. Cold worker processes", method, [table], checks)


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
