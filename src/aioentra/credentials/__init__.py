"""Credentials a :class:`~aioentra.TokenProvider` authenticates with.

One small class per credential form, all satisfying :class:`Credential` (one method,
``get_proof(context)``, plus an optional ``start()`` / ``reload(reason)`` / ``close()``
lifecycle), so you can add your own.
"""

from ._assertion import ClientAssertion, ManagedIdentityAssertion
from ._base import (
    RELOAD_CODES,
    AssertionContext,
    Credential,
    Proof,
    ProofKind,
    ReloadableCredential,
    ReloadReason,
)
from ._certificate import Certificate, KeyWithThumbprint
from ._chain import CredentialChain
from ._keyvault import KeyVaultCertificate, KeyVaultSecret
from ._secret import ClientSecret

__all__ = [
    "RELOAD_CODES",
    "AssertionContext",
    "Certificate",
    "ClientAssertion",
    "ClientSecret",
    "Credential",
    "CredentialChain",
    "KeyVaultCertificate",
    "KeyVaultSecret",
    "KeyWithThumbprint",
    "ManagedIdentityAssertion",
    "Proof",
    "ProofKind",
    "ReloadReason",
    "ReloadableCredential",
]
