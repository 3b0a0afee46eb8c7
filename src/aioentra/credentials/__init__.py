"""Credentials a :class:`~aioentra.TokenProvider` authenticates with.

One small class per credential form, all satisfying :class:`Credential` (one method,
``get_proof(context)``, plus an optional ``start()`` / ``reload(reason)`` / ``close()``
lifecycle), so you can add your own.

The certificate and Key Vault credentials load on first use (with PyJWT, cryptography and the
Key Vault SDKs behind them): a secret-only app never imports those.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from ._chain import CredentialChain
from ._secret import ClientSecret

if TYPE_CHECKING:
    from ._certificate import Certificate as Certificate, KeyWithThumbprint as KeyWithThumbprint
    from ._keyvault import (
        KeyVaultCertificate as KeyVaultCertificate,
        KeyVaultSecret as KeyVaultSecret,
    )

# name -> the module that defines it, imported on first use (``__getattr__``, below).
_LAZY: dict[str, str] = {
    "Certificate": "._certificate",
    "KeyWithThumbprint": "._certificate",
    "KeyVaultCertificate": "._keyvault",
    "KeyVaultSecret": "._keyvault",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
