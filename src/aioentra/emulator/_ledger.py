"""What an emulator knows is secret: the values it handed out or was shown, for leak checks.

A test suite can fail any test whose log output carries a secret the emulator knows (the
pytest plugin's ``aioentra_secret_guard``). Most of those secrets are shapeless -- a generated
client secret is 40 random characters -- so they can only be found by value, and many live only
inside one test: an app registered and removed by a fixture, a token minted and discarded.
:class:`SecretLedger` remembers them past their registration, in two bounded windows so that a
long-running emulator (``aioentra emulator serve``, the demo) does not grow without end and a
test minting thousands of tokens does not push out the credentials it registered:

* credentials -- client secrets and certificate private keys, registered or generated;
* tokens -- access tokens minted and client assertions (and secrets) received.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["CREDENTIALS_KEPT", "TOKENS_KEPT", "SecretLedger"]

CREDENTIALS_KEPT = 1024
"""How many credential values (client secrets, private keys) a ledger keeps, newest first."""

TOKENS_KEPT = 256
"""How many minted tokens and received assertions a ledger keeps, newest first."""


class _Window:
    """An insertion-ordered set of at most ``size`` strings; adding evicts the oldest."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, None] = OrderedDict()

    def add(self, value: str) -> None:
        self._items[value] = None
        self._items.move_to_end(value)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def values(self) -> list[str]:
        return list(self._items)


class SecretLedger:
    """The most recent secret values an emulator handed out or received (thread-safe, bounded).

    Empty strings are ignored. :meth:`values` is a snapshot; the live registrations (apps'
    current secrets, vault secrets, the managed-identity header) are not kept here but read
    from the emulator's state by :meth:`~aioentra.emulator.Emulator.known_secrets`.
    """

    def __init__(self, *, credentials: int = CREDENTIALS_KEPT, tokens: int = TOKENS_KEPT) -> None:
        self._lock = threading.Lock()
        self._credentials = _Window(credentials)
        self._tokens = _Window(tokens)

    def add_credential(self, value: str | bytes | None) -> None:
        """Remember a client secret or a private key (PEM bytes are decoded as ASCII)."""
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        if text:
            with self._lock:
                self._credentials.add(text)

    def add_token(self, value: str | None) -> None:
        """Remember a minted access token, or an assertion or secret a client presented."""
        if value:
            with self._lock:
                self._tokens.add(value)

    def values(self) -> frozenset[str]:
        """Every value still remembered, of both kinds."""
        with self._lock:
            return frozenset(self._credentials.values() + self._tokens.values())
