"""The access-token value handed to callers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["AccessToken"]


@dataclass(frozen=True)
class AccessToken:
    """An app-only access token and its timing.

    ``expires_on`` and ``refresh_on`` are Unix timestamps (seconds). The token
    value never appears in ``repr()`` or ``str()``: only use it in the
    ``Authorization`` header of requests to the resource it was issued for.
    """

    token: str = field(repr=False)
    expires_on: float
    refresh_on: float
    scope: str
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return (
            f"AccessToken(scope={self.scope!r}, token_type={self.token_type!r}, "
            f"expires_on={self.expires_on:.0f}, refresh_on={self.refresh_on:.0f}, token=***)"
        )

    __str__ = __repr__

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value: ``"Bearer <token>"``."""
        return f"{self.token_type} {self.token}"

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return self.expires_on - (time.time() if now is None else now)
