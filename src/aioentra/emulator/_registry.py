"""Which emulators exist, so that a leak check can ask each of them what is secret.

Every :class:`~aioentra.emulator.Emulator` announces itself here with :func:`track` when it is
constructed, and a leak check (the pytest plugin's ``aioentra_secret_guard``) asks each one for
its :meth:`~aioentra.emulator.Emulator.known_secrets`. Not all of a test's emulators are
reachable from its fixtures -- a test may build one in its own body; the CLI and the demo build
theirs -- and one built inside a test is usually garbage by the time the test's teardown looks
for leaks. So :func:`watching` holds strong references to the emulators created while it is
open (and to the ones alive when it opened) and lets go of them when it closes; otherwise only
weak references are kept.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["track", "watching"]

_lock = threading.Lock()
_live: weakref.WeakSet[Emulator] = weakref.WeakSet()
_watches: list[list[Emulator]] = []


def track(emulator: Emulator) -> None:
    """Announce a new emulator (``Emulator.__init__`` calls it)."""
    with _lock:
        _live.add(emulator)
        for watch in _watches:
            watch.append(emulator)


@contextlib.contextmanager
def watching() -> Iterator[Callable[[], list[Emulator]]]:
    """Yield a function returning the emulators alive at entry or created before exit."""
    with _lock:
        seen: list[Emulator] = list(_live)
        _watches.append(seen)

    def emulators() -> list[Emulator]:
        with _lock:
            return list(seen)

    try:
        yield emulators
    finally:
        with _lock:
            _watches.remove(seen)
