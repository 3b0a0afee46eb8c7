"""``aioentra --json emulator``: the banner as one JSON line, then nothing until it stops."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from aioentra import IdentityProviderUnavailableError, TokenProvider
from aioentra._cli.emulator import describe
from aioentra.emulator import Api, App, Emulator


def test_json_banner_is_one_line_with_what_clients_need() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "aioentra", "--json", "emulator", "--port", "0",
         "--register-app", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
        assert set(banner) == {
            "base_url", "tenant_id", "tenant_domain", "authority", "token_endpoint", "ca_file",
            "vault_url", "environment", "apps",
        }  # fmt: skip
        assert banner["environment"]["AZURE_AUTHORITY_HOST"] == banner["base_url"]
        assert set(banner["environment"]) == {
            "AIOENTRA_CA_FILE", "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
        }  # fmt: skip
        assert banner["environment"]["AIOENTRA_CA_FILE"] == banner["ca_file"]
        [app] = banner["apps"]
        assert app["name"] == "demo" and app["client_id"] and app["client_secret"]
        context = ssl.create_default_context(cafile=banner["ca_file"])
        url = f"{banner['authority']}/v2.0/.well-known/openid-configuration"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            assert json.loads(response.read())["token_endpoint"] == banner["token_endpoint"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == ""  # one document: no "serving" or "stopped" lines
        assert not Path(banner["ca_file"]).exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


def _exports(lines: list[str]) -> dict[str, str]:
    """The banner's ``export NAME=value`` lines that need no file of the user's making."""
    exported = [line for line in lines if line.startswith("export ")]
    pairs = (line.removeprefix("export ").split("=", 1) for line in exported)
    return {name: value for name, value in pairs if "$PWD" not in value}


@pytest.mark.anyio
async def test_the_printed_ca_variable_is_the_one_aioentra_reads(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    aioentra_api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Export what the banner prints, add the app: ``from_environment()`` trusts the emulator.

    No process-wide trust is set, so the emulator's CA is trusted through the printed
    ``AIOENTRA_CA_FILE`` or not at all."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    emu = aioentra_isolated
    emu.grant(aioentra_app, aioentra_api, ["Test.Read"])
    lines = describe(emu)
    exported = _exports(lines)
    assert exported["AIOENTRA_CA_FILE"] == emu.ca_file
    assert "export REQUESTS_CA_BUNDLE=$PWD/emulator-bundle.pem" in lines
    assert not any(line.startswith("export SSL_CERT_FILE") for line in lines)
    environ = exported | {
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": aioentra_app.client_id,
        "AZURE_CLIENT_SECRET": aioentra_app.secret or "",
    }
    scope = f"{aioentra_api.identifier_uri}/.default"
    async with TokenProvider.from_environment(environ, trust_env=False) as provider:
        assert await provider.get_token(scope)
    untrusted = {k: v for k, v in environ.items() if k != "AIOENTRA_CA_FILE"}
    async with TokenProvider.from_environment(untrusted, trust_env=False) as provider:
        with pytest.raises(IdentityProviderUnavailableError, match="TLS verification failed"):
            await provider.get_token(scope)
    assert emu.requests.count("token", client_id=aioentra_app.client_id) == 1
