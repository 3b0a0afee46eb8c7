"""What needs msal itself, in a module of its own: imported on the first token request.

:func:`aioentra._engine.load_msal` imports this module once, in the worker thread that runs
msal, so importing :class:`~aioentra.TokenProvider` does not load msal (nor requests, behind
it) and the event loop never waits for the import.
"""

from __future__ import annotations

from typing import Any

import msal

__all__ = ["NoTokenCache", "msal"]


class NoTokenCache(msal.TokenCache):  # type: ignore[misc]
    """An msal token cache that keeps nothing: the provider's cache is the only one."""

    def add(self, event: Any, now: Any = None) -> None:
        return None
