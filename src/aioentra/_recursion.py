"""The recursion guard shared by the HTTP client integrations and the token sources.

A token source whose credential makes HTTP requests through a session (or client) that
authenticates with *that same source* would ask itself for a token inside its own fetch and
wait for itself forever. While a source fetches, or a client integration awaits it, the
source is in :data:`ACQUIRING` (a per-task context variable); a request for a source already
in it goes out without a token. Another source's requests made meanwhile (a credential that
reads its secret from a service behind a token of its own) are authenticated as usual.

The integrations first take a warm token synchronously (:func:`peek_of`): that awaits
nothing, so it cannot wait for itself, and the guard is read and set only when the source
must be awaited. A request from inside the source's own fetch may so carry the warm token
(the fetch is a refresh ahead); a ``401`` to it is returned as it is, since the new token it
asks for would be that very fetch's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ._token import AccessToken

__all__ = ["ACQUIRING", "Peek", "acquire", "peek_of"]

T = TypeVar("T")

ACQUIRING: ContextVar[tuple[object, ...]] = ContextVar("aioentra_acquiring_token", default=())
"""The token sources this task is waiting for (usually none: the empty tuple)."""


Peek = Callable[[str], "AccessToken | None"]
"""A source's ``peek_token``: the warm token for a scope, or ``None`` to await ``get_token``."""


def peek_of(source: object) -> Peek | None:
    """``source.peek_token`` if it has one (:meth:`aioentra.TokenProvider.peek_token`).

    A third-party source (the ``TokenSource`` protocol asks only for ``get_token`` and
    ``renew_token``) has none and is always awaited.
    """
    peek = getattr(source, "peek_token", None)
    return peek if callable(peek) else None


async def acquire(source: object, pending: Awaitable[T]) -> T:
    """Await ``pending`` (a call of ``source``) with ``source`` in :data:`ACQUIRING`."""
    guard = ACQUIRING.set((*ACQUIRING.get(), source))
    try:
        return await pending
    finally:
        ACQUIRING.reset(guard)
