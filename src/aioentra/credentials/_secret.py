"""A client secret (``client_secret`` in the token request body)."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import AssertionContext, Proof, ProofKind

__all__ = ["ClientSecret"]


class ClientSecret:
    """A client secret registered on the app ("Certificates & secrets" → Value).

    >>> ClientSecret("s3cr3t")
    ClientSecret(***)
    """

    __slots__ = ("_proof",)

    proof_kinds: frozenset[ProofKind] = frozenset({"client_secret"})

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                "the client secret is empty"
                if isinstance(value, str)
                else f"the client secret must be a string, not {type(value).__name__}",
                hint="set AZURE_CLIENT_SECRET or pass the secret's Value from the app "
                "registration.",
            )
        self._proof = Proof.secret(value)

    def get_proof(self, context: AssertionContext) -> Proof:
        return self._proof

    def get_secret(self) -> str:
        """The secret value."""
        return self._proof.value

    def __repr__(self) -> str:
        return "ClientSecret(***)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("ClientSecret cannot be pickled: it would copy the secret")
