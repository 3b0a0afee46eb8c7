"""An ordered chain of credentials: the first that loads serves; a rejection moves it on.

This is Microsoft.Identity.Web's ``ClientCredentials`` list, with one difference: a credential
the token endpoint rejects with a reload code is first asked to reload (a Key Vault secret
rotated in its vault comes back with its new version); only when it finds nothing new does the
chain move to the next credential. Either way the provider retries its request once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence

from .._errors import AioEntraError, ConfigurationError, CredentialUnavailableError
from ._base import (
    AssertionContext,
    Credential,
    Proof,
    ProofKind,
    ReloadReason,
    close_credential,
    reload_credential,
    start_credential,
)

__all__ = ["CredentialChain"]

logger = logging.getLogger("aioentra.credentials")


class CredentialChain:
    """Try ``credentials`` in order.

    >>> vault_first = [KeyVaultCertificate(vault, "cert"), ClientSecret(secret)]  # doctest: +SKIP
    >>> chain = CredentialChain(vault_first)  # doctest: +SKIP

    * ``start()`` starts them in order and keeps the first that loads (a credential without
      ``start()`` always loads).
    * When the token endpoint rejects the one serving with a reload code, ``reload()`` asks it
      to reload; if it has nothing new, the chain moves to the next one that loads. Which one
      serves is logged (its ``repr``, never a secret).
    * ``close()`` closes every member whose start was tried.
    """

    def __init__(self, credentials: Sequence[Credential]) -> None:
        try:
            members = list(credentials) if not isinstance(credentials, (str, bytes)) else []
        except TypeError:
            raise ConfigurationError("CredentialChain takes a list of credentials") from None
        if not members:
            raise ConfigurationError("CredentialChain needs at least one credential")
        for member in members:
            if not isinstance(member, Credential):
                raise ConfigurationError(
                    f"{type(member).__name__} in a CredentialChain is not a credential"
                )
        self._members = members
        self._index = -1
        self._started: set[int] = set()
        kinds: set[ProofKind] = set()
        for member in members:
            kinds |= set(getattr(member, "proof_kinds", ("client_secret", "client_assertion")))
        self.proof_kinds: frozenset[ProofKind] = frozenset(kinds)

    @property
    def current(self) -> Credential | None:
        """The credential serving now (``None`` before ``start()``)."""
        return self._members[self._index] if self._index >= 0 else None

    async def start(self) -> None:
        await self._advance(0, why="starting")

    def get_proof(self, context: AssertionContext) -> Proof | Awaitable[Proof]:
        current = self.current
        if current is None:
            raise CredentialUnavailableError(
                "the credential chain has not started",
                hint="enter the provider (async with) or let its first request start it.",
            )
        return current.get_proof(context)

    async def reload(self, reason: ReloadReason) -> bool:
        current = self.current
        if current is not None:
            try:
                if await reload_credential(current, reason):
                    return True
            except AioEntraError as error:
                logger.warning("reloading %r failed: %s", current, error.message)
        if self._index + 1 >= len(self._members):
            logger.warning("credential chain: %r was rejected and is the last one", current)
            return False
        try:
            await self._advance(self._index + 1, why=f"{current!r} was rejected")
        except AioEntraError:
            return False
        return True

    async def close(self) -> None:
        for index in sorted(self._started):
            await close_credential(self._members[index])
        self._started.clear()

    def __repr__(self) -> str:
        members = getattr(self, "_members", [])
        return f"CredentialChain({', '.join(repr(m) for m in members)})"

    async def _advance(self, first: int, *, why: str) -> None:
        failures: list[str] = []
        for index in range(first, len(self._members)):
            member = self._members[index]
            self._started.add(index)  # even a failed start may have opened something to close
            try:
                await start_credential(member)
            except Exception as error:  # any failure to load moves on to the next one
                reason = getattr(error, "message", None) or type(error).__name__
                failures.append(f"{member!r}: {reason}")
                logger.warning("credential chain: %r did not load: %s", member, reason)
                continue
            self._index = index
            logger.info("credential chain: %r serves (%s)", member, why)
            return
        raise CredentialUnavailableError(
            "no credential of the chain loaded: " + "; ".join(failures),
            hint="see why each one failed; the next request tries again.",
        )
