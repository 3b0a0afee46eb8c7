"""``TokenProvider.from_file(path, ca_file=...)``: one option trusts a local identity provider
and the local vault the configuration's Key Vault credentials read.

No process-wide trust (``SSL_CERT_FILE``) is set here: the vault's TLS is trusted only through
the option, or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aioentra import (
    ConfigurationError,
    KeyVaultCertificate,
    KeyVaultError,
    KeyVaultSecret,
    TokenProvider,
)
from aioentra._config import Settings
from aioentra.emulator import App, Emulator, ManagedIdentity

from .conftest import SCOPE, token_requests, unique, vault_reads

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_process_wide_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def appsettings(
    tmp_path: Path, emulator: Emulator, client_id: str, entries: list[dict[str, Any]]
) -> Path:
    path = tmp_path / "appsettings.json"
    section = {
        "Instance": emulator.base_url,
        "TenantId": emulator.tenant_id,
        "ClientId": client_id,
        "ClientCredentials": entries,
    }
    path.write_text(json.dumps({"AzureAd": section}))
    return path


@pytest.fixture
def vault_certificate(emulator: Emulator, cert_app: App) -> str:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    name = unique("configured-cert")
    emulator.vault.set_certificate(
        name, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
    )
    return name


async def test_ca_file_reaches_a_key_vault_certificate_from_appsettings(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    vault_certificate: str,
    tmp_path: Path,
) -> None:
    entry = {
        "SourceType": "KeyVault",
        "KeyVaultUrl": emulator.vault.url,
        "KeyVaultCertificateName": vault_certificate,
    }
    path = appsettings(tmp_path, emulator, cert_app.client_id, [entry])
    provider = TokenProvider.from_file(path, ca_file=emulator.ca_file)
    assert isinstance(provider.credential, KeyVaultCertificate)
    async with provider:
        assert await provider.get_token(SCOPE)
    assert vault_reads(emulator, f"/secrets/{vault_certificate}") == 1
    assert token_requests(emulator, cert_app) == 1


async def test_ssl_context_reaches_a_key_vault_secret_past_a_skipped_entry(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, tmp_path: Path
) -> None:
    name = unique("configured-secret")
    emulator.vault.set_secret(name, app.secret or "")
    entries = [
        {"SourceType": "Path", "CertificateDiskPath": "missing.pfx"},  # skipped: no file
        {"SourceType": "KeyVault", "KeyVaultUrl": emulator.vault.url, "KeyVaultSecretName": name},
    ]
    path = appsettings(tmp_path, emulator, app.client_id, entries)
    provider = TokenProvider.from_file(path, ssl_context=emulator.ssl_context())
    credential = provider.credential
    assert isinstance(credential, KeyVaultSecret)  # the one entry that could be built
    async with provider:
        assert await provider.get_token(SCOPE)
    assert vault_reads(emulator, f"/secrets/{name}") == 1
    assert token_requests(emulator, app) == 1


async def test_without_the_option_the_local_vault_is_not_trusted(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    vault_certificate: str,
    tmp_path: Path,
) -> None:
    entry = {
        "SourceType": "KeyVault",
        "KeyVaultUrl": emulator.vault.url,
        "KeyVaultCertificateName": vault_certificate,
    }
    path = appsettings(tmp_path, emulator, cert_app.client_id, [entry])
    # The vault keeps its own trust (none given: the system's); the option is the token
    # endpoint's only.
    provider = Settings.from_file(path).provider(ca_file=emulator.ca_file)
    with pytest.raises(KeyVaultError, match="CERTIFICATE_VERIFY_FAILED"):
        async with provider:
            pass  # entering starts the credential: it reads the vault
    assert vault_reads(emulator, f"/secrets/{vault_certificate}") == 0
    assert token_requests(emulator, cert_app) == 0


def test_a_bad_trust_option_fails_before_any_entry_is_built(
    emulator: Emulator, tmp_path: Path
) -> None:
    entry = {"SourceType": "KeyVault", "KeyVaultUrl": emulator.vault.url, "KeyVaultSecretName": "s"}
    path = appsettings(tmp_path, emulator, "client", [entry])
    with pytest.raises(ConfigurationError, match="does not exist") as missing:
        TokenProvider.from_file(path, ca_file=str(tmp_path / "no-such-ca.pem"))
    assert "PEM file" in (missing.value.hint or "")
    with pytest.raises(ConfigurationError, match="not both"):
        TokenProvider.from_file(path, ca_file=emulator.ca_file, ssl_context=emulator.ssl_context())
    with pytest.raises(ConfigurationError, match="does not verify"):
        Settings.from_file(path, ssl_context=_unverified())


def _unverified() -> Any:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_from_environment_takes_ca_file_for_the_token_endpoint(
    emulator: Emulator, app: App
) -> None:
    environ = {
        "AZURE_TENANT_ID": emulator.tenant_id,
        "AZURE_CLIENT_ID": app.client_id,
        "AZURE_CLIENT_SECRET": app.secret or "",
        "AZURE_AUTHORITY_HOST": emulator.base_url,
    }
    async with TokenProvider.from_environment(environ, ca_file=emulator.ca_file) as provider:
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1
