"""aioentra: async app-only tokens from Microsoft Entra ID for Python daemons.

The one object an app holds is :class:`TokenProvider`::

    from aioentra import ClientSecret, TokenProvider

    async with TokenProvider(ClientSecret(secret), tenant_id=tenant, client_id=client) as p:
        token = await p.get_token("api://my-api/.default")
"""

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
    IdentityProviderUnavailableError,
    InvalidScopeError,
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
    "IdentityProviderUnavailableError",
    "InvalidScopeError",
    "KeyWithThumbprint",
    "ManagedIdentityAssertion",
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
