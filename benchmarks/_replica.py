"""One replica for bench_redis.py: a TokenProvider (with or without a RedisCache) in its own
process. Prints ``ready``, waits for ``go`` on stdin, runs, prints one JSON line of results."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aioentra import ClientSecret, RefreshPolicy, TokenProvider


async def main(config: dict[str, Any]) -> dict[str, Any]:
    cache = None
    if config.get("redis_url"):
        from aioentra.redis import RedisCache

        cache = RedisCache(config["redis_url"], key=config["key"], prefix=config["prefix"])
    async with TokenProvider(
        ClientSecret("bench-secret"),
        client_id="bench-client",
        oidc_authority=config["issuer"],
        ca_file=config["ca_file"],
        cache=cache,
        refresh=RefreshPolicy(expiry_margin=1.0, reserve=0.0),
        trust_env=False,
    ) as provider:
        scope = config["scope"]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if config["mode"] == "cold":
            started = time.perf_counter()
            await provider.get_token(scope)
            return {"seconds": time.perf_counter() - started}
        latencies: list[float] = []
        errors = 0
        stop = time.monotonic() + config["seconds"]

        async def caller() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    await provider.get_token(scope)
                except Exception:
                    errors += 1
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(caller() for _ in range(config["tasks"])))
        latencies.sort()
        return {
            "calls": len(latencies),
            "errors": errors,
            "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(len(latencies) * 0.99)],
            "max": latencies[-1],
            "over_1ms": sum(1 for x in latencies if x > 0.001),
        }


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    print(json.dumps(result), flush=True)
