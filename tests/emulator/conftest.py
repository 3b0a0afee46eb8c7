"""Fixtures for the emulator's own tests, from the shipped pytest plugin.

These tests look at an emulator's whole state (every request logged, every secret stored), so
each gets an emulator of its own: the plugin's ``aioentra_private_emulator``, served from its own
thread, which clients of any event loop or thread reach over the network.
"""

from __future__ import annotations

import pytest

from aioentra.emulator import Emulator


@pytest.fixture
def emu(aioentra_private_emulator: Emulator) -> Emulator:
    return aioentra_private_emulator


@pytest.fixture
def threaded_emu(aioentra_private_emulator: Emulator) -> Emulator:
    """The same fixture under the name synchronous-client tests (msal) use."""
    return aioentra_private_emulator
