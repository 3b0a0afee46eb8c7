"""``aioentra demo`` prints the tutorial's daemon transcript exactly, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRANSCRIPT = """\
Posting a to-do...
Retrieving to-do's from server...
To-do data:
ID: 1
User ID: 00aa00aa-bb11-cc22-dd33-44ee44ee44ee
Message: Bake bread
Posting a second to-do...
Retrieving to-do's from server...
To-do data:
ID: 1
User ID: 00aa00aa-bb11-cc22-dd33-44ee44ee44ee
Message: Bake bread
ID: 2
User ID: 00aa00aa-bb11-cc22-dd33-44ee44ee44ee
Message: Butter bread
Deleting a to-do...
Retrieving to-do's from server...
To-do data:
ID: 2
User ID: 00aa00aa-bb11-cc22-dd33-44ee44ee44ee
Message: Butter bread
Editing a to-do...
Retrieving to-do's from server...
To-do data:
ID: 2
User ID: 00aa00aa-bb11-cc22-dd33-44ee44ee44ee
Message: Eat bread
Deleting remaining to-do...
Retrieving to-do's from server...
There are no to-do's in server
""".splitlines()


def _demo(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("IDENTITY_", "MSI_", "IMDS_", "AZURE_"))
    }
    env |= extra or {}
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "aioentra", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_demo_prints_the_tutorials_transcript_exactly() -> None:
    result = _demo("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[: len(TRANSCRIPT)] == TRANSCRIPT
    summary = lines[len(TRANSCRIPT) :]
    assert summary[0] == ""
    # one app token for the ten API calls, one managed-identity token to read the certificate
    assert summary[1] == "Token requests sent: 1 (daemon), 1 (managed identity, for Key Vault)"
    assert summary[2] == "Cache hits: 9 of 10 API calls"
    assert summary[3].startswith("Elapsed: ")
    assert len(summary) == 4
    assert result.stderr == ""
    assert "eyJ" not in result.stdout  # no token printed


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_the_demo_stays_offline_when_a_proxy_is_set(variable: str) -> None:
    """Nothing listens on the proxy's port: a request sent through it would fail."""
    proxy = {variable: "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = _demo("demo", extra=proxy | {"NO_PROXY": "", "no_proxy": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[: len(TRANSCRIPT)] == TRANSCRIPT


def test_the_demo_as_json() -> None:
    result = _demo("--json", "demo")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["transcript"] == TRANSCRIPT
    assert document["summary"]["token_requests"] == 1
    assert document["summary"]["cache_hits"] == 9


def test_without_admin_consent_the_api_says_403_and_what_to_grant() -> None:
    result = _demo("demo", "--scenario", "no-consent")
    assert result.returncode == 4
    assert result.stdout.splitlines() == ["Posting a to-do..."]
    assert "403" in result.stderr
    assert "lacks the ToDoList.ReadWrite.All role" in result.stderr
    assert "admin consent" in result.stderr
    assert "eyJ" not in result.stdout + result.stderr


@pytest.mark.parametrize("permissions", [["ToDoList.Read.All"], {"Read": "ToDoList.Read.All"}])
def test_the_apis_app_permissions_are_checked(tmp_path: Path, permissions: object) -> None:
    from aioentra import ConfigurationError
    from aioentra.demo.todo_api import ApiSettings

    settings = tmp_path / "appsettings.json"
    azure_ad = {"Instance": "https://x.ciamlogin.com/", "TenantId": "t", "ClientId": "c"}
    settings.write_text(json.dumps({"AzureAd": azure_ad | {"AppPermissions": permissions}}))
    with pytest.raises(ConfigurationError, match="AppPermissions"):
        ApiSettings.from_file(settings)
