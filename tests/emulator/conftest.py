"""Fixtures for the emulator's own tests (Key Vault / managed-identity modules define theirs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from aioentra.emulator import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A running emulator on the test's event loop (async tests and raw HTTP clients)."""
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def threaded_emu() -> Iterator[Emulator]:
    """An emulator served from a background thread, for synchronous clients such as msal."""
    emulator = Emulator()
    with emulator.serve_in_thread():
        yield emulator
