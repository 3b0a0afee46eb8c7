"""aioentra: async app-only tokens from Microsoft Entra ID for Python daemons.

The one object an app holds is :class:`TokenProvider`::

    from aioentra import ClientSecret, TokenProvider

    async with TokenProvider(ClientSecret(secret), tenant_id=tenant, client_id=client) as p:
        token = await p.get_token("api://my-api/.default")

Importing ``aioentra`` is cheap: the modules behind the public names (and msal,
aiohttp and cryptography) load on first use, so the pytest plugin costs nothing
in test suites that never use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._authority import AZURE_CHINA, AZURE_GOVERNMENT, AZURE_PUBLIC_CLOUD, validate_scope
    from ._azure import AzureCredential
    from ._config import Settings
    from ._errors import (
        AioEntraError,
        ApplicationNotFoundError,
        AuthenticationError,
        ConfigurationError,
        ConsentRequiredError,
        CredentialRejectedError,
        CredentialUnavailableError,
        IdentityProviderUnavailableError,
        InvalidScopeError,
        ProviderClosedError,
        TenantNotFoundError,
        ThrottledError,
    )
    from ._policy import RefreshPolicy, RetryPolicy
    from ._provider import TokenProvider
    from ._token import AccessToken
    from .credentials import (
        AssertionContext,
        AssertionCredential,
        Certificate,
        ClientAssertion,
        ClientSecret,
        Credential,
        KeyWithThumbprint,
        ManagedIdentityAssertion,
        SecretCredential,
    )

__version__ = "0.1.0.dev0"

_LAZY: dict[str, str] = {
    "AZURE_CHINA": "._authority",
    "AZURE_GOVERNMENT": "._authority",
    "AZURE_PUBLIC_CLOUD": "._authority",
    "validate_scope": "._authority",
    "AzureCredential": "._azure",
    "Settings": "._config",
    "AioEntraError": "._errors",
    "ApplicationNotFoundError": "._errors",
    "AuthenticationError": "._errors",
    "ConfigurationError": "._errors",
    "ConsentRequiredError": "._errors",
    "CredentialRejectedError": "._errors",
    "CredentialUnavailableError": "._errors",
    "ProviderClosedError": "._errors",
    "IdentityProviderUnavailableError": "._errors",
    "InvalidScopeError": "._errors",
    "TenantNotFoundError": "._errors",
    "ThrottledError": "._errors",
    "RefreshPolicy": "._policy",
    "RetryPolicy": "._policy",
    "TokenProvider": "._provider",
    "AccessToken": "._token",
    "AssertionContext": ".credentials",
    "AssertionCredential": ".credentials",
    "Certificate": ".credentials",
    "ClientAssertion": ".credentials",
    "ClientSecret": ".credentials",
    "Credential": ".credentials",
    "KeyWithThumbprint": ".credentials",
    "ManagedIdentityAssertion": ".credentials",
    "SecretCredential": ".credentials",
}

__all__ = [
    "AZURE_CHINA",
    "AZURE_GOVERNMENT",
    "AZURE_PUBLIC_CLOUD",
    "AccessToken",
    "AioEntraError",
    "ApplicationNotFoundError",
    "AssertionContext",
    "AssertionCredential",
    "AuthenticationError",
    "AzureCredential",
    "Certificate",
    "ClientAssertion",
    "ClientSecret",
    "ConfigurationError",
    "ConsentRequiredError",
    "Credential",
    "CredentialRejectedError",
    "CredentialUnavailableError",
    "IdentityProviderUnavailableError",
    "InvalidScopeError",
    "KeyWithThumbprint",
    "ManagedIdentityAssertion",
    "ProviderClosedError",
    "RefreshPolicy",
    "RetryPolicy",
    "SecretCredential",
    "Settings",
    "TenantNotFoundError",
    "ThrottledError",
    "TokenProvider",
    "__version__",
    "validate_scope",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aioentra' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
