"""Reaching Key Vault: the azure-keyvault-* clients, their identity and TLS, and their errors.

Every Key Vault entry point of the SDK (the Key Vault credentials and ``load_secrets``) goes
through :class:`VaultAccess`, so the same rules hold everywhere:

* **Identity.** ``credential=`` is any azure-core ``AsyncTokenCredential`` (an aioentra
  provider's ``as_azure_credential()``, or azure-identity's ``DefaultAzureCredential`` on a
  developer machine). By default it is this machine's managed identity, through a
  :class:`~aioentra.ManagedIdentityProvider` that the access owns and closes. Its vault tokens
  are single-flight like every token of the SDK.
* **TLS.** Verification is on. ``ca_file=`` or ``ssl_context=`` trust a local vault's CA (the
  emulator's); the CA bundle is read in a thread of our own, once, never on the loop. Without
  either, the system's trust store (and ``SSL_CERT_FILE``) applies.
  ``verify_challenge_resource`` is the SDK's check that the vault's challenge names a resource
  the vault's host belongs to; a loopback vault cannot pass it, so by default (``None``) it is
  on for every vault but a loopback one.
* **Errors.** Whatever the clients raise becomes a :class:`~aioentra.KeyVaultError` with the
  vault's status, error code and a hint; never a secret value.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ._authority import is_loopback_host
from ._errors import AioEntraError, ConfigurationError, KeyVaultError, fresh
from ._policy import parse_retry_after
from ._tls import checked_ssl_context, load_verify_context

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.keyvault.certificates.aio import CertificateClient
    from azure.keyvault.keys.crypto.aio import CryptographyClient
    from azure.keyvault.secrets.aio import SecretClient

    from ._managed_identity import ManagedIdentityProvider

__all__ = ["VaultAccess", "check_vault_url", "vault_error"]

logger = logging.getLogger("aioentra.keyvault")
C = TypeVar("C")


def check_vault_url(vault_url: object) -> str:
    """``https://{name}.vault.azure.net`` (any https host; plain http never)."""
    if not isinstance(vault_url, str) or not vault_url.strip():
        raise ConfigurationError(
            "vault_url is missing", hint="use the vault's URI, e.g. https://contoso.vault.azure.net"
        )
    try:
        parts = urlsplit(vault_url.strip())
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme != "https":
        raise ConfigurationError(
            f"vault_url {vault_url!r} is not an https URL",
            hint="use the vault's URI, e.g. https://contoso.vault.azure.net (Key Vault is "
            "https only)",
        )
    return vault_url.strip().rstrip("/")


class VaultAccess:
    """The clients one Key Vault entry point uses, built once on the loop and closed together."""

    def __init__(
        self,
        vault_url: str,
        *,
        credential: AsyncTokenCredential | None = None,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify_challenge_resource: bool | None = None,
    ) -> None:
        self.vault_url = check_vault_url(vault_url)
        loopback = is_loopback_host(urlsplit(self.vault_url).hostname or "")
        if verify_challenge_resource is None:
            verify_challenge_resource = not loopback
        if ca_file is not None and ssl_context is not None:
            raise ConfigurationError("pass ca_file or ssl_context, not both")
        if ssl_context is not None:
            checked_ssl_context(ssl_context, "ssl_context")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigurationError("ca_file must be a path (str)")
        if credential is not None and not callable(getattr(credential, "get_token", None)):
            raise ConfigurationError(
                "credential must be an azure-core AsyncTokenCredential",
                hint="e.g. provider.as_azure_credential(), or azure-identity's aio "
                "DefaultAzureCredential().",
            )
        if not verify_challenge_resource and not loopback:
            logger.warning(
                "verify_challenge_resource=False for %s, which is not a loopback vault",
                self.vault_url,
            )
        self._credential = credential
        self._owned: ManagedIdentityProvider | None = None
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._verify_challenge_resource = verify_challenge_resource
        self._session: aiohttp.ClientSession | None = None
        self._clients: list[Any] = []

    @property
    def credential(self) -> AsyncTokenCredential:
        if self._credential is None:
            from ._managed_identity import ManagedIdentityProvider

            self._owned = ManagedIdentityProvider()
            self._credential = self._owned.as_azure_credential()
        return self._credential

    async def secrets(self) -> SecretClient:
        from azure.keyvault.secrets.aio import SecretClient

        client: SecretClient = SecretClient(
            self.vault_url, self.credential, **await self._options()
        )
        return self._keep(client)

    async def certificates(self) -> CertificateClient:
        from azure.keyvault.certificates.aio import CertificateClient

        client: CertificateClient = CertificateClient(
            self.vault_url, self.credential, **await self._options()
        )
        return self._keep(client)

    async def cryptography(self, key_id: str) -> CryptographyClient:
        from azure.keyvault.keys.crypto.aio import CryptographyClient

        client: CryptographyClient = CryptographyClient(
            key_id, self.credential, **await self._options()
        )
        return self._keep(client)

    async def close(self) -> None:
        """Close the clients, the session and (when this access made it) the credential."""
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        owned, self._owned = self._owned, None
        if owned is not None:
            self._credential = None
            await owned.close()

    def __repr__(self) -> str:
        return f"VaultAccess({self.vault_url!r})"

    # -- internals -----------------------------------------------------------------------------

    def _keep(self, client: C) -> C:
        self._clients.append(client)
        return client

    async def _options(self) -> dict[str, Any]:
        from azure.core.pipeline.transport import AioHttpTransport

        if self._session is None:
            context = self._ssl_context or await load_verify_context(
                self._ca_file, "aioentra-keyvault"
            )
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return {
            "transport": AioHttpTransport(session=self._session, session_owner=False),
            "verify_challenge_resource": self._verify_challenge_resource,
            # azure-core's own retries, kept short and blind to Retry-After: the credentials'
            # cell backs off (Retry-After included, capped) instead of a sleeping request, and a
            # startup load fails in seconds, not minutes.
            "retry_total": 2,
            "retry_status": 0,
            "retry_backoff_factor": 0.3,
            "retry_backoff_max": 2,
            "connection_timeout": 10,
            "read_timeout": 10,
        }


