"""Shared test configuration: every async test runs on asyncio through anyio's pytest plugin,
and no test may log a secret."""

from __future__ import annotations

import sys

import pytest

from aioentra.testing import SecretGuard

pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_secret_in_logs(aioentra_secret_guard: SecretGuard) -> SecretGuard:
    """Every test runs under the plugin's secret guard: each log record of each logger is
    captured at DEBUG, and a record carrying a secret fails the test (docs/emulator.md)."""
    return aioentra_secret_guard


def pytest_configure(config: pytest.Config) -> None:
    if sys.version_info < (3, 11):
        # Python 3.10's asyncio SSL transport warns from __del__ after a peer resets the
        # connection mid-handshake (the fault tests do that on purpose); 3.11 rewrote
        # sslproto and does not. Everything else stays an error.
        config.addinivalue_line(
            "filterwarnings", "ignore:unclosed transport <asyncio.sslproto:ResourceWarning"
        )
