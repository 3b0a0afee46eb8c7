"""``aioentra token``: a token from the environment or a file; its claims, never the token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from aioentra.emulator import MANAGED_IDENTITY_VARIABLES, Api, App, Emulator, Fault

from .conftest import Result


def test_token_from_the_environment_shows_its_claims(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    shown = cli("token", scope, "--ca-file", emu.ca_file)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == f"token for {scope} (not shown; --raw prints it)"
    assert f"  tid     {emu.tenant_id}" in lines
    assert f"  azp     {app.client_id}" in lines
    assert "  roles   Test.Read" in lines
    expires = next(line for line in lines if line.startswith("  expires"))
    assert "Z (in " in expires and " s left)" in expires


def test_token_json_shape(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    app: App,
    api: Api,
    scope: str,
) -> None:
    document = cli("--json", "token", scope, "--ca-file", emu.ca_file).json()
    assert document["scope"] == scope and document["token_type"] == "Bearer"
    claims = document["claims"]
    assert claims["aud"] == api.app_id
    assert claims["iss"] == emu.issuer()
    assert claims["tid"] == emu.tenant_id
    assert claims["azp"] == app.client_id
    assert claims["oid"] == app.object_id
    assert claims["roles"] == ["Test.Read"]
    assert 0 < claims["expires_in"] <= emu.token_lifetime
    assert claims["expires_at"].endswith("Z") and isinstance(claims["exp"], int)


def test_raw_prints_only_the_token(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    shown = cli("token", "--raw", scope, "--ca-file", emu.ca_file, raw=True)
    assert shown.code == 0 and shown.err == ""
    token = shown.out.removesuffix("\n")
    assert "\n" not in token and token.startswith("eyJ")
    assert emu.verify_access_token(token)["azp"] == app.client_id


def test_token_from_parameters_json_takes_its_scope(
    cli: Callable[..., Result],
    clean_env: pytest.MonkeyPatch,
    emu: Emulator,
    app: App,
    scope: str,
    tmp_path: Path,
) -> None:
    parameters = tmp_path / "parameters.json"
    parameters.write_text(
        json.dumps(
            {
                "authority": emu.authority,
                "client_id": app.client_id,
                "secret": app.secret,
                "scope": [scope],
            }
        )
    )
    document = cli("--json", "token", "--config", str(parameters), "--ca-file", emu.ca_file).json()
    assert document["scope"] == scope and document["claims"]["roles"] == ["Test.Read"]


def test_token_from_appsettings_json(
    cli: Callable[..., Result],
    clean_env: pytest.MonkeyPatch,
    emu: Emulator,
    app: App,
    scope: str,
    tmp_path: Path,
) -> None:
    settings = tmp_path / "appsettings.json"
    settings.write_text(
        json.dumps(
            {
                "AzureAd": {
                    "Instance": emu.base_url,
                    "TenantId": emu.tenant_id,
                    "ClientId": app.client_id,
                    "ClientSecret": app.secret,
                }
            }
        )
    )
    shown = cli("token", scope, "--config", str(settings), "--ca-file", emu.ca_file)
    assert shown.code == 0, shown.err


def test_tenant_asks_another_tenant(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    other = emu.add_tenant()
    emu.consent(app, other.tenant_id)
    shown = cli(
        "--json", "token", "https://graph.microsoft.com/.default", "--tenant", other.tenant_id,
        "--ca-file", emu.ca_file,
    )  # fmt: skip
    assert shown.code == 0, shown.out
    assert shown.json()["claims"]["tid"] == other.tenant_id


# -- exit statuses ---------------------------------------------------------------------------------


def test_missing_configuration_is_3(
    cli: Callable[..., Result], clean_env: pytest.MonkeyPatch, scope: str
) -> None:
    shown = cli("token", scope)
    assert shown.code == 3
    assert "missing environment variables: AZURE_TENANT_ID, AZURE_CLIENT_ID" in shown.err
    assert "hint: set AZURE_TENANT_ID" in shown.err


@pytest.mark.parametrize(
    ("argv", "says", "kind"),
    [
        (["api://x/Things.Read"], "does not end in '/.default'", "InvalidScopeError"),
        ([], "no scope given", "ConfigurationError"),
    ],
)
def test_a_wrong_or_missing_scope_is_3(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    argv: list[str],
    says: str,
    kind: str,
) -> None:
    document = cli("--json", "token", *argv, "--ca-file", emu.ca_file).json()
    assert document["exit_code"] == 3
    assert document["error"]["type"] == kind and says in document["error"]["message"]
    assert document["error"]["hint"]


def test_a_wrong_secret_is_4_and_shows_codes_not_the_secret(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = f"wrong-{uuid.uuid4()}"
    monkeypatch.setenv("AZURE_CLIENT_SECRET", wrong)
    shown = cli("token", scope, "--ca-file", emu.ca_file, secrets=(wrong,))
    assert shown.code == 4
    assert "invalid_client" in shown.err and "AADSTS7000215" in shown.err
    assert "hint: the client secret is wrong" in shown.err
    assert "correlation_id=" in shown.err
    document = cli("--json", "token", scope, "--ca-file", emu.ca_file, secrets=(wrong,)).json()
    assert document["exit_code"] == 4
    error = document["error"]
    assert error["type"] == "CredentialRejectedError"
    assert error["error_codes"] == [7000215] and error["status"] == 401
    assert error["correlation_id"]


def test_an_unknown_client_is_4(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", str(uuid.uuid4()))
    document = cli("--json", "token", scope, "--ca-file", emu.ca_file).json()
    assert (document["exit_code"], document["error"]["type"]) == (4, "ApplicationNotFoundError")


def test_an_unavailable_token_endpoint_is_5(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    # A Retry-After beyond RetryPolicy.max_retry_after ends the request at the first answer.
    emu.faults.add(
        Fault("token", "status", status=503, retry_after=3600, count=None, client_id=app.client_id)
    )
    document = cli("--json", "token", scope, "--ca-file", emu.ca_file).json()
    assert document["exit_code"] == 5
    assert document["error"]["type"] == "IdentityProviderUnavailableError"
    assert document["error"]["status"] == 503


def test_throttling_is_5(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    emu.faults.add(Fault("token", "throttle", retry_after=3600, client_id=app.client_id))
    shown = cli("token", scope, "--ca-file", emu.ca_file)
    assert shown.code == 5 and "throttled" in shown.err


def test_an_untrusted_authority_is_5(
    cli: Callable[..., Result], env: dict[str, str], scope: str
) -> None:
    shown = cli("token", scope)  # no --ca-file: the emulator's CA is not trusted
    assert shown.code == 5
    assert "TLS verification failed" in shown.err and "hint:" in shown.err


# -- review fixes ----------------------------------------------------------------------------------


def test_ca_file_reaches_a_key_vault_credential_from_appsettings(
    cli: Callable[..., Result],
    clean_env: pytest.MonkeyPatch,
    emu: Emulator,
    api: Api,
    scope: str,
    aioentra_cert_app: App,
    tmp_path: Path,
) -> None:
    """``--config`` with a ``KeyVault`` ``ClientCredentials`` entry: the vault is trusted
    through ``--ca-file`` too (no process-wide trust is set)."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        clean_env.delenv(name, raising=False)
    for name in MANAGED_IDENTITY_VARIABLES:
        clean_env.delenv(name, raising=False)
    for name, value in emu.managed_identity.environ.items():
        clean_env.setenv(name, value)
    emu.grant(aioentra_cert_app, api, ["Test.Read"])
    material = aioentra_cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    certificate = f"cli-kv-{uuid.uuid4().hex[:8]}"
    emu.vault.set_certificate(
        certificate, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
    )
    emu.vault.grant(emu.managed_identity.system_assigned, ["get"], certificates=["get"])
    settings = tmp_path / "appsettings.json"
    entry = {
        "SourceType": "KeyVault",
        "KeyVaultUrl": emu.vault.url,
        "KeyVaultCertificateName": certificate,
    }
    azure_ad = {"Instance": emu.base_url + "/", "TenantId": emu.tenant_id}
    azure_ad |= {"ClientId": aioentra_cert_app.client_id, "ClientCredentials": [entry]}
    settings.write_text(json.dumps({"AzureAd": azure_ad}))
    shown = cli("token", scope, "--config", str(settings), "--ca-file", emu.ca_file)
    assert shown.code == 0, shown.err
    assert f"  azp     {aioentra_cert_app.client_id}" in shown.out.splitlines()
    assert "  roles   Test.Read" in shown.out.splitlines()


def test_raw_and_json_are_refused_together(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    before = emu.requests.count("token", client_id=app.client_id)
    for argv in (["--json", "token", "--raw"], ["token", "--raw", "--json"]):
        shown = cli(*argv, scope, "--ca-file", emu.ca_file)
        assert shown.code == 2
        document = shown.json()
        assert document["exit_code"] == 2
        assert document["error"]["type"] == "UsageError"
        assert "--raw and --json" in document["error"]["message"]
        assert shown.err == ""
    assert emu.requests.count("token", client_id=app.client_id) == before  # no token fetched


@pytest.mark.parametrize("command", ["token", "doctor"])
@pytest.mark.parametrize("json_mode", [False, True])
def test_a_password_in_the_authority_is_never_shown(
    cli: Callable[..., Result],
    env: dict[str, str],
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    json_mode: bool,
) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://admin:hunter2@localhost:1")
    head = ["--json"] if json_mode else []
    argv = [command, scope] if command == "token" else [command, "--scope", scope]
    shown = cli(*head, *argv, secrets=("hunter2",))
    assert shown.code == 3
    assert "admin:***@localhost:1" in shown.out + shown.err
    assert "user info" in shown.out + shown.err
