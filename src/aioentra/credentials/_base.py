"""The credential protocols: how an app proves its identity at the token endpoint.

The client-credentials grant (RFC 6749 section 4.4) authenticates the client
either with a shared secret (``client_secret``) or with a signed JWT
(``client_assertion``, RFC 7523). A credential is any object with one of the two
methods below; implement either to plug in your own source. Both may return a
value or an awaitable: plain methods run in the provider's worker thread (so
they may block on files or CPU), coroutines run on the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = ["AssertionContext", "AssertionCredential", "Credential", "SecretCredential"]


@dataclass(frozen=True)
class AssertionContext:
    """What a client assertion must be bound to.

    Entra requires ``aud`` = the token endpoint and ``iss`` = ``sub`` = the client id.
    """

    client_id: str
    token_endpoint: str


@runtime_checkable
class SecretCredential(Protocol):
    """A credential that sends ``client_secret``."""

    def get_secret(self) -> str | Awaitable[str]:
        """Return the current client secret value."""
        ...


@runtime_checkable
class AssertionCredential(Protocol):
    """A credential that sends a ``client_assertion`` (a JWT signed for the token endpoint)."""

    def get_assertion(self, context: AssertionContext) -> str | Awaitable[str]:
        """Return a client assertion valid for ``context``."""
        ...


Credential: TypeAlias = SecretCredential | AssertionCredential
"""Anything a :class:`~aioentra.TokenProvider` can authenticate with."""
