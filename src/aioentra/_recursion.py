"""The recursion guard shared by the HTTP client integrations and the token sources.

A token source whose credential makes HTTP requests through a session (or client) that
authenticates with *that same source* would ask itself for a token inside its own fetch and
wait for itself forever. While a source fetches, or a client integration awaits it, the
source is in :data:`ACQUIRING` (a per-task context variable); a request for a source already
in it goes out without a token. Another source's requests made meanwhile (a credential that
reads its secret from a service behind a token of its own) are authenticated as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["ACQUIRING", "acquire"]

T = TypeVar("T")

ACQUIRING: ContextVar[tuple[object, ...]] = ContextVar("aioentra_acquiring_token", default=())
"""The token sources this task is waiting for (usually none: the empty tuple)."""


async def acquire(source: object, pending: Awaitable[T]) -> T:
    """Await ``pending`` (a call of ``source``) with ``source`` in :data:`ACQUIRING`."""
    guard = ACQUIRING.set((*ACQUIRING.get(), source))
    try:
        return await pending
    finally:
        ACQUIRING.reset(guard)
