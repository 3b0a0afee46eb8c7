"""Fixtures for the emulator's own tests, from the shipped pytest plugin.

These tests look at an emulator's whole state (every request logged, every secret stored), so
each gets an emulator of its own: the plugin's ``aioentra_private_emulator``, served from its own
thread, which clients of any event loop or thread reach over the network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from aioentra.emulator import Emulator

#: The Key Vault SDKs cache each vault's 401 challenge (its tenant) process-wide, keyed by
#: ``host:port``. Emulators get ephemeral ports, which the OS reuses, so an emulator could meet
#: a challenge left by an earlier one of another tenant; each test starts with empty caches.
_CHALLENGE_CACHES = tuple(
    f"azure.keyvault.{kind}._shared.http_challenge_cache"
    for kind in ("secrets", "keys", "certificates")
)


@pytest.fixture(autouse=True)
def _fresh_vault_challenges() -> Iterator[None]:
    yield
    for name in _CHALLENGE_CACHES:
        module = sys.modules.get(name)
        if module is not None:
            module.clear()


@pytest.fixture
def emu(aioentra_private_emulator: Emulator) -> Emulator:
    return aioentra_private_emulator


@pytest.fixture
def threaded_emu(aioentra_private_emulator: Emulator) -> Emulator:
    """The same fixture under the name synchronous-client tests (msal) use."""
    return aioentra_private_emulator
