"""Read an app's secrets from Azure Key Vault when it starts, with the machine's managed identity.

No secret in the configuration, none on disk: the VM, App Service, Container App or AKS pod
has a managed identity allowed to read the vault's secrets (access policy "secrets: get", or
the "Key Vault Secrets User" role), and ``load_secrets`` reads every name at once with one
vault token.

::

    export KEY_VAULT_URL=https://contoso.vault.azure.net
    python app.py [SECRET-NAME ...]      # default: db-password and orders-api-key

It prints which secrets loaded, by name and length, never a value. If any secret cannot be read
(missing, disabled, forbidden, the vault unreachable), it exits with status 1 and one line per
failed secret saying why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from aioentra import AioEntraError, SecretsNotLoadedError
from aioentra.keyvault import load_secrets

REQUIRED_SECRETS = ("db-password", "orders-api-key")


async def load_configuration(*, vault_url: str, names: Sequence[str]) -> Mapping[str, str]:
    """Every secret the app needs, or SecretsNotLoadedError naming each one that failed."""
    # No credential=: this machine's (system-assigned) managed identity. For a user-assigned
    # one: async with ManagedIdentityProvider(client_id=...) as identity, then pass
    # credential=identity.as_azure_credential().
    return await load_secrets(vault_url, names, timeout=30)


def run_app(secrets: Mapping[str, str]) -> None:
    """Where the real app would start, e.g. connect(password=secrets["db-password"])."""
    for name, value in secrets.items():
        print(f"loaded {name} ({len(value)} characters)")


async def main() -> int:
    # aioentra logs retries and failures (never a secret): show warnings on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    vault_url = os.environ.get("KEY_VAULT_URL")
    if not vault_url:
        print("error: KEY_VAULT_URL is not set", file=sys.stderr)
        print("hint: export KEY_VAULT_URL=https://<vault name>.vault.azure.net", file=sys.stderr)
        return 2
    names = sys.argv[1:] or REQUIRED_SECRETS
    try:
        secrets = await load_configuration(vault_url=vault_url, names=names)
    except SecretsNotLoadedError as error:
        print(f"error: {error.message}", file=sys.stderr)
        for name, failure in sorted(error.failures.items()):
            print(f"  {name}: {failure.message}", file=sys.stderr)
            if failure.hint:
                print(f"    hint: {failure.hint}", file=sys.stderr)
        return 1
    except AioEntraError as error:  # a bad name or option, found before any request
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 1
    print(f"{len(secrets)} secrets loaded from {vault_url}")
    run_app(secrets)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
