"""Helpers for the Redis cache tests: a redis-server process, keys, tokens, a scripted token
request, a manual clock.

(``tests/redis`` has no ``__init__.py`` on purpose: as a package it would be named ``redis``,
since ``tests`` is not one, and would shadow redis-py. This module is imported by its own name.)
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from aioentra._cache import CachedToken

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
KEY_A_B64 = base64.b64encode(KEY_A).decode()


def token(access_token: str = "eyJ.secret-token.sig", *, lifetime: float = 3600.0) -> CachedToken:
    return CachedToken(access_token, time.time(), lifetime, lifetime / 2)


class Issuer:
    """A scripted token request: counts calls, can be slow, fails when told to."""

    def __init__(self, *, delay: float = 0.0, lifetime: float = 3600.0) -> None:
        self.calls = 0
        self.delay = delay
        self.lifetime = lifetime
        self.errors: list[BaseException] = []
        self.issued: list[CachedToken] = []

    async def __call__(self) -> CachedToken:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None
        if self.delay:
            await asyncio.sleep(self.delay)
        if error is not None:
            raise error
        issued = token(f"eyJ.token-{self.calls}-{uuid.uuid4().hex}.sig", lifetime=self.lifetime)
        self.issued.append(issued)
        return issued


class Clock:
    """A monotonic clock that moves when told to (the back-off's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: no persistence, loopback only; stop and start it at will."""

    def __init__(self, binary: str, workdir: Path, *extra: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.extra = extra
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 5.0) -> None:
        log = self.workdir / f"redis-{self.port}.log"
        args = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self.workdir), "--logfile", str(log)),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.01)
        self.stop()
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{tail}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        # +PONG, or -NOAUTH when a password is required: either way the server is up.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
