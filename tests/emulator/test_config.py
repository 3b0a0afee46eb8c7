"""Registration files (JSON and TOML) and their validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aioentra.emulator import CertificateMaterial, Emulator, EmulatorConfig

from .helpers import post_token, secret_form

pytestmark = pytest.mark.anyio

TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = "33333333-3333-3333-3333-333333333333"


def write_config(tmp_path: Path) -> Path:
    cert = CertificateMaterial.generate("from-file")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "daemon.pem").write_bytes(cert.certificate_pem)
    data = {
        "tenant_id": TENANT,
        "domain": "example.onmicrosoft.com",
        "token_lifetime": 1200,
        "refresh_in": 600,
        "tenants": [
            {
                "tenant_id": "22222222-2222-2222-2222-222222222222",
                "domain": "fabrikam.onmicrosoft.com",
            }
        ],
        "apis": [{"identifier_uri": "api://orders", "roles": ["Orders.Read"], "name": "orders"}],
        "apps": [
            {
                "name": "daemon",
                "client_id": CLIENT,
                "secrets": ["dev-secret", {"value": "old", "expires_at": "2020-01-01T00:00:00Z"}],
                "certificates": ["certs/daemon.pem"],
            }
        ],
        "grants": [{"app": "daemon", "api": "orders", "roles": ["Orders.Read"]}],
    }
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


async def test_json_file_registers_everything(tmp_path: Path) -> None:
    async with Emulator.from_file(write_config(tmp_path)) as emu:
        assert (emu.tenant_id, emu.domain, emu.token_lifetime, emu.refresh_in) == (
            TENANT,
            "example.onmicrosoft.com",
            1200,
            600,
        )
        app = emu.find_identity(client_id=CLIENT)
        assert app is not None
        assert app.secret == "dev-secret"
        assert len(app.certificates) == 1
        assert app.certificates[0].private_key_pem is None
        status, body, _ = await post_token(
            emu, secret_form(CLIENT, "dev-secret", "api://orders/.default")
        )
        assert status == 200
        assert emu.verify_access_token(str(body["access_token"]))["roles"] == ["Orders.Read"]
        status, body, _ = await post_token(emu, secret_form(CLIENT, "old"))
        assert body["error_codes"] == [7000222]
        assert emu.state.resolve_tenant("fabrikam.onmicrosoft.com") is not None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib needs Python 3.11")
def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "emulator.toml"
    path.write_text(
        'token_lifetime = 600\n[[apis]]\nidentifier_uri = "api://x"\nroles = ["R"]\n'
        '[[apps]]\nname = "a"\nsecrets = ["s"]\n'
        '[[grants]]\napp = "a"\napi = "api://x"\nroles = ["R"]\n',
        encoding="utf-8",
    )
    config = EmulatorConfig.load(path)
    assert config.token_lifetime == 600
    assert config.apps[0].secrets[0].value == "s"
    emu = Emulator(config=config)
    app = next(a for a in emu.state.apps.values() if a.name == "a")
    assert app.secret == "s"
    assert emu.state.granted_roles(app.client_id, emu.state.find_api(emu.tenant_id, "api://x")) == {
        "R"
    }  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenant": "typo"}, "unknown key"),
        ({"apps": [{"secrets": ["x"]}]}, r"apps\[0\]\.name: required"),
        ({"apis": [{"identifier_uri": "api://x", "roles": "R"}]}, "list"),
        (
            {"apps": [{"name": "a", "secrets": [{"value": "v", "expires_at": "2020-01-01"}]}]},
            "time zone",
        ),
        ({"token_lifetime": "long"}, "integer"),
    ],
)
def test_invalid_files_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorConfig.from_dict(data)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid JSON"):
        EmulatorConfig.load(path)
