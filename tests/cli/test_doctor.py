"""``aioentra doctor``: one verdict per check, the exit status of the worst failure."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aioentra._cli.doctor import judge_discovery, judge_expiry, judge_roles, judge_scope
from aioentra.emulator import App, Emulator, Fault

from .conftest import Result, certificate_bundle

NAMES = ["configuration", "authority", "credential", "scope", "token", "roles"]


@pytest.fixture
def doctor(cli: Callable[..., Result], emu: Emulator) -> Callable[..., dict[str, Any]]:
    """``doctor(*argv) -> {check name: check}`` with the document's exit status checked."""

    def run(*argv: str, code: int) -> dict[str, Any]:
        shown = cli("--json", "doctor", *argv, "--ca-file", emu.ca_file)
        document = shown.json()
        assert shown.code == document["exit_code"] == code, document
        assert document["ok"] is (code == 0)
        assert [check["name"] for check in document["checks"]] == NAMES
        return {check["name"]: check for check in document["checks"]}

    return run


def test_a_good_configuration_passes_every_check(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, app: App, scope: str
) -> None:
    shown = cli("doctor", "--scope", scope, "--ca-file", emu.ca_file)
    assert shown.code == 0, shown.out
    lines = shown.out.splitlines()
    assert lines[0] == "aioentra doctor: checking the configuration from the environment (AZURE_*)"
    assert [line.split()[:2] for line in lines[1:7]] == [["ok", name] for name in NAMES]
    assert f"client_id {app.client_id}" in lines[1]
    assert f"tenant {emu.tenant_id}; issuer {emu.issuer()}" in lines[2]
    assert "ClientSecret(***) loaded" in lines[3]
    assert lines[6].endswith("Test.Read (aud " + lines[6].split("(aud ")[1])
    assert lines[-1] == "0 failed, 0 warned: exit status 0"


def test_json_shape(doctor: Callable[..., dict[str, Any]], env: dict[str, str], scope: str) -> None:
    checks = doctor("--scope", scope, code=0)
    assert {check["status"] for check in checks.values()} == {"ok"}
    assert all(set(check) == {"name", "status", "message"} for check in checks.values())
    assert checks["roles"]["message"].startswith("Test.Read")


def test_a_scope_without_default_fails_with_3(
    doctor: Callable[..., dict[str, Any]], env: dict[str, str], api: Any
) -> None:
    checks = doctor("--scope", f"{api.identifier_uri}/Test.Read", code=3)
    assert checks["scope"]["status"] == "fail" and checks["scope"]["exit_code"] == 3
    assert f"'{api.identifier_uri}/.default'" in checks["scope"]["hint"]
    assert checks["token"]["status"] == checks["roles"]["status"] == "skip"
    assert checks["authority"]["status"] == checks["credential"]["status"] == "ok"


