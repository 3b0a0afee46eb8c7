"""The README's demo runs end to end against the embedded emulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_and_reports_each_step() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(DEMO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1. read 'todo-api-base-path' from Key Vault: '/todos'" in out
    assert "all answered ['water the plants', 'rotate the secrets']" in out
    assert "token requests sent so far: 2" in out
    assert "20 more API calls succeeded" in out
    assert "done: every task, thread and server is closed" in out
    assert "eyJ" not in out + result.stderr  # no token (JWT) printed anywhere
