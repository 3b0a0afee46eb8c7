"""``python -m aioentra emulator`` as a real subprocess, and its fault syntax."""

from __future__ import annotations

import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from aioentra._cli import build_parser
from aioentra._cli.emulator import parse_fault


def read_lines(process: subprocess.Popen[str], until: str, timeout: float = 30.0) -> list[str]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"emulator exited early: {seen}")
        seen.append(line)
        if line.startswith(until):
            return seen


def test_cli_serves_discovery_and_registers_app(tmp_path: Path) -> None:
    config = tmp_path / "emu.json"
    config.write_text(json.dumps({"apis": [{"identifier_uri": "api://cli"}]}), encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "aioentra",
            "emulator",
            "--port",
            "0",
            "--config",
            str(config),
            "--token-lifetime",
            "900",
            "--register-app",
            "demo",
            "--fault",
            "jwks:status:503:1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = read_lines(process, "serving")
        values = dict(
            line.split("=", 1)
            for line in lines
            if "=" in line and not line.startswith(("#", "export"))
        )
        assert any(line.startswith("export REQUESTS_CA_BUNDLE=") for line in lines)
        assert not any(line.startswith("export SSL_CERT_FILE=") for line in lines)
        assert any("instance_discovery=False" in line for line in lines)
        app_line = next(line for line in lines if line.startswith("app demo:"))
        assert "client_id=" in app_line
        assert "client_secret=" in app_line
        context = ssl.create_default_context(cafile=values["ca_file"])
        url = f"{values['authority']}/v2.0/.well-known/openid-configuration"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            assert json.loads(response.read())["token_endpoint"] == values["token_endpoint"]
        jwks = f"{values['authority']}/discovery/v2.0/keys"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(jwks, context=context, timeout=10)
        assert info.value.code == 503
        info.value.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not Path(values["ca_file"]).exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_parse_fault() -> None:
    assert parse_fault("token:status:503:2").status == 503
    assert parse_fault("token:status:503:2").count == 2
    assert parse_fault("token:throttle:5").retry_after == 5
    assert parse_fault("token:latency:0.5").delay == 0.5
    assert parse_fault("discovery:reset").count is None
    with pytest.raises(ValueError, match="unknown kind"):
        parse_fault("token:boom")
    with pytest.raises(ValueError, match="expected"):
        parse_fault("token")


def test_parser_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
