"""Fixtures: the middleware suite's own servers, token sources and emulator, shared by import.

``tests/middleware/conftest.py`` defines them once (a private CA, JWT-validating HTTPS APIs,
recording origins, a counting token source, the emulator and a ``TokenProvider`` on it);
importing them here registers the same fixtures for this directory.
"""

from __future__ import annotations

import ssl

import pytest

from aioentra.emulator import Emulator
from middleware.conftest import (
    BILLING_SCOPE,
    E2E_SCOPE,
    TODO_SCOPE,
    api,
    billing,
    clock,
    emu,
    emu_api,
    emu_app,
    issuer,
    other,
    provider,
    refresh_policy,
    source,
    third,
    tls,
    todo,
)
from middleware.support import Tls

__all__ = [
    "BILLING_SCOPE",
    "E2E_SCOPE",
    "TODO_SCOPE",
    "api",
    "billing",
    "clock",
    "emu",
    "emu_api",
    "emu_app",
    "issuer",
    "other",
    "provider",
    "refresh_policy",
    "source",
    "third",
    "tls",
    "todo",
]


@pytest.fixture
def e2e_verify(tls: Tls, emu: Emulator) -> ssl.SSLContext:
    """``verify=`` for an httpx client that trusts both CAs: the test APIs' and the emulator's."""
    return tls.client_context(emu.ca_file)