def vault_error(exc: BaseException, what: str) -> AioEntraError:
    """The typed error for what an azure-keyvault client raised while doing ``what``."""
    if isinstance(exc, AioEntraError):
        return fresh(exc)  # our own credential's failure, as it was
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(exc, "status_code", None)
    code, message = _vault_error_body(exc)
    detail = f"{code}: {message}" if code and message else message or code or type(exc).__name__
    retryable = False
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        hint = "check the name, the version and the vault URL."
    elif status == 403:
        if code == "SecretDisabled" or "disabled" in message.lower():
            hint = "enable that version in the vault, or pin another one."
        else:
            hint = (
                "the identity may not read this: grant it 'get' in the vault's access policy, "
                "or a Key Vault role (Secrets User / Certificate User / Crypto User) with RBAC."
            )
    elif isinstance(exc, ClientAuthenticationError) or status == 401:
        hint = "the vault refused the identity's token: check the tenant and the identity."
    elif status == 429:
        hint = "the vault throttles (4,000 transactions per 10 s per vault): load less often."
        retryable = True
    elif _tls_verification_failed(exc):
        hint = (
            "the vault's TLS certificate is not trusted: pass ca_file= (or ssl_context=) for "
            "a local vault, or fix the proxy's certificate chain."
        )
    elif isinstance(exc, (ServiceRequestError, ServiceResponseError)) or (
        status is not None and status >= 500
    ):
        hint = (
            "the vault is unreachable or failing: check the vault URL and the network; a "
            "credential that read the value before keeps serving it."
        )
        retryable = True
    elif isinstance(exc, HttpResponseError):
        hint = "see the vault's error code."
    else:
        hint = "see the vault's documentation for this error."
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    error = KeyVaultError(
        f"{what} failed: {detail}",
        hint=hint,
        error=code or None,
        status=status,
        code=code,
        retry_after=parse_retry_after(dict(headers)) if headers is not None else None,
    )
    error.retryable = retryable
    return error


def _tls_verification_failed(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _vault_error_body(exc: BaseException) -> tuple[str, str]:
    """The vault's error code and the first line of its message (never a value: Key Vault
    does not echo values)."""
    odata = getattr(exc, "error", None)
    code = getattr(odata, "code", None) or ""
    message = getattr(odata, "message", None) or ""
    inner = getattr(odata, "innererror", None)
    if isinstance(inner, dict) and isinstance(inner.get("code"), str):
        code = inner["code"]
    if not message:
        message = str(getattr(exc, "message", "") or "")
    line = message.strip().splitlines()[0] if message.strip() else ""
    return (code if isinstance(code, str) else "")[:64], line[:300]
