"""The identity-platform half of the emulator: discovery, the token endpoint, client
assertions, scopes, token minting and the managed-identity host.

From the bottom up: ``_signing`` (the RS256 key and JWKS entry), ``_minting`` (the one
minter), ``_scopes`` and ``_assertion`` (request checks), ``_token_endpoint`` and
``_discovery`` (the HTTPS routes), ``_mi_identities``, ``_mi_forms`` and
``_managed_identity`` (the App Service and IMDS endpoints).
"""

from ._managed_identity import MANAGED_IDENTITY_VARIABLES, ManagedIdentity, ManagedIdentityServer
from ._minting import MintedToken, TokenMinter

__all__ = [
    "MANAGED_IDENTITY_VARIABLES",
    "ManagedIdentity",
    "ManagedIdentityServer",
    "MintedToken",
    "TokenMinter",
]
