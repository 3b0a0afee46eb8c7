"""A local Microsoft Entra ID identity platform for tests and local development.

The :class:`Emulator` serves the Entra v2.0 endpoints (OIDC discovery, JWKS, instance discovery and
the client-credentials token endpoint) over HTTPS on loopback, so that unmodified ``msal`` and
``azure-identity`` clients get real, verifiable tokens offline -- v2.0 tokens, or v1.0 ones for an
API added with ``access_token_version=1`` (with the v1 discovery document and JWKS path for the
APIs that validate them; ``rotate_signing_key()`` rolls the signing key). It also serves a Key Vault
(:mod:`.keyvault`: secrets, certificates, their keys) and a managed-identity host
(:mod:`.identity`: the App Service and IMDS endpoints)::

    from aioentra.emulator import Emulator

    async with Emulator() as emu:
        app = emu.add_app("daemon")
        api = emu.add_api("api://orders", roles=["Orders.Read"])
        emu.grant(app, api, ["Orders.Read"])
        # point a client at emu.authority, trusting emu.ca_file
"""

from ._certs import CertificateMaterial
from ._config import EmulatorConfig
from ._emulator import Emulator
from ._faults import Fault, FaultPlan
from ._model import Api, App, Tenant
from ._requestlog import RequestLog, RequestRecord
from ._state import InvalidTokenError
from .identity import MANAGED_IDENTITY_VARIABLES, ManagedIdentity, ManagedIdentityServer
from .keyvault import KeyVault, SecretVersion

__all__ = [
    "MANAGED_IDENTITY_VARIABLES",
    "Api",
    "App",
    "CertificateMaterial",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "FaultPlan",
    "InvalidTokenError",
    "KeyVault",
    "ManagedIdentity",
    "ManagedIdentityServer",
    "RequestLog",
    "RequestRecord",
    "SecretVersion",
    "Tenant",
]
