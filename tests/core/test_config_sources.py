"""Every configuration error names the source actually used: the file and the key path
(``appsettings.json: AzureAd.TenantId``) for a file, the variable for the environment; a
file's error never sends the user to an environment variable they did not set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aioentra import ConfigurationError, Settings, TokenProvider

from .certs import key_pem, make_certificate

TENANT = "0f4c3a3e-3b7e-4a43-9a6e-6f1a2b3c4d5e"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "Sup3r~Secret-Value-123"
VARIABLE = re.compile(r"\bAZURE_[A-Z_]+")


@pytest.fixture(autouse=True)
def no_configuration_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIOENTRA_CA_FILE", "AIOENTRA_REDIS_URL", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def written(tmp_path: Path, document: Any, name: str = "appsettings.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def error_of(path: Path) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(path)
    report = str(info.value)
    assert SECRET not in report
    return info.value


def test_the_missing_tenant_names_the_file_and_key_not_the_variable(tmp_path: Path) -> None:
    path = written(tmp_path, {"AzureAd": {"ClientId": CLIENT, "ClientSecret": SECRET}})
    for load in (Settings.from_file, TokenProvider.from_file):
        with pytest.raises(ConfigurationError) as info:
            load(path)
        assert info.value.message == f"{path}: AzureAd.TenantId is missing"
        assert "AzureAd.TenantId" in (info.value.hint or "")
        assert "AZURE_TENANT_ID" not in str(info.value)


def test_the_environment_names_its_variables() -> None:
    base = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": SECRET}
    cases = [
        ({"AZURE_TENANT_ID": "common"}, "AZURE_TENANT_ID: tenant 'common' cannot be used"),
        ({"AZURE_CLIENT_ID": "not an id"}, "AZURE_CLIENT_ID is malformed"),
        ({"AZURE_AUTHORITY_HOST": "ftp://login.example"}, "AZURE_AUTHORITY_HOST: authority"),
        (
            {"AZURE_ADDITIONALLY_ALLOWED_TENANTS": "contoso.com;not a tenant"},
            "AZURE_ADDITIONALLY_ALLOWED_TENANTS: tenant 'not a tenant'",
        ),
        (
            {"AZURE_CLIENT_SECRET": "", "AZURE_CLIENT_CERTIFICATE_PATH": "/no/such.pem"},
            "AZURE_CLIENT_CERTIFICATE_PATH: ",
        ),
        ({"AIOENTRA_CA_FILE": "/no/such/ca.pem"}, "AIOENTRA_CA_FILE names '/no/such/ca.pem'"),
    ]
    for change, starts in cases:
        with pytest.raises(ConfigurationError) as info:
            Settings.from_environment(base | change)
        assert info.value.message.startswith(starts), info.value.message
        assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("azure_ad", "says"),
    [
        ({"TenantId": "common"}, "AzureAd.TenantId: tenant 'common' cannot be used"),
        ({"TenantId": "not a tenant"}, "AzureAd.TenantId: tenant 'not a tenant' is not"),
        ({"TenantId": 42}, "AzureAd.TenantId must be a string, not int"),
        ({"ClientId": None}, "AzureAd.ClientId is missing"),
        ({"ClientId": "a/b"}, "AzureAd.ClientId is malformed"),
        ({"Instance": "http://login.contoso.com"}, "AzureAd.Instance: authority"),
        ({"Instance": "https://login.microsoftonline.com/other-tenant"}, "AzureAd.Instance: "),
        ({"ClientSecret": 7}, "AzureAd.ClientSecret must be a string"),
        ({"CaFile": "no-such-ca.pem"}, "AzureAd.CaFile names"),
        ({"ClientSecret": None, "ClientCredentials": {"a": 1}}, "AzureAd.ClientCredentials must"),
        ({"ClientSecret": None}, "AzureAd has no usable credential"),
    ],
)
def test_appsettings_errors_name_the_file_and_the_key(
    tmp_path: Path, azure_ad: dict[str, Any], says: str
) -> None:
    section = {"TenantId": TENANT, "ClientId": CLIENT, "ClientSecret": SECRET} | azure_ad
    path = written(tmp_path, {"AzureAd": {k: v for k, v in section.items() if v is not None}})
    error = error_of(path)
    assert error.message.startswith(f"{path}: {says}"), error.message
    assert not VARIABLE.search(error.hint or ""), error.hint


def test_credential_entries_are_named_by_their_index(tmp_path: Path) -> None:
    entries = [
        {"SourceType": "Path", "CertificateDiskPath": "missing.pfx"},
        {"SourceType": "StoreWithThumbprint", "CertificateThumbprint": "00"},
        {"SourceType": "KeyVault", "KeyVaultUrl": "https://x.vault.azure.net"},
        {"SourceType": "ClientSecret"},
        "not an object",
    ]
    section = {"TenantId": TENANT, "ClientId": CLIENT, "ClientCredentials": entries}
    error = error_of(written(tmp_path, {"AzureAd": section}))
    hint = error.hint or ""
    for expected in (
        "AzureAd.ClientCredentials[0].CertificateDiskPath: certificate file",
        "AzureAd.ClientCredentials[1].SourceType 'StoreWithThumbprint' is not supported",
        "AzureAd.ClientCredentials[2].KeyVaultCertificateName is missing",
        "AzureAd.ClientCredentials[3].ClientSecret is missing",
        "AzureAd.ClientCredentials[4] is not an object",
    ):
        assert expected in hint
    assert "AZURE_CLIENT_CERTIFICATE_PATH" not in hint


def test_other_sections_and_a_bare_azuread_section(tmp_path: Path) -> None:
    section = {"TenantId": TENANT, "ClientId": CLIENT, "ClientSecret": SECRET}
    path = written(tmp_path, {"AzureAd": section, "TokenCache": {"Redis": "redis://localhost"}})
    assert (
        error_of(path).message == f"{path}: TokenCache.EncryptionKeys must be a list of base64 keys"
    )
    path = written(tmp_path, {"AzureAd": section, "TokenCache": {"EncryptionKeys": ["k"]}})
    assert error_of(path).message == f"{path}: TokenCache.Redis is missing"
    bare = written(tmp_path, {"ClientId": CLIENT, "ClientSecret": SECRET}, "azuread.json")
    assert error_of(bare).message == f"{bare}: TenantId is missing"


def test_parameters_json_errors_name_its_keys(tmp_path: Path) -> None:
    base = {"authority": f"https://login.microsoftonline.com/{TENANT}", "client_id": CLIENT}
    host = "https://login.microsoftonline.com"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"secret": SECRET, "authority": host}, "authority names no tenant"),
        ({"secret": SECRET, "client_id": 5}, "client_id must be a string"),
        ({"secret": SECRET, "scope": 3}, "scope must be a string or a list of one scope"),
        ({"secret": SECRET, "scope": ["a/.default", "b/.default"]}, "scope: client credentials"),
        ({"secret": SECRET, "endpoint": "http://graph.example"}, "endpoint is a plain-http URL"),
        ({"secret": SECRET, "ca_file": "no-such.pem"}, "ca_file names"),
        ({"private_key_file": "missing.pem"}, "private_key_file: "),
        ({}, "has no credential"),
    ]
    for change, says in cases:
        document = {k: v for k, v in (base | change).items() if v is not None}
        path = written(tmp_path, document, "parameters.json")
        error = error_of(path)
        assert error.message.startswith(f"{path}: {says}") or error.message == f"{path} {says}"
        assert not VARIABLE.search(error.hint or ""), error.hint


def test_a_key_file_error_in_parameters_json_hints_at_its_keys(tmp_path: Path) -> None:
    key, _ = make_certificate()
    (tmp_path / "server.pem").write_bytes(key_pem(key))  # a key without its certificate
    path = written(
        tmp_path,
        {
            "authority": f"https://login.microsoftonline.com/{TENANT}",
            "client_id": CLIENT,
            "private_key_file": "server.pem",
        },
        "parameters.json",
    )
    error = error_of(path)
    assert error.message.startswith(f"{path}: private_key_file: ")
    assert not VARIABLE.search(error.hint or "")


def test_a_federated_token_file_entry_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("a.b.c")
    entry = {"SourceType": "SignedAssertionFilePath", "SignedAssertionFileDiskPath": "token"}
    section = {"TenantId": TENANT, "ClientId": CLIENT, "ClientCredentials": [entry]}
    path = written(tmp_path, {"AzureAd": section})
    assert Settings.from_file(path).credential is not None
    (tmp_path / "token").unlink()
    hint = error_of(path).hint or ""
    assert "AzureAd.ClientCredentials[0].SignedAssertionFileDiskPath: " in hint
