"""Helpers for testing code that uses aioentra.

``ManualClock`` drives every due time of a :class:`~aioentra.TokenProvider` (``clock=``):
refresh-ahead, the must-refresh window, back-off and the renewal limit, without sleeping::

    clock = ManualClock()
    provider = TokenProvider(credential, ..., clock=clock)
    token = await provider.get_token(scope)
    clock.advance(3000)          # into the token's refresh-ahead window
    await provider.get_token(scope)   # the same token, and one background refresh

The emulator's pytest fixtures are in :mod:`aioentra.pytest_plugin`.
"""

from ._flight import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock"]
