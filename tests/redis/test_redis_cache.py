"""RedisCache against a real redis-server: sharing, sealing, cross-process single flight, and
every way Redis can fail without the caller noticing more than a log line."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import logging
import socket
import time
import warnings
from typing import Any

import pytest
from cache_support import KEY_A, KEY_B, Clock, Issuer, RedisServer, free_port

from aioentra import CredentialRejectedError, IdentityProviderUnavailableError, ProviderClosedError
from aioentra._cache import KEY_ID_BYTES, CachedToken, Keyring, poll_budget
from aioentra.redis import RedisCache

pytestmark = pytest.mark.anyio

KEY = "https://login.microsoftonline.com|tenant-1|client-1|api://things/.default|"
OTHER = "https://login.microsoftonline.com|tenant-1|client-1|api://other/.default|"


def name(kind: str, prefix: str, key: str = KEY) -> str:
    return f"{prefix}:{kind}:{hashlib.sha256(key.encode()).hexdigest()}"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "aioentra.redis" and r.levelno == logging.WARNING
    ]


@pytest.fixture
def build(caches: list[Any], redis_server: RedisServer, prefix: str) -> Any:
    """RedisCache instances on the session server, each with its own connection pool (as
    separate processes would have), closed at teardown."""

    def make(url: str | None = None, **kwargs: Any) -> RedisCache:
        kwargs.setdefault("key", KEY_A)
        kwargs.setdefault("prefix", prefix)
        cache = RedisCache(url or redis_server.url, **kwargs)
        caches.append(cache)
        return cache

    return make


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="aioentra.redis")
    return caplog


def assert_no_secret(caplog: pytest.LogCaptureFixture, issuer: Issuer, *more: str) -> None:
    text = caplog.text
    for issued in issuer.issued:
        assert issued.access_token not in text
    for secret in (*more, KEY_A.hex(), base64.b64encode(KEY_A).decode()):
        assert secret not in text


# -- sharing and sealing -------------------------------------------------------------------------


async def test_one_process_asks_the_others_share(build: Any, raw: Any, prefix: str) -> None:
    first, second = build(), build()
    issuer = Issuer()
    token, source = await first.fetch(KEY, issuer)
    assert source == "network" and issuer.calls == 1
    shared, source = await second.fetch(KEY, issuer)
    assert (shared, source) == (token, "shared cache")
    assert issuer.calls == 1
    assert raw.keys(f"{prefix}:*") == [name("token", prefix).encode()]  # the lock is released


async def test_the_holder_announces_the_entry(build: Any, raw: Any, prefix: str) -> None:
    listener = raw.pubsub()
    try:
        listener.subscribe(name("ready", prefix))
        assert listener.get_message(timeout=1.0)["type"] == "subscribe"
        await build().fetch(KEY, Issuer())
        message = listener.get_message(timeout=1.0)
        assert message is not None and message["data"] == b"ready"  # nothing secret in it
    finally:
        listener.close()


async def test_a_user_without_channel_rights_still_shares(
    own_redis: Any, caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    """Redis 7 gives new ACL users no pub/sub channels: PUBLISH is refused, nothing else is."""
    import redis

    server: RedisServer = own_redis()
    admin = redis.Redis.from_url(server.url)
    try:
        admin.execute_command(
            "ACL", "SETUSER", "cache", "on", ">cache-pass-1", "~*", "+@all", "resetchannels"
        )
    finally:
        admin.close()
        admin.connection_pool.disconnect()
    url = f"redis://cache:cache-pass-1@127.0.0.1:{server.port}/0"
    first, second = RedisCache(url, key=KEY_A), RedisCache(url, key=KEY_A)
    caches.extend((first, second))
    issuer = Issuer()
    token, _ = await first.fetch(KEY, issuer)
    assert await second.fetch(KEY, issuer) == (token, "shared cache")
    assert warnings_of(logs) == []
    assert (
        repr(first)
        == f"RedisCache('redis://cache:***@127.0.0.1:{server.port}/0', prefix='aioentra')"
    )


async def test_redis_holds_nothing_readable(build: Any, raw: Any, prefix: str) -> None:
    issuer = Issuer()
    token, _ = await build().fetch(KEY, issuer)
    stored = raw.get(name("token", prefix))
    secret = token.access_token.encode()
    for needle in (
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        json.dumps(token.access_token).encode(),
        secret[4:20],
        KEY_A,
        base64.b64encode(KEY_A),
    ):
        assert needle not in stored
    assert stored[0] == 1 and stored[1 : 1 + KEY_ID_BYTES].hex() == Keyring(KEY_A).key_ids[0]


async def test_a_tampered_entry_is_a_logged_miss(
    build: Any, raw: Any, prefix: str, logs: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer()
    await build().fetch(KEY, issuer)
    stored = bytearray(raw.get(name("token", prefix)))
    stored[-5] ^= 0x40
    raw.set(name("token", prefix), bytes(stored), keepttl=True)
    token, source = await build().fetch(KEY, issuer)
    assert (source, issuer.calls) == ("network", 2)
    [warning] = warnings_of(logs)
    assert "unreadable" in warning.getMessage() and "tampered" in warning.getMessage()
    assert (await build().fetch(KEY, issuer)) == (token, "shared cache")  # replaced by a good one
    assert_no_secret(logs, issuer)


async def test_an_entry_copied_under_another_key_is_a_logged_miss(
    build: Any, raw: Any, prefix: str, logs: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer()
    cache = build()
    await cache.fetch(KEY, issuer)
    raw.set(name("token", prefix, OTHER), raw.get(name("token", prefix)), px=60_000)
    _, source = await cache.fetch(OTHER, issuer)
    assert (source, issuer.calls) == ("network", 2)
    [warning] = warnings_of(logs)
    assert "another cache key" in warning.getMessage()


async def test_an_entry_sealed_with_an_unknown_key_is_a_miss_logged_once(
    build: Any, raw: Any, prefix: str, logs: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer()
    await build(key=KEY_A).fetch(KEY, issuer)
    foreign = raw.get(name("token", prefix))
    stranger = build(key=KEY_B)
    for round_ in range(3):
        raw.set(name("token", prefix), foreign, px=60_000)
        _, source = await stranger.fetch(KEY, issuer)
        assert (source, issuer.calls) == ("network", 2 + round_)
    [warning] = warnings_of(logs)  # once per key id, not once per read
    assert Keyring(KEY_A).key_ids[0] in warning.getMessage()
    assert "not in this keyring" in warning.getMessage()
    assert_no_secret(logs, issuer, KEY_B.hex())


async def test_key_rotation_old_entries_open_new_ones_use_the_new_key(
    build: Any, raw: Any, prefix: str
) -> None:
    issuer = Issuer()
    old, rotated, new_only = build(key=KEY_A), build(key=[KEY_B, KEY_A]), build(key=KEY_B)
    token, _ = await old.fetch(KEY, issuer)
    assert (await rotated.fetch(KEY, issuer)) == (token, "shared cache")
    fresh, source = await rotated.fetch(OTHER, issuer)
    assert source == "network"
    assert (
        raw.get(name("token", prefix, OTHER))[1 : 1 + KEY_ID_BYTES].hex()
        == (Keyring(KEY_B).key_ids[0])
    )
    assert (await new_only.fetch(OTHER, issuer)) == (fresh, "shared cache")
    assert (await old.fetch(OTHER, issuer))[1] == "network"  # the old keyring cannot open it
    assert issuer.calls == 3


async def test_an_entry_lives_as_long_as_its_token(build: Any, raw: Any, prefix: str) -> None:
    cache = build()
    await cache.fetch(KEY, Issuer(lifetime=120.0))
    assert 118_000 < raw.pttl(name("token", prefix)) <= 120_000

    async def half_spent() -> CachedToken:  # answered 100 s ago (a slow clock, a replay)
        return CachedToken("eyJ.older.sig", time.time() - 100.0, 600.0, None)

    await cache.fetch(OTHER, half_spent)
    assert 498_000 < raw.pttl(name("token", prefix, OTHER)) <= 500_000


async def test_newer_than_and_min_remaining(build: Any) -> None:
    cache, issuer = build(), Issuer()
    first, _ = await cache.fetch(KEY, issuer)
    assert await cache.fetch(KEY, issuer, newer_than=first.expires_on() - 1) == (
        first,
        "shared cache",
    )
    second, source = await cache.fetch(KEY, issuer, newer_than=first.expires_on())
    assert source == "network" and second != first  # the caller had that one: a new one
    left = second.remaining(time.time())
    assert await cache.fetch(KEY, issuer, min_remaining=left - 5) == (second, "shared cache")
    third, source = await cache.fetch(KEY, issuer, min_remaining=4000)
    assert source == "network" and third not in (first, second)
    assert issuer.calls == 3


# -- single flight across processes --------------------------------------------------------------


async def test_fifty_calls_from_five_processes_make_one_request(build: Any, raw: Any) -> None:
    processes = [build() for _ in range(5)]
    issuer = Issuer(delay=0.2)
    started = time.monotonic()
    results = await asyncio.gather(*(processes[n % 5].fetch(KEY, issuer) for n in range(50)))
    assert issuer.calls == 1
    assert {token for token, _ in results} == {issuer.issued[0]}
    sources = [source for _, source in results]
    assert sources.count("network") == 1 and sources.count("shared cache") == 49
    assert time.monotonic() - started < 2.0


async def test_a_failing_holder_gets_its_error_and_a_waiter_takes_over(build: Any) -> None:
    processes = [build() for _ in range(5)]
    issuer = Issuer(delay=0.2)
    error = IdentityProviderUnavailableError("token endpoint answered 503")
    issuer.errors.append(error)
    started = time.monotonic()
    results = await asyncio.gather(
        *(processes[n % 5].fetch(KEY, issuer) for n in range(10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == [error] and failures[0] is error  # unchanged, to the holder only
    assert issuer.calls == 2  # the holder's, then one waiter's: not one per waiter
    assert {r for r in results if not isinstance(r, BaseException)} == {
        (issuer.issued[0], "network"),
        (issuer.issued[0], "shared cache"),
    }
    assert elapsed < 1.5


async def test_a_dead_holder_is_taken_over_when_its_lease_ends(
    build: Any, raw: Any, prefix: str
) -> None:
    raw.set(name("lock", prefix), "a process that died", px=300)
    issuer = Issuer()
    started = time.monotonic()
    token, source = await build(wait_timeout=5.0).fetch(KEY, issuer)
    elapsed = time.monotonic() - started
    assert (source, issuer.calls) == ("network", 1)
    assert 0.25 < elapsed < 1.0
    assert not raw.exists(name("lock", prefix))
    assert await build().fetch(KEY, issuer) == (token, "shared cache")


async def test_a_waiter_fetches_itself_when_wait_timeout_ends(
    build: Any, raw: Any, prefix: str
) -> None:
    raw.set(name("lock", prefix), "a process that hangs", px=60_000)
    issuer = Issuer()
    started = time.monotonic()
    token, source = await build(wait_timeout=0.3).fetch(KEY, issuer)
    elapsed = time.monotonic() - started
    assert (source, issuer.calls) == ("network", 1)
    assert 0.25 < elapsed < 1.0
    assert raw.get(name("lock", prefix)) == b"a process that hangs"  # not ours to release
    assert await build(wait_timeout=0.3).fetch(KEY, issuer) == (token, "shared cache")


async def test_a_waiter_polls_a_bounded_number_of_times(own_redis: Any, caches: list[Any]) -> None:
    import redis

    server: RedisServer = own_redis()
    inspect = redis.Redis.from_url(server.url)
    try:
        inspect.set(name("lock", "aioentra"), "a process that hangs", px=60_000)
        cache = RedisCache(server.url, key=KEY_A, wait_timeout=0.6)
        caches.append(cache)
        await cache.fetch(KEY, Issuer())
        gets = inspect.info("commandstats")["cmdstat_get"]["calls"]
        assert 5 <= gets <= poll_budget(0.6) + 2  # polls, not a spin
    finally:
        inspect.close()
        inspect.connection_pool.disconnect()


async def test_a_cancelled_holder_releases_the_lock(build: Any, raw: Any, prefix: str) -> None:
    cache = build()
    task = asyncio.ensure_future(cache.fetch(KEY, Issuer(delay=10.0)))
    for _ in range(200):
        await asyncio.sleep(0.005)
        if raw.exists(name("lock", prefix)):
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not raw.exists(name("lock", prefix))


async def test_the_callers_errors_propagate_unchanged(build: Any, raw: Any, prefix: str) -> None:
    issuer = Issuer()
    error = CredentialRejectedError("invalid_client: AADSTS7000215")
    issuer.errors.append(error)
    with pytest.raises(CredentialRejectedError) as caught:
        await build().fetch(KEY, issuer)
    assert caught.value is error
    assert not raw.exists(name("lock", prefix))


# -- Redis failures: never the caller's problem --------------------------------------------------


async def test_redis_stopping_and_coming_back(
    own_redis: Any, caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    server: RedisServer = own_redis()
    clock = Clock()
    cache = RedisCache(server.url, key=KEY_A, clock=clock)
    caches.append(cache)
    issuer = Issuer()
    await cache.fetch(KEY, issuer)
    assert (await cache.fetch(KEY, issuer))[1] == "shared cache"

    server.stop()
    for calls in (2, 3, 4):
        token, source = await cache.fetch(KEY, issuer)
        assert (token, source, issuer.calls) == (issuer.issued[-1], "network", calls)
    [warning] = warnings_of(logs)
    assert warning.getMessage().startswith(
        f"shared token cache unavailable at redis://127.0.0.1:{server.port}/0: "
    )
    assert warning.getMessage().endswith("; fetching locally")
    assert cache._outage.failures == 1  # calls in the back-off did not touch Redis

    server.start()  # same port, empty
    assert (await cache.fetch(KEY, issuer))[1] == "network"  # still backing off
    clock.advance(1.0)
    token, source = await cache.fetch(KEY, issuer)
    assert (source, issuer.calls) == ("network", 6)
    assert "available again" in logs.text
    other = RedisCache(server.url, key=KEY_A)
    caches.append(other)
    assert await other.fetch(KEY, issuer) == (token, "shared cache")
    assert len(warnings_of(logs)) == 1
    assert_no_secret(logs, issuer)


async def test_redis_refusing_from_the_start(
    caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    cache = RedisCache(f"redis://:hunter2-secret@127.0.0.1:{port}/0", key=KEY_A)
    caches.append(cache)
    issuer = Issuer()
    started = time.monotonic()
    for calls in (1, 2, 3):
        assert (await cache.fetch(KEY, issuer))[1] == "network"
        assert issuer.calls == calls
    assert time.monotonic() - started < 1.0
    [warning] = warnings_of(logs)
    assert f"at redis://:***@127.0.0.1:{port}/0: ConnectionError" in warning.getMessage()
    assert_no_secret(logs, issuer, "hunter2-secret")
    error = CredentialRejectedError("invalid_client")  # the caller's errors still come through
    issuer.errors.append(error)
    with pytest.raises(CredentialRejectedError) as caught:
        await cache.fetch(KEY, issuer)
    assert caught.value is error


async def test_redis_that_never_answers_costs_one_timeout_per_back_off(
    caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        cache = RedisCache(
            f"redis://127.0.0.1:{port}/0", key=KEY_A, socket_timeout=0.1, connect_timeout=0.1
        )
        caches.append(cache)
        issuer = Issuer()
        started = time.monotonic()
        for _ in range(5):
            assert (await cache.fetch(KEY, issuer))[1] == "network"
        assert time.monotonic() - started < 0.5  # one timeout, then the back-off skips Redis
        await cache.close()
    [warning] = warnings_of(logs)
    assert "TimeoutError" in warning.getMessage()


async def test_a_wrong_password_is_an_outage_not_an_error(
    own_redis: Any, caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    server: RedisServer = own_redis("--requirepass", "right-password-1")
    wrong = RedisCache(f"redis://:wrong-password-2@127.0.0.1:{server.port}/0", key=KEY_A)
    right = RedisCache(f"redis://:right-password-1@127.0.0.1:{server.port}/0", key=KEY_A)
    caches.extend((wrong, right))
    issuer = Issuer()
    assert (await wrong.fetch(KEY, issuer))[1] == "network"
    [warning] = warnings_of(logs)
    assert "AuthenticationError" in warning.getMessage()
    token, _ = await right.fetch(KEY, issuer)
    assert await right.fetch(KEY, issuer) == (token, "shared cache")
    assert_no_secret(logs, issuer, "wrong-password-2", "right-password-1")
    assert "right-password-1" not in repr(right)


async def test_out_of_memory_is_an_outage(
    own_redis: Any, caches: list[Any], logs: pytest.LogCaptureFixture
) -> None:
    server: RedisServer = own_redis("--maxmemory", "1", "--maxmemory-policy", "noeviction")
    cache = RedisCache(server.url, key=KEY_A)
    caches.append(cache)
    issuer = Issuer()
    token, source = await cache.fetch(KEY, issuer)
    assert (token, source) == (issuer.issued[0], "network")
    [warning] = warnings_of(logs)
    assert "OutOfMemoryError: SET: command not allowed when used memory" in warning.getMessage()


async def test_a_key_of_the_wrong_type_is_an_outage(
    build: Any, raw: Any, prefix: str, logs: pytest.LogCaptureFixture
) -> None:
    raw.lpush(name("token", prefix), "someone else's list")
    issuer = Issuer()
    assert (await build().fetch(KEY, issuer))[1] == "network"
    [warning] = warnings_of(logs)
    assert "WRONGTYPE" in warning.getMessage()


# -- lifecycle -----------------------------------------------------------------------------------


async def test_close_leaves_no_task_connection_or_warning(redis_server: RedisServer) -> None:
    before = asyncio.all_tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = RedisCache(redis_server.url, key=KEY_A, prefix="lifecycle")
        await cache.fetch(KEY, Issuer())
        await cache.close()
        await cache.close()  # idempotent
        del cache
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert asyncio.all_tasks() <= before


async def test_a_closed_cache_refuses_to_fetch(build: Any) -> None:
    cache = build()
    await cache.close()
    with pytest.raises(ProviderClosedError):
        await cache.fetch(KEY, Issuer())


async def test_a_given_client_is_used_and_left_open(redis_server: RedisServer) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with RedisCache(key=KEY_A, client=client, prefix="given") as cache:
            assert repr(cache) == (
                f"RedisCache('redis://127.0.0.1:{redis_server.port}/0', prefix='given')"
            )
            assert (await cache.fetch(KEY, Issuer()))[1] == "network"
        assert await client.ping() is True
    finally:
        await client.aclose()
