"""The ``aioentra`` pytest plugin, exercised in a separate pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST_FILE = """
import msal
import pytest
import requests
from aioentra.emulator import Fault

# A client kept open for the whole session (an idle keep-alive connection when the
# emulator stops) must not make the run fail with a ResourceWarning.
KEPT_OPEN = requests.Session()


def _msal(emulator, app, session):
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=app.secret,
        authority=emulator.authority, instance_discovery=False, http_client=session)


def test_secret_app(aioentra_emulator, aioentra_app):
    session = requests.Session()
    session.trust_env = False
    session.verify = aioentra_emulator.ca_file
    with session:
        result = _msal(aioentra_emulator, aioentra_app, session).acquire_token_for_client(
            ["https://vault.azure.net/.default"])
    assert "access_token" in result, result


def test_cert_app(aioentra_emulator, aioentra_cert_app):
    assert aioentra_cert_app.secret is None
    assert aioentra_cert_app.certificate.private_key_pem


@pytest.mark.parametrize("round", [1, 2])
def test_api_per_test_and_faults_do_not_leak(aioentra_emulator, aioentra_app, aioentra_api, round):
    KEPT_OPEN.trust_env = False
    KEPT_OPEN.verify = aioentra_emulator.ca_file
    aioentra_emulator.grant(aioentra_app, aioentra_api, ["Test.Read"])
    client = _msal(aioentra_emulator, aioentra_app, KEPT_OPEN)
    result = client.acquire_token_for_client([f"{aioentra_api.identifier_uri}/.default"])
    assert "access_token" in result, result  # round 2: round 1's fault is gone
    aioentra_emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))


def test_same_emulator(aioentra_emulator, aioentra_app):
    assert aioentra_emulator.requests.count("token", status=200) == 3
"""


def _run_pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    """A separate pytest run over ``folder``, warnings as errors, like a user's suite."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(folder),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )


def test_plugin_fixtures_in_a_fresh_session(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(TEST_FILE, encoding="utf-8")
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_plugin_is_harmless_when_unused(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "def test_nothing():\n    assert True\n", encoding="utf-8"
    )
    result = _run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