def test_an_app_without_roles_warns(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ungranted = emu.add_app("cli-doctor-no-roles")
    try:
        monkeypatch.setenv("AZURE_CLIENT_ID", ungranted.client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", str(ungranted.secret))
        argv = ("doctor", "--scope", scope, "--ca-file", emu.ca_file)
        shown = cli(*argv, secrets=(str(ungranted.secret),))
        assert shown.code == 0
        roles = next(line for line in shown.out.splitlines() if line.startswith("warn  roles"))
        assert "the token has no roles" in roles
        assert "fix: grant admin consent for the app's application permissions" in shown.out
        assert shown.out.splitlines()[-1] == "0 failed, 1 warned: exit status 0"
    finally:
        emu.remove_app(ungranted)


def test_no_scope_warns_and_skips_the_token(
    doctor: Callable[..., dict[str, Any]], env: dict[str, str]
) -> None:
    checks = doctor(code=0)
    assert checks["scope"]["status"] == "warn"
    assert checks["token"]["status"] == "skip"


def test_no_configuration_fails_with_3(
    doctor: Callable[..., dict[str, Any]], clean_env: pytest.MonkeyPatch, scope: str
) -> None:
    checks = doctor("--scope", scope, code=3)
    assert checks["configuration"]["status"] == "fail"
    assert checks["configuration"]["error"]["type"] == "ConfigurationError"
    assert "AZURE_TENANT_ID" in checks["configuration"]["message"]
    assert [checks[n]["status"] for n in NAMES[1:]] == ["skip", "skip", "ok", "skip", "skip"]


def test_a_wrong_secret_fails_the_token_with_4(
    doctor: Callable[..., dict[str, Any]],
    env: dict[str, str],
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    checks = doctor("--scope", scope, code=4)
    assert checks["credential"]["status"] == "ok"
    token = checks["token"]
    assert token["status"] == "fail" and token["error"]["error_codes"] == [7000215]
    assert token["hint"].startswith("the client secret is wrong")
    assert token["error"]["correlation_id"]


def test_an_unknown_tenant_fails_discovery_with_4(
    doctor: Callable[..., dict[str, Any]],
    env: dict[str, str],
    scope: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", str(uuid.uuid4()))
    checks = doctor("--scope", scope, code=4)
    authority = checks["authority"]
    assert authority["status"] == "fail" and authority["error"]["type"] == "TenantNotFoundError"
    assert authority["error"]["error_codes"] == [90002]
    assert checks["token"]["status"] == "fail"


def test_a_failing_identity_provider_fails_with_5(
    doctor: Callable[..., dict[str, Any]], env: dict[str, str], emu: Emulator, scope: str
) -> None:
    emu.faults.add(Fault("discovery", "status", status=503, retry_after=3600, count=None))
    checks = doctor("--scope", scope, code=5)
    assert checks["authority"]["status"] == "fail" and checks["authority"]["exit_code"] == 5
    assert checks["token"]["status"] == "fail" and checks["token"]["exit_code"] == 5


@pytest.mark.parametrize(("days", "status"), [(10, "warn"), (200, "ok")])
def test_a_certificate_that_expires_soon_warns(
    doctor: Callable[..., dict[str, Any]],
    env: dict[str, str],
    emu: Emulator,
    app: App,
    scope: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    days: int,
    status: str,
) -> None:
    bundle = tmp_path / "app.pem"
    emu.add_certificate(app, certificate_bundle(bundle, days_left=days))
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(bundle))
    checks = doctor("--scope", scope, code=0)
    credential = checks["credential"]
    assert credential["status"] == status
    assert "certificate CN=aioentra-cli-test" in credential["message"]
    expected = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).date().isoformat()
    assert expected in credential["message"]
    if status == "warn":
        assert "before then" in credential["hint"]
    assert checks["token"]["status"] == "ok"


# -- the judgements, without a server ------------------------------------------------------------

TENANT = "11111111-2222-3333-4444-555555555555"
HOST = "https://login.example.com"
GOOD = {
    "issuer": f"{HOST}/{TENANT}/v2.0",
    "token_endpoint": f"{HOST}/{TENANT}/oauth2/v2.0/token",
    "jwks_uri": f"{HOST}/{TENANT}/discovery/v2.0/keys",
}


@pytest.mark.parametrize(
    ("document", "tenant", "status", "says"),
    [
        (GOOD, TENANT, "ok", f"tenant {TENANT}; issuer"),
        (GOOD, "contoso.com", "ok", f"tenant contoso.com is {TENANT}"),
        ({**GOOD, "jwks_uri": ""}, TENANT, "fail", "lacks jwks_uri"),
        ({"issuer": GOOD["issuer"]}, TENANT, "fail", "lacks token_endpoint, jwks_uri"),
        (GOOD, str(uuid.UUID(int=1)), "fail", f"names tenant '{TENANT}'"),
        ({**GOOD, "issuer": f"{HOST}/common/v2.0"}, "contoso.com", "fail", "names no tenant"),
        ({**GOOD, "issuer": f"{HOST}/{{tenantid}}/v2.0"}, "organizations", "ok", "multi-tenant"),
        ({**GOOD, "token_endpoint": "https://elsewhere/t"}, TENANT, "warn", "on elsewhere"),
        ([], TENANT, "fail", "not a JSON object"),
    ],
)
def test_judge_discovery(document: object, tenant: str, status: str, says: str) -> None:
    check = judge_discovery(document, tenant=tenant, host=HOST)
    assert (check.status, check.exit_code) == (status, 5 if status == "fail" else 0)
    assert says in check.message


def test_judge_expiry_scope_and_roles() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    expired = judge_expiry(now - dt.timedelta(days=1), now, "certificate")
    assert (expired.status, expired.exit_code) == ("fail", 3)
    assert judge_expiry(now + dt.timedelta(days=29), now, "c").status == "warn"
    assert judge_expiry(now + dt.timedelta(days=31), now, "c").status == "ok"
    assert judge_scope("api://x/.default").status == "ok"
    assert judge_scope(None).status == "warn"
    assert judge_scope("api://x api://y").exit_code == 3
    assert judge_roles({"roles": ["A", "B"], "aud": "x"}).message == "A, B (aud x)"
    assert judge_roles({"aud": "x"}).status == "warn"
    assert judge_roles({}).status == "warn"
