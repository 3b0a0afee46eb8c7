"""Credentials a :class:`~aioentra.TokenProvider` authenticates with.

One small class per credential form, all satisfying :data:`Credential` (either
:class:`SecretCredential` or :class:`AssertionCredential`), so you can add your own.
"""

from ._assertion import ClientAssertion, ManagedIdentityAssertion
from ._base import AssertionContext, AssertionCredential, Credential, SecretCredential
from ._certificate import Certificate, KeyWithThumbprint
from ._secret import ClientSecret

__all__ = [
    "AssertionContext",
    "AssertionCredential",
    "Certificate",
    "ClientAssertion",
    "ClientSecret",
    "Credential",
    "KeyWithThumbprint",
    "ManagedIdentityAssertion",
    "SecretCredential",
]
