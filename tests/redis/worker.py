"""One replica of a daemon, for the multi-process tests: a TokenProvider with a RedisCache.

Started as ``python worker.py CONFIG_JSON``; it prints ``{"ready": true}``, then answers one
JSON line per command line on stdin: ``{"get": SCOPE, "force": false}`` gets a token
(``{"ok": true, "sha": ...}`` or ``{"ok": false, "error": TYPE, "message": ...}``); end of
input closes the provider and exits. Tokens are never printed, only a hash of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from typing import Any

from aioentra import AioEntraError, ClientSecret, RetryPolicy, TokenProvider
from aioentra.redis import RedisCache


def say(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def main(config: dict[str, Any]) -> None:
    cache = RedisCache(
        config["redis_url"],
        key=config["key"],
        prefix=config["prefix"],
        lock_lease=config.get("lock_lease", 10.0),
        wait_timeout=config.get("wait_timeout", 5.0),
    )
    loop = asyncio.get_running_loop()
    async with TokenProvider(
        ClientSecret(config["secret"]),
        tenant_id=config["tenant_id"],
        client_id=config["client_id"],
        authority=config["authority"],
        ca_file=config["ca_file"],
        cache=cache,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
    ) as provider:
        say({"ready": True})
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            try:
                token = await provider.get_token(
                    command["get"], force_refresh=bool(command.get("force"))
                )
            except AioEntraError as error:
                say({"ok": False, "error": type(error).__name__, "message": error.message})
                continue
            say({"ok": True, "sha": hashlib.sha256(token.token.encode()).hexdigest()[:16]})


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
