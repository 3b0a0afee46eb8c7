"""Loopback listening sockets and the background-thread runner.

The emulator listens on ``127.0.0.1`` and, when the host has IPv6, on ``::1`` with the *same* port,
because clients resolve ``localhost`` to either. With an ephemeral port the IPv4 port is picked
first and retried a few times if that port happens to be taken on ``::1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator

__all__ = ["bind_loopback", "run_in_thread"]


def _listen_socket(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_loopback(port: int = 0, *, attempts: int = 20) -> list[socket.socket]:
    """Bound (not yet listening) sockets on 127.0.0.1 and, if possible, ::1 sharing one port."""
    for _ in range(attempts if port == 0 else 1):
        v4 = _listen_socket(socket.AF_INET, "127.0.0.1", port)
        chosen = v4.getsockname()[1]
        if not socket.has_ipv6:
            return [v4]
        try:
            v6 = _listen_socket(socket.AF_INET6, "::1", chosen)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and port == 0:
                v4.close()
                continue
            return [v4]  # no IPv6 loopback here: serve IPv4 only
        return [v4, v6]
    raise OSError(errno.EADDRINUSE, "no free port shared by 127.0.0.1 and ::1")


@contextlib.contextmanager
def run_in_thread(
    start: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    *,
    timeout: float = 60.0,
    name: str = "aioentra-emulator",
) -> Iterator[None]:
    """Run ``start()`` on a private event loop in a daemon thread, and ``close()`` on exit.

    The loop, its default executor and the thread are all shut down before this returns, so nothing
    outlives the block (no leaked threads or unclosed loops).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()

    def call(factory: Callable[[], Awaitable[None]]) -> None:
        async def runner() -> None:
            await factory()

        asyncio.run_coroutine_threadsafe(runner(), loop).result(timeout)

    try:
        call(start)
        try:
            yield
        finally:
            call(close)
    finally:
        try:
            call(loop.shutdown_asyncgens)
            call(loop.shutdown_default_executor)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
