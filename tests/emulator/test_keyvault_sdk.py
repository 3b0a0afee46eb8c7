"""The unmodified azure-keyvault-secrets aio client against the emulated vault (§4)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from aioentra.emulator import Emulator

pytestmark = pytest.mark.anyio

PEM = "application/x-pem-file"
PKCS12 = "application/x-pkcs12"


@asynccontextmanager
async def _secret_client(
    emu: Emulator, *, permissions: tuple[str, ...] = ("all",)
) -> AsyncIterator[SecretClient]:
    """A SecretClient for a fresh daemon app holding ``permissions`` on the vault."""
    app = emu.add_app("kv-daemon")
    if permissions:
        emu.vault.grant(app, permissions)
    credential = ClientSecretCredential(
        emu.tenant_id,
        app.client_id,
        app.secret,
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    )
    client = SecretClient(
        emu.vault.url,
        credential,
        verify_challenge_resource=False,
        connection_verify=emu.ca_file,
        retry_total=0,
    )
    async with credential, client:
        yield client


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[SecretClient]:
    async with _secret_client(emu) as secret_client:
        yield secret_client


async def test_set_then_get_latest_and_by_version(emu: Emulator, client: SecretClient) -> None:
    first = await client.set_secret("db-password", "one", content_type="text/plain")
    second = await client.set_secret("db-password", "two", tags={"env": "test"})
    assert first.properties.vault_url == emu.vault.url
    assert (await client.get_secret("db-password")).value == "two"
    old = await client.get_secret("db-password", first.properties.version)
    assert (old.value, old.properties.content_type) == ("one", "text/plain")
    assert second.properties.tags == {"env": "test"}
    assert emu.vault.get_secret("db-password").value == "two"
    # The challenge protocol: the first PUT arrived bodiless and unauthenticated, got the 401.
    first_kv = emu.requests.filter("keyvault")[0]
    assert (first_kv.method, first_kv.status) == ("PUT", 401)


async def test_list_secrets_pages_through_next_link(emu: Emulator, client: SecretClient) -> None:
    names = {f"secret-{index}" for index in range(7)}
    for name in names:
        emu.vault.set_secret(name, "v")
    listed = {item.name async for item in client.list_properties_of_secrets(max_page_size=3)}
    assert listed == names
    pages = [r for r in emu.requests.filter("keyvault", status=200) if r.path == "/secrets"]
    assert len(pages) == 3


async def test_list_versions(emu: Emulator, client: SecretClient) -> None:
    versions = [emu.vault.set_secret("rotated", str(index)).version for index in range(4)]
    listed = [
        item.version
        async for item in client.list_properties_of_secret_versions("rotated", max_page_size=3)
    ]
    assert listed == versions


async def test_disabled_secret_is_403(emu: Emulator, client: SecretClient) -> None:
    emu.vault.set_secret("off", "v")
    emu.vault.disable_secret("off")
    with pytest.raises(HttpResponseError) as excinfo:
        await client.get_secret("off")
    assert excinfo.value.status_code == 403
    assert excinfo.value.error is not None
    assert excinfo.value.error.code == "Forbidden"
    assert "disabled secret" in str(excinfo.value)


async def test_update_properties_then_delete_and_purge(emu: Emulator, client: SecretClient) -> None:
    await client.set_secret("temp", "v")
    updated = await client.update_secret_properties("temp", enabled=False, tags={"a": "b"})
    assert (updated.enabled, updated.tags) == (False, {"a": "b"})
    poller = await client.delete_secret("temp")
    assert poller.name == "temp"
    assert (await client.get_deleted_secret("temp")).recovery_id.endswith("/deletedsecrets/temp")
    await client.purge_deleted_secret("temp")
    assert "temp" not in emu.vault.secrets


async def test_missing_secret_is_resource_not_found(client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError, match="was not found in this key vault"):
        await client.get_secret("nope")


async def test_expired_and_not_yet_valid_secrets_are_still_readable(
    emu: Emulator, client: SecretClient
) -> None:
    now = datetime.now(timezone.utc)
    emu.vault.set_secret("old", "v1", expires_on=now - timedelta(days=1))
    emu.vault.set_secret("future", "v2", not_before=now + timedelta(days=1))
    old = await client.get_secret("old")
    assert old.value == "v1"
    assert old.properties.expires_on is not None
    assert (await client.get_secret("future")).value == "v2"


async def test_certificate_secret_as_pfx_and_converted_to_pem(
    emu: Emulator, client: SecretClient
) -> None:
    stored = emu.vault.set_certificate("tls-cert", subject="CN=daemon.example")
    secret = await client.get_secret("tls-cert")
    assert secret.properties.content_type == PKCS12
    assert secret.properties.managed is True
    assert secret.properties.key_id == f"{emu.vault.url}/keys/tls-cert/{stored.version}"
    assert secret.value is not None
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert key is not None
    assert cert is not None
    assert cert.subject.rfc4514_string() == "CN=daemon.example"
    assert secret.properties.expires_on == cert.not_valid_after_utc

    pem = await client.get_secret("tls-cert", out_content_type=PEM)
    assert pem.properties.content_type == PEM
    assert pem.value is not None
    assert pem.value.startswith("-----BEGIN PRIVATE KEY-----\n")
    pem_key = serialization.load_pem_private_key(pem.value.encode(), password=None)
    assert pem_key.private_numbers() == key.private_numbers()  # type: ignore[union-attr]


async def test_certificate_secret_stored_as_pem(emu: Emulator, client: SecretClient) -> None:
    emu.vault.set_certificate("pem-cert", content_type=PEM)
    secret = await client.get_secret("pem-cert")
    assert secret.properties.content_type == PEM
    assert secret.value is not None
    assert "-----BEGIN CERTIFICATE-----" in secret.value


async def test_identity_without_access_policy_is_403(emu: Emulator) -> None:
    emu.vault.set_secret("guarded", "v")
    async with _secret_client(emu, permissions=()) as secret_client:
        with pytest.raises(HttpResponseError) as excinfo:
            await secret_client.get_secret("guarded")
    assert excinfo.value.status_code == 403
    assert "does not have secrets get permission" in str(excinfo.value)


async def test_permission_is_checked_per_operation(emu: Emulator) -> None:
    emu.vault.set_secret("read-only", "v")
    async with _secret_client(emu, permissions=("get",)) as secret_client:
        assert (await secret_client.get_secret("read-only")).value == "v"
        with pytest.raises(HttpResponseError) as excinfo:
            await secret_client.set_secret("read-only", "w")
    assert excinfo.value.status_code == 403
    assert "does not have secrets set permission" in str(excinfo.value)
