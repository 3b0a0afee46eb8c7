"""Replicas with and without the shared Redis cache: token requests, wall time, latencies.

Every replica is a separate process (``_replica.py``) with a TokenProvider for the same app,
against one local OpenID provider started here (HTTPS on loopback, reached through
``oidc_authority=``) that mints opaque tokens and counts the token requests it receives, and a
``redis-server`` started here on a free port.

* **Cold start**: 20 replicas start, then all ask for a token at once; token requests sent and
  the wall time until the last one has its token.
* **Steady traffic across rollovers**: 8 replicas, 200 tasks each calling ``get_token`` every
  10 ms for 20 s with 6 s tokens (about three rollovers): token requests per rollover, caller
  latency p50/p99/max over all calls, and calls over 1 ms.

Run: ``python benchmarks/bench_redis.py`` (about a minute; ``--quick`` for a smoke run).
Needs ``redis-server`` on PATH and the ``redis`` extra. Results are printed and written to
``benchmarks/results/redis.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

import aioentra

RESULTS = Path(__file__).parent / "results" / "redis.md"
REPLICA = Path(__file__).with_name("_replica.py")
LIFETIME = 6


class TokenServer:
    """A minimal OpenID provider: discovery, and a token endpoint that counts requests."""

    def __init__(self, ca: trustme.CA) -> None:
        self.requests = 0
        self._cert = ca.issue_cert("localhost")
        self._runner: web.AppRunner | None = None
        self.issuer = ""

    async def start(self) -> None:
        async def discovery(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/keys",
                }
            )

        async def token(request: web.Request) -> web.Response:
            self.requests += 1
            await request.post()
            return web.json_response(
                {"access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": LIFETIME}
            )

        app = web.Application()
        app.router.add_get("/bench/v2.0/.well-known/openid-configuration", discovery)
        app.router.add_post("/bench/v2.0/token", token)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.issuer = f"https://localhost:{self._runner.addresses[0][1]}/bench/v2.0"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server(workdir: str) -> AsyncIterator[str]:
    """A ``redis-server`` on a free loopback port, stopped on exit; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    redis = await asyncio.create_subprocess_exec(
        *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir),
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # until it listens (at most 5 s)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
            else:
                writer.close()
                await writer.wait_closed()
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        redis.terminate()
        await redis.wait()


async def run_replicas(
    count: int, config: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], float]:
    """``count`` replica processes: started, then released together; their results and the
    wall time from the release to the last result."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPLICA),
            json.dumps(config),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        for _ in range(count)
    ]
    done = False
    try:
        for process in processes:
            assert process.stdout is not None
            assert (await process.stdout.readline()).strip() == b"ready"
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = []
        for process in processes:
            assert process.stdout is not None
            results.append(json.loads(await process.stdout.readline()))
        wall = time.perf_counter() - started
        done = True
    finally:  # after a failure too, no replica is left behind
        for process in processes:
            if not done and process.returncode is None:
                process.kill()
            await process.wait()
    return results, wall


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer replicas and seconds")
    args = parser.parse_args(argv)
    cold_n, steady_n, seconds, tasks = (4, 2, 7, 20) if args.quick else (20, 8, 20, 200)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    ca = trustme.CA()
    server = TokenServer(ca)
    await server.start()
    workdir = tempfile.mkdtemp(prefix="aioentra-bench-redis-")
    ca_file = Path(workdir, "ca.pem")
    ca.cert_pem.write_to_path(str(ca_file))
    cold_rows, steady_rows = [], []
    try:
        async with redis_server(workdir) as redis_url:
            base = {
                "issuer": server.issuer,
                "ca_file": str(ca_file),
                "key": base64.b64encode(os.urandom(32)).decode(),
            }
            for label, url in (("without Redis", None), ("with Redis", redis_url)):
                before = server.requests
                config = {**base, "redis_url": url, "prefix": uuid.uuid4().hex, "mode": "cold"}
                config["scope"] = f"api://cold-{uuid.uuid4().hex[:6]}/.default"
                _, wall = await run_replicas(cold_n, config)
                cold_rows.append([label, str(server.requests - before), f"{wall * 1000:.0f}"])
                print(cold_rows[-1], flush=True)
            rollovers = 1.0
            for label, url in (("without Redis", None), ("with Redis", redis_url)):
                config = {**base, "redis_url": url, "prefix": uuid.uuid4().hex, "mode": "steady"}
                config.update(scope="api://steady/.default", seconds=seconds, tasks=tasks)
                before = server.requests
                results, _ = await run_replicas(steady_n, config)
                sent = server.requests - before
                cold = steady_n if url is None else 1
                if url is None:  # every replica refreshes on its own: that counts the rollovers
                    rollovers = max((sent - cold) / steady_n, 1.0)
                calls = sum(r["calls"] for r in results)
                steady_rows.append(
                    [
                        label,
                        str(sent),
                        f"{(sent - cold) / rollovers:.1f}",
                        f"{max(r['p50'] for r in results) * 1e6:.0f}",
                        f"{max(r['p99'] for r in results) * 1e6:.0f}",
                        f"{max(r['max'] for r in results) * 1000:.1f}",
                        f"{sum(r['over_1ms'] for r in results)} of {calls}",
                        str(sum(r["errors"] for r in results)),
                    ]
                )
                print(steady_rows[-1], flush=True)
    finally:
        await server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = (
        "# Replicas and the shared Redis cache\n\n"
        f"Generated by `python benchmarks/bench_redis.py`. Python {platform.python_version()} on "
        f"{platform.machine()} ({platform.system()}), {os.cpu_count()} CPUs, load {load:.2f}, "
        f"aioentra {aioentra.__version__}.\n\n"
        f"## {cold_n} replicas starting cold at once\n\n"
        "| replicas | token requests | wall time (ms) |\n|---|---|---|\n"
        + "\n".join(f"| {' | '.join(row)} |" for row in cold_rows)
        + f"\n\n## {steady_n} replicas, {tasks} tasks each, {seconds} s of {LIFETIME} s tokens\n\n"
        "Per rollover: the token requests after the cold start, divided by the refreshes each "
        "replica made on its own (the run without Redis). Latencies: the worst replica's.\n\n"
        "| replicas | token requests | per rollover | p50 (µs) | p99 (µs) | max (ms) | calls over "
        "1 ms | errors |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(f"| {' | '.join(row)} |" for row in steady_rows)
    )
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
