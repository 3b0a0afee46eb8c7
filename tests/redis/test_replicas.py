"""Many replicas, one token: TokenProviders in separate processes sharing a real Redis.

Each replica is ``worker.py`` in its own interpreter; the emulator (the session's, served in a
thread) counts the token requests they send.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cache_support import RedisServer

from aioentra.emulator import App, Emulator, Fault

WORKER = Path(__file__).with_name("worker.py")


class Replica:
    """A worker process and its line protocol."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-W", "error", str(WORKER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.endswith("_PROXY")},
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.stderr()
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, scope: str, *, force: bool = False) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"get": scope, "force": force}) + "\n")
        self.process.stdin.flush()

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def finish(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # (a killed worker)
            self.process.stdin.close()  # end of input: the worker closes its provider
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def replicas(
    aioentra_isolated: Emulator, aioentra_app: App
) -> Iterator[Callable[..., list[Replica]]]:
    emu, started = aioentra_isolated, []
    key = base64.b64encode(os.urandom(32)).decode()
    prefix = f"replicas-{uuid.uuid4().hex[:8]}"

    def start(count: int, server: RedisServer, **options: Any) -> list[Replica]:
        config = {
            "redis_url": server.url,
            "key": key,
            "prefix": prefix,
            "secret": aioentra_app.secret,
            "tenant_id": emu.tenant_id,
            "client_id": aioentra_app.client_id,
            "authority": emu.base_url,
            "ca_file": emu.ca_file,
            **options,
        }
        batch = [Replica(config) for _ in range(count)]
        started.extend(batch)
        for replica in batch:
            assert replica.read() == {"ready": True}
        return batch

    yield start
    for replica in started:
        replica.finish()


def new_api(emu: Emulator, app: App) -> str:
    """A scope nobody holds a token for yet."""
    uri = f"api://replicas-{uuid.uuid4().hex[:8]}"
    emu.grant(app, emu.add_api(uri, roles=["Things.Read"]), ["Things.Read"])
    return f"{uri}/.default"


def requests_for(emu: Emulator, app: App, scope: str) -> int:
    return sum(1 for r in emu.requests.filter("token", client_id=app.client_id) if r.scope == scope)


def ask_all(group: list[Replica], scope: str, *, force: bool = False) -> list[dict[str, Any]]:
    for replica in group:
        replica.send(scope, force=force)
    return [replica.read() for replica in group]


def test_twenty_cold_replicas_send_one_token_request(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    redis_server: RedisServer,
    replicas: Callable[..., list[Replica]],
) -> None:
    emu = aioentra_isolated
    scope = new_api(emu, aioentra_app)
    group = replicas(20, redis_server)
    discoveries = emu.requests.count("discovery", tenant=emu.tenant_id)
    answers = ask_all(group, scope)
    assert all(answer["ok"] for answer in answers), answers
    assert len({answer["sha"] for answer in answers}) == 1  # one token, shared
    assert requests_for(emu, aioentra_app, scope) == 1
    # ... and one discovery request: the OpenID configuration is shared as well.
    assert emu.requests.count("discovery", tenant=emu.tenant_id) - discoveries == 1


def test_redis_killed_mid_run_costs_no_caller_error_and_sharing_resumes(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    own_redis: Callable[..., RedisServer],
    replicas: Callable[..., list[Replica]],
) -> None:
    emu = aioentra_isolated
    server = own_redis()
    group = replicas(4, server)
    assert all(a["ok"] for a in ask_all(group, new_api(emu, aioentra_app)))
    server.stop()  # Redis dies under the replicas
    down = new_api(emu, aioentra_app)
    for _ in range(3):
        answers = ask_all(group, down, force=True)
        assert all(answer["ok"] for answer in answers), answers  # local fetches, no error
    server.start()  # the same port again
    deadline = time.monotonic() + 40  # the replicas' back-off is at most 30 s
    while True:
        scope = new_api(emu, aioentra_app)
        assert all(a["ok"] for a in ask_all(group, scope))
        if requests_for(emu, aioentra_app, scope) == 1:
            break  # sharing is back: four cold replicas, one request
        assert time.monotonic() < deadline, "sharing did not resume"
        time.sleep(0.5)


def test_a_killed_lock_holder_is_taken_over_within_its_lease(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    redis_server: RedisServer,
    replicas: Callable[..., list[Replica]],
) -> None:
    import redis

    emu = aioentra_isolated
    scope = new_api(emu, aioentra_app)
    group = replicas(4, redis_server, lock_lease=2.0, wait_timeout=10.0)
    # Warm up msal in each replica (discovery), so that the take-over's request is quick: a
    # request longer than the lease lets a second waiter take over too (harmless, not tested).
    for replica in group:  # a scope of its own each: every replica sends a request itself
        assert ask_all([replica], new_api(emu, aioentra_app))[0]["ok"]
    holder, *others = group
    hang = emu.faults.add(Fault("token", "latency", delay=6.0, client_id=aioentra_app.client_id))
    holder.send(scope)  # takes the lock, then hangs in its token request
    raw = redis.Redis.from_url(redis_server.url)
    try:
        deadline = time.monotonic() + 10
        # The holder took the lock and its request hangs in the emulator (it took the fault).
        while hang in emu.faults.active or not any(raw.scan_iter(match="replicas-*:lock:*")):
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.02)
        started = time.monotonic()
        for replica in others:
            replica.send(scope)
        holder.kill()
        answers = [replica.read() for replica in others]
        took = time.monotonic() - started
    finally:
        raw.close()
    assert all(answer["ok"] for answer in answers), answers
    assert len({answer["sha"] for answer in answers}) == 1
    # One request answered: the take-over's (the dead holder's still hangs in the emulator,
    # which logs a request when it ends) ...
    assert requests_for(emu, aioentra_app, scope) == 1
    deadline = time.monotonic() + 15  # ... until its latency is over: then there are two
    while requests_for(emu, aioentra_app, scope) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)  # the dead holder's, and one more
    assert took < 2.0 + 5  # the lease, then one ordinary request
