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
            "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
        }  # fmt: skip
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
