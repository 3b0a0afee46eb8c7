"""One replica for bench_redis.py and bench_processes.py, in its own process.

Prints ``ready``, waits for ``go`` on stdin, runs, prints one JSON line of results.

By default a TokenProvider (with or without a RedisCache) for ``config["issuer"]`` (an OpenID
provider, through ``oidc_authority=``). With ``config["authority"]`` it is pointed at an
Entra ID authority instead (the emulator: ``tenant_id``, ``client_id``, ``secret``), and
``config["library"]`` may pick ``azure-identity`` (aio ``ClientSecretCredential``) or
``msal`` (``ConfidentialClientApplication``, its calls in threads) in its place. In ``cold``
mode ``config.get("callers", 1)`` concurrent callers ask for the first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aioentra import ClientSecret, RefreshPolicy, TokenProvider


@contextlib.asynccontextmanager
async def token_source(config: dict[str, Any]) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """``await get()`` returns a token for ``config["scope"]``."""
    scope = config["scope"]
    library = config.get("library", "aioentra")
    if library == "azure-identity":
        from azure.identity.aio import ClientSecretCredential

        async with ClientSecretCredential(
            config["tenant_id"],
            config["client_id"],
            config["secret"],
            authority=config["authority"],
            connection_verify=config["ca_file"],
        ) as credential:
            yield lambda: credential.get_token(scope)
        return
    if library == "msal":
        import msal
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = config["ca_file"]
        app = msal.ConfidentialClientApplication(  # its tenant discovery: one request
            config["client_id"],
            client_credential=config["secret"],
            authority=f"{config['authority']}/{config['tenant_id']}",
            instance_discovery=False,
            http_client=session,
        )
        yield lambda: asyncio.to_thread(app.acquire_token_for_client, [scope])
        session.close()
        return
    cache = None
    if config.get("redis_url"):
        from aioentra.redis import RedisCache

        cache = RedisCache(config["redis_url"], key=config["key"], prefix=config["prefix"])
    if config.get("authority"):
        where: dict[str, Any] = {
            "tenant_id": config["tenant_id"],
            "client_id": config["client_id"],
            "authority": config["authority"],
        }
        secret = config["secret"]
    else:
        where = {"client_id": "bench-client", "oidc_authority": config["issuer"]}
        secret = "bench-secret"
    async with TokenProvider(
        ClientSecret(secret),
        ca_file=config["ca_file"],
        cache=cache,
        refresh=RefreshPolicy(expiry_margin=1.0, reserve=0.0),
        trust_env=False,
        **where,
    ) as provider:
        yield lambda: provider.get_token(scope)


async def main(config: dict[str, Any]) -> dict[str, Any]:
    async with token_source(config) as get:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if config["mode"] == "cold":
            started = time.perf_counter()
            await asyncio.gather(*(get() for _ in range(config.get("callers", 1))))
            return {"seconds": time.perf_counter() - started}
        latencies: list[float] = []
        errors = 0
        stop = time.monotonic() + config["seconds"]

        async def caller() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    await get()
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
