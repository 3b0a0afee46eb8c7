"""aioentra: async app-only tokens from Microsoft Entra ID for Python daemons.

The one object an app holds is :class:`TokenProvider`::

    from aioentra import ClientSecret, TokenProvider

    async with TokenProvider(ClientSecret(secret), tenant_id=tenant, client_id=client) as p:
        token = await p.get_token("api://my-api/.default")

Importing ``aioentra`` is cheap: the modules behind the public names load on first
use, so the pytest plugin costs nothing in test suites that never use it. Importing
and building a :class:`TokenProvider` loads neither aiohttp, msal, cryptography nor
the Azure SDKs: aiohttp loads when it starts and msal with its first token request
(each in a worker thread), cryptography and PyJWT with a credential that signs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # `X as X`: an explicit re-export for type checkers (the runtime imports lazily, below).
    from ._authority import (
        AZURE_CHINA as AZURE_CHINA,
        AZURE_GOVERNMENT as AZURE_GOVERNMENT,
        AZURE_PUBLIC_CLOUD as AZURE_PUBLIC_CLOUD,
        validate_scope as validate_scope,
    )
    from ._azure import (
        AzureCredential as AzureCredential,
    )
    from ._config import (
        DownstreamApi as DownstreamApi,
        Settings as Settings,
    )
    from ._errors import (
        AioEntraError as AioEntraError,
        ApplicationNotFoundError as ApplicationNotFoundError,
        AuthenticationError as AuthenticationError,
        ConfigurationError as ConfigurationError,
        ConsentRequiredError as ConsentRequiredError,
        CredentialRejectedError as CredentialRejectedError,
        CredentialUnavailableError as CredentialUnavailableError,
        IdentityProviderUnavailableError as IdentityProviderUnavailableError,
        InsufficientPermissionsError as InsufficientPermissionsError,
        InvalidScopeError as InvalidScopeError,
        InvalidTokenError as InvalidTokenError,
        KeyVaultError as KeyVaultError,
        ProviderClosedError as ProviderClosedError,
        SecretsNotLoadedError as SecretsNotLoadedError,
        TenantNotFoundError as TenantNotFoundError,
        ThrottledError as ThrottledError,
        TokenValidationError as TokenValidationError,
    )
    from ._flight import (
        FetchReason as FetchReason,
    )
    from ._managed_identity import (
        ManagedIdentityProvider as ManagedIdentityProvider,
    )
    from ._policy import (
        RefreshPolicy as RefreshPolicy,
        RetryPolicy as RetryPolicy,
    )
    from ._provider import (
        ProviderOptions as ProviderOptions,
        TokenProvider as TokenProvider,
    )
    from ._stats import (
        KeyStats as KeyStats,
        TokenStats as TokenStats,
    )
    from ._telemetry import (
        FetchEvent as FetchEvent,
        FetchSpan as FetchSpan,
        RequestSpan as RequestSpan,
        Telemetry as Telemetry,
    )
    from ._token import (
        AccessToken as AccessToken,
        ServedFrom as ServedFrom,
        TokenMetadata as TokenMetadata,
    )
    from ._validation import (
        Claims as Claims,
    )
    from ._validator import (
        TokenValidator as TokenValidator,
    )
    from .credentials import (
        RELOAD_CODES as RELOAD_CODES,
        AssertionContext as AssertionContext,
        Certificate as Certificate,
        ClientAssertion as ClientAssertion,
        ClientSecret as ClientSecret,
        Credential as Credential,
        CredentialChain as CredentialChain,
        KeyVaultCertificate as KeyVaultCertificate,
        KeyVaultSecret as KeyVaultSecret,
        KeyWithThumbprint as KeyWithThumbprint,
        ManagedIdentityAssertion as ManagedIdentityAssertion,
        Proof as Proof,
        ReloadableCredential as ReloadableCredential,
        ReloadReason as ReloadReason,
    )

__version__ = "0.1.0.dev0"

# The one list of public names: name -> the module that defines it (imported on first use).
# The TYPE_CHECKING block above names them again for type checkers; a test keeps the two equal.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("AZURE_CHINA", "AZURE_GOVERNMENT", "AZURE_PUBLIC_CLOUD", "validate_scope"), "._authority"
    ),
    "AzureCredential": "._azure",
    **dict.fromkeys(("DownstreamApi", "Settings"), "._config"),
    **dict.fromkeys(
        (
            "AioEntraError",
            "ApplicationNotFoundError",
            "AuthenticationError",
            "ConfigurationError",
            "ConsentRequiredError",
            "CredentialRejectedError",
            "CredentialUnavailableError",
            "IdentityProviderUnavailableError",
            "InsufficientPermissionsError",
            "InvalidScopeError",
            "InvalidTokenError",
            "KeyVaultError",
            "ProviderClosedError",
            "SecretsNotLoadedError",
            "TenantNotFoundError",
            "ThrottledError",
            "TokenValidationError",
        ),
        "._errors",
    ),
    "FetchReason": "._flight",
    "ManagedIdentityProvider": "._managed_identity",
    **dict.fromkeys(("RefreshPolicy", "RetryPolicy"), "._policy"),
    **dict.fromkeys(("ProviderOptions", "TokenProvider"), "._provider"),
    **dict.fromkeys(("KeyStats", "TokenStats"), "._stats"),
    **dict.fromkeys(("FetchEvent", "FetchSpan", "RequestSpan", "Telemetry"), "._telemetry"),
    **dict.fromkeys(("AccessToken", "ServedFrom", "TokenMetadata"), "._token"),
    "Claims": "._validation",
    "TokenValidator": "._validator",
    **dict.fromkeys(
        (
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
            "ReloadReason",
            "ReloadableCredential",
        ),
        ".credentials",
    ),
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aioentra' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
