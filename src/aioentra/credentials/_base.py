"""The credential protocol: how an app proves its identity at the token endpoint, and its lifecycle.

The client-credentials grant (RFC 6749 section 4.4) authenticates the client either with a
shared secret (``client_secret``) or with a signed JWT (``client_assertion``, RFC 7523). A
credential is any object with :meth:`Credential.get_proof`, which returns one :class:`Proof`
per token request. A plain method runs in the provider's worker thread (so it may block on a
file or on CPU); a coroutine runs on the event loop.

A credential may also have a lifecycle. Each of these methods is optional and awaited on the
event loop:

``async start()``
    Load what the credential needs before its first use. The provider calls it when it is
    entered (``async with``), or before its first token request.
``async reload(reason) -> bool``
    The token endpoint rejected the proof with one of :data:`RELOAD_CODES`: fetch the
    material again. Return ``True`` if it changed; the provider then retries the token request
    exactly once.
``async close()``
    Release what the credential holds (sessions, tasks). The provider calls it on ``close()``
    for the credentials it owns.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .._errors import AioEntraError

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "RELOAD_CODES",
    "AssertionContext",
    "Credential",
    "Proof",
    "ProofKind",
    "ReloadReason",
    "ReloadableCredential",
    "close_credential",
    "reload_credential",
    "start_credential",
]

ProofKind = Literal["client_secret", "client_assertion"]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

RELOAD_CODES: frozenset[int] = frozenset(
    {
        7000215,  # invalid client secret: it may have been rotated in its store
        7000222,  # the client secret has expired
        700027,  # invalid key or signature: the certificate is not (or no longer) registered
        700024,  # the signed assertion is outside its valid time range
        7000214,  # the certificate was revoked
        1000502,  # the certificate is outside its validity window
        7000274,  # the assertion has an invalid signature
        7000277,  # the certificate was revoked
    }
)
"""AADSTS codes meaning "this credential is wrong or stale: reload it and try once more"."""


@dataclass(frozen=True)
class AssertionContext:
    """What a proof must be bound to.

    Entra requires a client assertion's ``aud`` to be the token endpoint and ``iss`` = ``sub``
    = the client id.
    """

    client_id: str
    token_endpoint: str


@dataclass(frozen=True)
class Proof:
    """What a credential shows the token endpoint: a client secret or a client assertion.

    >>> Proof.secret("s3cr3t")
    Proof(kind='client_secret', value=***)
    """

    kind: ProofKind
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("client_secret", "client_assertion"):
            raise ValueError(f"unknown proof kind {self.kind!r}")

    @classmethod
    def secret(cls, value: str) -> Proof:
        """A ``client_secret``."""
        return cls("client_secret", value)

    @classmethod
    def assertion(cls, value: str) -> Proof:
        """A ``client_assertion`` (a compact JWT signed for the token endpoint)."""
        return cls("client_assertion", value)

    def form(self) -> dict[str, str | None]:
        """The token request's body fields for this proof (``None`` removes a field)."""
        if self.kind == "client_secret":
            return {
                "client_secret": self.value,
                "client_assertion_type": None,
                "client_assertion": None,
            }
        return {
            "client_secret": None,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.value,
        }

    def __repr__(self) -> str:
        return f"Proof(kind={self.kind!r}, value=***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("Proof cannot be pickled: it would copy the secret")


@dataclass(frozen=True)
class ReloadReason:
    """Why the provider asks a credential to reload: the rejection it got."""

    error_codes: tuple[int, ...]
    correlation_id: str | None = None
    message: str = ""

    @classmethod
    def from_error(cls, error: AioEntraError) -> ReloadReason:
        return cls(error.error_codes, error.correlation_id, error.message)


@runtime_checkable
class Credential(Protocol):
    """Anything a :class:`~aioentra.TokenProvider` can authenticate with.

    ``proof_kinds``, if the object has it, says which proofs it can produce (a frozenset of
    ``"client_secret"`` and ``"client_assertion"``); the provider uses it to refuse a wrong
    configuration before the first request.
    """

    def get_proof(self, context: AssertionContext) -> Proof | Awaitable[Proof]:
        """Return the proof for one token request to ``context.token_endpoint``."""
        ...


@runtime_checkable
class ReloadableCredential(Credential, Protocol):
    """A credential whose material can change while the daemon runs."""

    async def reload(self, reason: ReloadReason) -> bool:
        """Fetch the material again; ``True`` if it changed."""
        ...


async def start_credential(credential: object) -> None:
    """Run the credential's optional ``start()``."""
    await _maybe(credential, "start")


async def reload_credential(credential: object, reason: ReloadReason) -> bool:
    """Run the credential's optional ``reload(reason)``; ``False`` if it has none."""
    return bool(await _maybe(credential, "reload", reason))


async def close_credential(credential: object) -> None:
    """Run the credential's optional ``close()``."""
    await _maybe(credential, "close")


async def _maybe(credential: object, name: str, *args: object) -> object:
    method = getattr(credential, name, None)
    if method is None or not callable(method):
        return None
    result = method(*args)
    if inspect.isawaitable(result):
        return await result
    return result
