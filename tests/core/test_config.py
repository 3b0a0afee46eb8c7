"""Configuration from the environment, msal's parameters.json and .NET appsettings.json."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from aioentra import (
    Certificate,
    ClientAssertion,
    ClientSecret,
    ConfigurationError,
    KeyWithThumbprint,
    ManagedIdentityAssertion,
    Settings,
    TokenProvider,
)

from .certs import cert_pem, key_pem, make_certificate, pfx

TENANT = "0f4c3a3e-3b7e-4a43-9a6e-6f1a2b3c4d5e"
CLIENT = "11111111-2222-3333-4444-555555555555"


def test_environment_with_secret() -> None:
    settings = Settings.from_environment(
        {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": "s3"}
    )
    assert (settings.tenant_id, settings.client_id) == (TENANT, CLIENT)
    assert isinstance(settings.credential, ClientSecret)
    assert settings.authority == "https://login.microsoftonline.com"


def test_environment_with_certificate_and_sovereign_cloud(tmp_path: Path) -> None:
    key, cert = make_certificate()
    path = tmp_path / "c.pfx"
    path.write_bytes(pfx(key, cert, password=b"pw"))  # type: ignore[arg-type]
    env = {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_CLIENT_CERTIFICATE_PATH": str(path),
        "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pw",
        "AZURE_AUTHORITY_HOST": "login.microsoftonline.us",
    }
    settings = Settings.from_environment(env)
    assert isinstance(settings.credential, Certificate)
    provider = settings.provider()
    assert provider.authority == f"https://login.microsoftonline.us/{TENANT}"
    assert TokenProvider.from_environment(env).client_id == CLIENT


def test_environment_with_federated_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a.b.c")
    settings = Settings.from_environment(
        {
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": CLIENT,
            "AZURE_FEDERATED_TOKEN_FILE": str(token),
        }
    )
    assert isinstance(settings.credential, ClientAssertion)


def test_environment_errors_and_precedence() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_TENANT_ID, AZURE_CLIENT_ID"):
        Settings.from_environment({})
    with pytest.raises(ConfigurationError, match="no credential"):
        Settings.from_environment({"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT})
    settings = Settings.from_environment(
        {
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": CLIENT,
            "AZURE_CLIENT_SECRET": "topsecret",
            "AZURE_FEDERATED_TOKEN_FILE": "/nonexistent",
            "AZURE_ADDITIONALLY_ALLOWED_TENANTS": "contoso.com; fabrikam.com",
        }
    )
    # azure-identity's precedence: the secret wins over the injected federated token file
    assert isinstance(settings.credential, ClientSecret)
    assert settings.additionally_allowed_tenants == ("contoso.com", "fabrikam.com")
    assert settings.provider()._tenants.allowed == {"contoso.com", "fabrikam.com"}


def test_msal_parameters_json_with_secret(tmp_path: Path) -> None:
    path = tmp_path / "parameters.json"
    path.write_text(
        json.dumps(
            {
                "authority": f"https://login.microsoftonline.com/{TENANT}",
                "client_id": CLIENT,
                "scope": ["https://graph.microsoft.com/.default"],
                "secret": "s3",
                "endpoint": "https://graph.microsoft.com/v1.0/users",
            }
        )
    )
    settings = Settings.from_file(path)
    assert settings.scope == "https://graph.microsoft.com/.default"
    assert settings.endpoint == "https://graph.microsoft.com/v1.0/users"
    assert TokenProvider.from_file(path).authority == f"https://login.microsoftonline.com/{TENANT}"


def test_msal_parameters_json_with_thumbprint_and_key(tmp_path: Path) -> None:
    key, cert = make_certificate()
    (tmp_path / "server.pem").write_bytes(key_pem(key))
    thumbprint = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    (tmp_path / "parameters.json").write_text(
        json.dumps(
            {
                "authority": f"https://login.microsoftonline.com/{TENANT}",
                "client_id": CLIENT,
                "scope": ["https://graph.microsoft.com/.default"],
                "thumbprint": thumbprint,
                "private_key_file": "server.pem",
            }
        )
    )
    assert isinstance(
        Settings.from_file(tmp_path / "parameters.json").credential, KeyWithThumbprint
    )
    (tmp_path / "server.pem").write_bytes(key_pem(key) + cert_pem(cert))
    assert isinstance(Settings.from_file(tmp_path / "parameters.json").credential, Certificate)


def test_appsettings_azuread_section_forms(tmp_path: Path) -> None:
    key, cert = make_certificate()
    (tmp_path / "c.pfx").write_bytes(pfx(key, cert))  # type: ignore[arg-type]
    encoded = base64.b64encode(pfx(key, cert)).decode()  # type: ignore[arg-type]
    cases = [
        ({"ClientSecret": "s"}, ClientSecret),
        (
            {"ClientCredentials": [{"SourceType": "ClientSecret", "ClientSecret": "s"}]},
            ClientSecret,
        ),
        (
            {"ClientCredentials": [{"SourceType": "Path", "CertificateDiskPath": "c.pfx"}]},
            Certificate,
        ),
        (
            {"ClientCredentials": [{"SourceType": "Base64Encoded", "Base64EncodedValue": encoded}]},
            Certificate,
        ),
        (
            {"ClientCredentials": [{"SourceType": "SignedAssertionFromManagedIdentity"}]},
            ManagedIdentityAssertion,
        ),
    ]
    for extra, expected in cases:
        section = {
            "Instance": "https://login.microsoftonline.com/",
            "TenantId": TENANT,
            "ClientId": CLIENT,
        }
        path = tmp_path / "appsettings.json"
        path.write_text(json.dumps({"AzureAd": {**section, **extra}}))
        settings = Settings.from_file(path)
        assert isinstance(settings.credential, expected), extra
        assert settings.provider().authority == f"https://login.microsoftonline.com/{TENANT}"


def test_appsettings_older_instance_template(tmp_path: Path) -> None:
    path = tmp_path / "appsettings.json"
    path.write_text(
        json.dumps(
            {
                "Instance": "https://login.microsoftonline.com/{0}",
                "Tenant": "contoso.com",
                "ClientId": CLIENT,
                "ClientSecret": "s",
            }
        )
    )
    assert Settings.from_file(path).provider().authority == (
        "https://login.microsoftonline.com/contoso.com"
    )


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Settings.from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        Settings.from_file(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="neither"):
        Settings.from_file(tmp_path / "other.json")
    (tmp_path / "kv.json").write_text(
        json.dumps(
            {
                "AzureAd": {
                    "TenantId": TENANT,
                    "ClientId": CLIENT,
                    "ClientCredentials": [{"SourceType": "KeyVault"}],
                }
            }
        )
    )
    (tmp_path / "b64.json").write_text(
        json.dumps(
            {
                "AzureAd": {
                    "TenantId": TENANT,
                    "ClientId": CLIENT,
                    "ClientCredentials": [
                        {"SourceType": "Base64Encoded", "Base64EncodedValue": "not base64!"}
                    ],
                }
            }
        )
    )
    with pytest.raises(ConfigurationError, match="not valid base64"):
        Settings.from_file(tmp_path / "b64.json")
    with pytest.raises(ConfigurationError, match="no usable credential") as info:
        Settings.from_file(tmp_path / "kv.json")
    assert "KeyVault" in (info.value.hint or "")
    (tmp_path / "p.json").write_text(json.dumps({"client_id": CLIENT, "authority": "https://x/t"}))
    with pytest.raises(ConfigurationError, match="no credential"):
        Settings.from_file(tmp_path / "p.json")
