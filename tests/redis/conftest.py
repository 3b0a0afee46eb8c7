"""A real ``redis-server`` on a free loopback port (never the machine's own), and fixtures.

The binary comes from ``PATH`` (or ``/usr/bin``). Without it the Redis tests skip, unless
``AIOENTRA_REQUIRE_REDIS=1`` says they must run (CI): then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cache_support import RedisServer, redis_binary


def _need_binary() -> str:
    binary = redis_binary()
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("AIOENTRA_REQUIRE_REDIS") == "1":
            pytest.fail(f"AIOENTRA_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(f"{reason}; set AIOENTRA_REQUIRE_REDIS=1 to make this a failure")
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's server; tests keep apart by a prefix of their own."""
    server = RedisServer(_need_binary(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Servers for one test (to stop, restart, fill up or protect by password)."""
    binary = _need_binary()
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(binary, tmp_path, *extra)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    """A plain synchronous client to look at (and meddle with) what the cache stored."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()
    client.connection_pool.disconnect()


@pytest.fixture
async def caches() -> AsyncIterator[list[Any]]:
    """Tests append the caches they build; all are closed at teardown."""
    built: list[Any] = []
    yield built
    for cache in built:
        await cache.close()
