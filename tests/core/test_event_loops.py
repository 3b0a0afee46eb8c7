"""A provider belongs to one event loop; carried into another, it fails at once, warm or not."""

from __future__ import annotations

import asyncio

import pytest

from aioentra import ClientSecret, ProviderClosedError, TokenProvider
from aioentra.emulator import App, Emulator

from .conftest import SCOPE, token_requests


def test_a_provider_carried_into_a_second_asyncio_run_fails_at_once(
    emulator: Emulator, app: App
) -> None:
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=emulator.ca_file,
    )

    async def first() -> None:
        await provider.get_token(SCOPE)  # warm from here on, until the loop shuts down
        # The mistake under test is not closing the provider; its session is closed here only
        # so that the test itself leaks nothing.
        session, provider._session = provider._session, None
        assert session is not None
        await session.close()

    asyncio.run(first())
    with pytest.raises(ProviderClosedError, match="another event loop"):
        asyncio.run(provider.get_token(SCOPE))  # the warm path, in a new loop
    assert token_requests(emulator, app) == 1

    asyncio.run(provider._workers.close())
