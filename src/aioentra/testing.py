"""Helpers for testing code that uses aioentra.

``ManualClock`` drives every due time of a :class:`~aioentra.TokenProvider` (``clock=``):
refresh-ahead, the must-refresh window, back-off and the renewal limit, without sleeping::

    clock = ManualClock()
    provider = TokenProvider(credential, ..., clock=clock)
    token = await provider.get_token(scope)
    clock.advance(3000)          # into the token's refresh-ahead window
    await provider.get_token(scope)   # the same token, and one background refresh

``SecretGuard`` captures every log record at DEBUG while it is open and reports any secret in
them, by shape (JWTs, PEM blocks, ``client_secret=``, ``Bearer ...``) or by value (what the
emulators and credentials of the test know, and what is passed to ``add()``)::

    with SecretGuard() as guard:
        await provider.get_token(scope)
    assert guard.report() is None, guard.report()

The emulator's pytest fixtures are in :mod:`aioentra.pytest_plugin` (``aioentra_secret_guard``
is this guard, one per test).
"""

from ._flight import Clock, ManualClock, SystemClock
from ._secret_guard import SecretGuard

__all__ = ["Clock", "ManualClock", "SecretGuard", "SystemClock"]
