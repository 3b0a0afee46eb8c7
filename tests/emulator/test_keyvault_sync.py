"""The synchronous clients (requests transport, msal-based managed identity) against the vault."""

from __future__ import annotations

import pytest
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from aioentra.emulator import Emulator


def test_sync_secret_client_with_client_secret(threaded_emu: Emulator) -> None:
    emu = threaded_emu
    app = emu.add_app("sync-daemon")
    emu.vault.grant(app, ["get", "list"])
    emu.vault.set_secret("sync-secret", "v")
    credential = ClientSecretCredential(
        emu.tenant_id,
        app.client_id,
        app.secret,
        authority=emu.base_url,
        connection_verify=emu.ca_file,
        disable_instance_discovery=True,
    )
    client = SecretClient(
        emu.vault.url, credential, verify_challenge_resource=False, connection_verify=emu.ca_file
    )
    with credential, client:
        assert client.get_secret("sync-secret").value == "v"
        assert "sync-secret" in {item.name for item in client.list_properties_of_secrets()}


def test_sync_managed_identity_credential(
    threaded_emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-identity's sync credential goes through msal's App Service code path."""
    emu = threaded_emu
    for name in ("IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in emu.managed_identity.environ.items():
        monkeypatch.setenv(name, value)
    user = emu.managed_identity.add_identity(name="sync-worker")
    emu.vault.grant(user, ["get"])
    emu.vault.set_secret("sync-mi", "ok")
    credential = ManagedIdentityCredential(client_id=user.client_id)
    client = SecretClient(
        emu.vault.url, credential, verify_challenge_resource=False, connection_verify=emu.ca_file
    )
    with credential, client:
        assert client.get_secret("sync-mi").value == "ok"
