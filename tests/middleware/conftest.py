"""Fixtures: a private CA, HTTPS APIs, other origins, a token source, and the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from aioentra import ClientSecret, RefreshPolicy, RetryPolicy, TokenProvider
from aioentra.emulator import Api, App, Emulator
from aioentra.testing import ManualClock

from .support import FakeTokenSource, LocalIssuer, ProtectedApi, RecordingServer, Tls

TODO_SCOPE = "api://todo/.default"
BILLING_SCOPE = "api://billing/.default"


@pytest.fixture(scope="session")
def tls() -> Tls:
    return Tls()


@pytest.fixture(scope="session")
def issuer() -> LocalIssuer:
    return LocalIssuer()


@pytest.fixture
async def api(tls: Tls, issuer: LocalIssuer) -> AsyncIterator[ProtectedApi]:
    """The protected API (audience ``api://todo``) on an HTTPS loopback origin."""
    server = ProtectedApi(
        tls.server_context(), jwks=issuer.jwks, audience="api://todo", issuer=issuer.issuer
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def billing(tls: Tls, issuer: LocalIssuer) -> AsyncIterator[ProtectedApi]:
    """A second protected API with another audience (``api://billing``)."""
    server = ProtectedApi(
        tls.server_context(), jwks=issuer.jwks, audience="api://billing", issuer=issuer.issuer
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def other(tls: Tls) -> AsyncIterator[RecordingServer]:
    """An origin that is not in the map: it must never see a token."""
    server = RecordingServer(tls.server_context())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def third(tls: Tls) -> AsyncIterator[RecordingServer]:
    server = RecordingServer(tls.server_context())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def source(issuer: LocalIssuer) -> AsyncIterator[FakeTokenSource]:
    fake = FakeTokenSource(issuer)
    yield fake
    await fake.close()


# -- the real thing: TokenProvider + emulator ----------------------------------------------------

E2E_URI = "api://todo-e2e"
E2E_SCOPE = f"{E2E_URI}/.default"


@pytest.fixture
def emu(aioentra_isolated: Emulator) -> Emulator:
    """The session's emulator (the shipped pytest plugin's)."""
    return aioentra_isolated


@pytest.fixture
def emu_api(emu: Emulator) -> Api:
    found = emu.state.find_api(emu.tenant_id, E2E_URI)
    return found if found is not None else emu.add_api(E2E_URI, roles=["Todo.Read"])


@pytest.fixture
def emu_app(emu: Emulator, emu_api: Api, aioentra_app: App) -> App:
    emu.grant(aioentra_app, emu_api, ["Todo.Read"])
    return aioentra_app


@pytest.fixture
def refresh_policy() -> RefreshPolicy:
    return RefreshPolicy()


@pytest.fixture
def clock() -> ManualClock:
    """The provider's clock: it moves only when a test advances it."""
    return ManualClock()


@pytest.fixture
async def provider(
    emu: Emulator, emu_app: App, refresh_policy: RefreshPolicy, clock: ManualClock
) -> AsyncIterator[TokenProvider]:
    async with TokenProvider(
        ClientSecret(emu_app.secret or ""),
        tenant_id=emu.tenant_id,
        client_id=emu_app.client_id,
        authority=emu.base_url,
        ca_file=emu.ca_file,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
        refresh=refresh_policy,
        clock=clock,
    ) as token_provider:
        yield token_provider


@pytest.fixture
async def todo(tls: Tls, emu: Emulator, emu_api: Api) -> AsyncIterator[ProtectedApi]:
    """A protected API that validates the emulator's tokens (JWKS, aud = the API's app id, iss)."""
    server = ProtectedApi(
        tls.server_context(), jwks=emu.jwks, audience=emu_api.app_id, issuer=emu.issuer()
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client_connector(tls: Tls, emu: Emulator) -> aiohttp.TCPConnector:
    """Trusts both CAs: the test APIs' (trustme) and the emulator's."""
    return aiohttp.TCPConnector(ssl=tls.client_context(emu.ca_file), limit=0)
