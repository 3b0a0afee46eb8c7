"""Hand a TokenProvider to an Azure SDK client: read one Key Vault secret with SecretClient.

``provider.as_azure_credential()`` is an azure-core ``AsyncTokenCredential``, so every async
Azure SDK client takes it where it would take an azure-identity credential. The client then
shares the provider's cache, single-flight requests and refresh-ahead with the rest of the app.

Configuration is the environment: azure-identity's ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and
``AZURE_CLIENT_SECRET`` (or ``AZURE_CLIENT_CERTIFICATE_PATH`` ...), and ``KEY_VAULT_URL``::

    export KEY_VAULT_URL=https://contoso.vault.azure.net
    python app.py SECRET-NAME

The app needs "secrets: get" on the vault (or the "Key Vault Secrets User" role). It prints the
secret's name and version, never its value.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from aioentra import AioEntraError, TokenProvider


def is_loopback(url: str) -> bool:
    """True for a URL on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def read_secret_version(*, vault_url: str, name: str) -> tuple[str, str | None]:
    """The name and version of the secret's latest version."""
    provider = TokenProvider.from_environment()
    # The client checks that the vault's challenge names a resource its host belongs to
    # (*.vault.azure.net). A vault on this machine (a local Key Vault emulator, a port forward)
    # cannot pass that check: it stays on for every other vault, as it does in aioentra's own
    # Key Vault entry points.
    client = SecretClient(
        vault_url,
        provider.as_azure_credential(),
        verify_challenge_resource=not is_loopback(vault_url),
    )
    async with provider, client:  # closes the client, then the provider
        secret = await client.get_secret(name)
    return secret.name or name, secret.properties.version


def fail(message: str, hint: str | None = None) -> int:
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return 1


async def main() -> int:
    # aioentra logs retries and failures (never a secret): show warnings on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    vault_url = os.environ.get("KEY_VAULT_URL")
    if not vault_url or len(sys.argv) != 2:
        print(
            "usage: KEY_VAULT_URL=https://<vault>.vault.azure.net python app.py NAME",
            file=sys.stderr,
        )
        return 2
    try:
        name, version = await read_secret_version(vault_url=vault_url, name=sys.argv[1])
    except AioEntraError as error:  # the token: configuration, credential, consent, outage
        return fail(error.message, error.hint)
    except ResourceNotFoundError:
        return fail(f"the vault has no secret {sys.argv[1]!r}")
    except HttpResponseError as error:  # e.g. 403: the app lacks "secrets: get"
        hint = None
        if error.status_code == 403:
            hint = "give the app 'get' on secrets (access policy) or Key Vault Secrets User (RBAC)."
        summary = (error.message or str(error.reason)).splitlines()[0]
        return fail(f"Key Vault answered {error.status_code}: {summary}", hint)
    except AzureError as error:  # the vault could not be reached (DNS, TLS, timeout ...)
        return fail(f"Key Vault could not be reached: {error.message}")
    print(f"secret {name!r}: version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
