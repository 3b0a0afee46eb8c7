"""The ``aioentra`` pytest plugin, exercised in a separate pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST_FILE = """
import msal
import requests


def test_secret_app(aioentra_emulator, aioentra_app):
    session = requests.Session()
    session.trust_env = False
    session.verify = aioentra_emulator.ca_file
    with session:
        cca = msal.ConfidentialClientApplication(
            aioentra_app.client_id, client_credential=aioentra_app.secret,
            authority=aioentra_emulator.authority, instance_discovery=False, http_client=session)
        result = cca.acquire_token_for_client(["https://vault.azure.net/.default"])
    assert "access_token" in result, result


def test_cert_app(aioentra_emulator, aioentra_cert_app):
    assert aioentra_cert_app.secret is None
    assert aioentra_cert_app.certificate.private_key_pem


def test_same_emulator(aioentra_emulator, aioentra_app):
    assert aioentra_emulator.requests.count("token", status=200) == 1
"""


def test_plugin_fixtures_in_a_fresh_session(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(TEST_FILE, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_plugin_is_harmless_when_unused(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "def test_nothing():\n    assert True\n", encoding="utf-8"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
