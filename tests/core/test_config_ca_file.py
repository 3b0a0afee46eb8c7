"""CA trust: ``TokenProvider.from_file(path, ca_file=...)``, one option that trusts a local
identity provider and the local vault the configuration's Key Vault credentials read; the
file's ``AzureAd.CaFile`` and ``AIOENTRA_CA_FILE`` (argument > file > variable); and
``SSL_CERT_FILE``, Python's default trust, read when a provider opens its session.

No process-wide trust is set unless a test sets it: the emulator's TLS is trusted only through
what the test names, or not at all.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioentra import (
    ClientSecret,
    ConfigurationError,
    IdentityProviderUnavailableError,
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
    for name in (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "AIOENTRA_CA_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def appsettings(
    tmp_path: Path,
    emulator: Emulator,
    client_id: str,
    entries: list[dict[str, Any]],
    **extra: str,
) -> Path:
    path = tmp_path / "appsettings.json"
    section = {
        "Instance": emulator.base_url,
        "TenantId": emulator.tenant_id,
        "ClientId": client_id,
        "ClientCredentials": entries,
        **extra,
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


# -- CA trust from the file and from the environment, and which wins -----------------------------


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A CA file that does not sign the emulator's certificate."""
    import trustme

    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def secret_entry(app: App) -> list[dict[str, Any]]:
    return [{"SourceType": "ClientSecret", "ClientSecret": app.secret or ""}]


async def test_the_files_ca_file_trusts_the_identity_provider_and_the_vault(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    vault_certificate: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "certs").mkdir()
    shutil.copy(emulator.ca_file, tmp_path / "certs" / "local-ca.pem")
    entry = {
        "SourceType": "KeyVault",
        "KeyVaultUrl": emulator.vault.url,
        "KeyVaultCertificateName": vault_certificate,
    }
    # relative to the file's folder, not to the working directory
    path = appsettings(tmp_path, emulator, cert_app.client_id, [entry], CaFile="certs/local-ca.pem")
    settings = Settings.from_file(path)
    assert settings.ca_file == str(tmp_path / "certs" / "local-ca.pem")
    async with TokenProvider.from_file(path) as provider:
        assert await provider.get_token(SCOPE)
    assert vault_reads(emulator, f"/secrets/{vault_certificate}") == 1
    assert token_requests(emulator, cert_app) == 1


async def test_aioentra_ca_file_is_the_default_of_files_and_of_the_environment(
    emulator: Emulator, app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOENTRA_CA_FILE", emulator.ca_file)
    path = appsettings(tmp_path, emulator, app.client_id, secret_entry(app))
    assert Settings.from_file(path).ca_file == emulator.ca_file
    async with TokenProvider.from_file(path) as provider:
        assert await provider.get_token(SCOPE)
    environ = {
        "AZURE_TENANT_ID": emulator.tenant_id,
        "AZURE_CLIENT_ID": app.client_id,
        "AZURE_CLIENT_SECRET": app.secret or "",
        "AZURE_AUTHORITY_HOST": emulator.base_url,
        "AIOENTRA_CA_FILE": emulator.ca_file,
    }
    async with TokenProvider.from_environment(environ) as provider:
        assert await provider.get_token(SCOPE, force_refresh=True)
    assert token_requests(emulator, app) == 2


async def test_the_argument_beats_the_file_and_the_file_beats_the_environment(
    emulator: Emulator, app: App, other_ca: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(emulator.ca_file, tmp_path / "ca.pem")
    path = appsettings(tmp_path, emulator, app.client_id, secret_entry(app), CaFile="ca.pem")
    monkeypatch.setenv("AIOENTRA_CA_FILE", other_ca)
    assert Settings.from_file(path).ca_file == str(tmp_path / "ca.pem")
    async with TokenProvider.from_file(path) as provider:  # the file's CA, not the variable's
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1
    assert Settings.from_file(path, ca_file=other_ca).ca_file == other_ca
    async with TokenProvider.from_file(path, ca_file=other_ca) as provider:
        with pytest.raises(IdentityProviderUnavailableError, match="TLS verification failed"):
            await provider.get_token(SCOPE, force_refresh=True)
    # provider(ca_file=...) beats what the settings hold, for the token endpoint
    async with Settings.from_file(path).provider(ca_file=other_ca) as provider:
        with pytest.raises(IdentityProviderUnavailableError, match="TLS verification failed"):
            await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1  # neither refused handshake reached the endpoint


async def test_an_ssl_context_given_to_settings_is_the_providers_default(
    emulator: Emulator, app: App, other_ca: str, tmp_path: Path
) -> None:
    path = appsettings(tmp_path, emulator, app.client_id, secret_entry(app), CaFile=other_ca)
    settings = Settings.from_file(path, ssl_context=emulator.ssl_context())
    assert settings.ca_file is None and settings.ssl_context is not None
    async with settings.provider() as provider:
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1


def test_a_bad_ca_file_key_or_variable_names_itself(
    emulator: Emulator, app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = appsettings(tmp_path, emulator, app.client_id, secret_entry(app), CaFile="nope.pem")
    with pytest.raises(ConfigurationError) as info:
        TokenProvider.from_file(path)
    assert info.value.message == (
        f"{path}: AzureAd.CaFile names {str(tmp_path / 'nope.pem')!r}, which is not a file"
    )
    # an explicit argument wins without looking at the file's key
    assert TokenProvider.from_file(path, ca_file=emulator.ca_file)
    monkeypatch.setenv("AIOENTRA_CA_FILE", str(tmp_path / "missing.pem"))
    path = appsettings(tmp_path, emulator, app.client_id, secret_entry(app))
    with pytest.raises(ConfigurationError, match="AIOENTRA_CA_FILE names"):
        Settings.from_file(path)


# -- SSL_CERT_FILE: Python's default trust, read when the provider opens its session ---------------


async def test_ssl_cert_file_set_after_aiohttp_was_imported_applies_to_the_provider(
    emulator: Emulator, app: App, other_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "aiohttp" in sys.modules  # imported long before the variable is set
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
    )
    # set after the provider was built, before its first request opens its session
    monkeypatch.setenv("SSL_CERT_FILE", emulator.ca_file)
    async with provider:
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1
    # aiohttp's own default context was made at its import: the variable is not in it
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(emulator.base_url)
    # a ca_file replaces the system's trust store, SSL_CERT_FILE included
    async with TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=other_ca,
    ) as provider:
        with pytest.raises(IdentityProviderUnavailableError, match="TLS verification failed"):
            await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 1
