"""ManagedIdentityProvider against the emulator's managed identity endpoint, msal in the path."""

from __future__ import annotations

import asyncio

import pytest
from azure.keyvault.secrets.aio import SecretClient

from aioentra import (
    ConfigurationError,
    IdentityProviderUnavailableError,
    ManagedIdentityProvider,
    RefreshPolicy,
    RetryPolicy,
)
from aioentra.emulator import Emulator, Fault, ManagedIdentity
from aioentra.testing import ManualClock

from .conftest import use_managed_identity

pytestmark = pytest.mark.anyio

VAULT_SCOPE = "https://vault.azure.net/.default"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


@pytest.fixture
def identity(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ManagedIdentity:
    """A user-assigned identity, served through the App Service form of the endpoint."""
    use_managed_identity(monkeypatch, emulator.managed_identity.environ)
    return emulator.managed_identity.add_identity()


def mi_requests(emulator: Emulator, identity: ManagedIdentity) -> int:
    return emulator.requests.count(endpoint="managed_identity", client_id=identity.client_id)


async def test_a_hundred_concurrent_callers_cause_one_request(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    emulator.faults.add(Fault("managed_identity", "latency", delay=0.2))
    async with ManagedIdentityProvider(client_id=identity.client_id, retry=FAST) as provider:
        tokens = await asyncio.gather(*(provider.get_token(VAULT_SCOPE) for _ in range(100)))
        assert len({t.token for t in tokens}) == 1
        assert await provider.get_token(VAULT_SCOPE) == tokens[0]
    assert mi_requests(emulator, identity) == 1


async def test_it_is_the_vault_credential_of_an_azure_sdk_client(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    emulator.vault.set_secret("from-identity", "hello")
    emulator.vault.grant(identity, ["get"])
    async with ManagedIdentityProvider(client_id=identity.client_id) as provider:
        client = SecretClient(
            emulator.vault.url,
            provider.as_azure_credential(),
            verify_challenge_resource=False,
            connection_verify=emulator.ca_file,
        )
        async with client:
            assert (await client.get_secret("from-identity")).value == "hello"
            assert (await client.get_secret("from-identity")).value == "hello"
    assert mi_requests(emulator, identity) == 1


async def test_an_outage_is_invisible_while_the_token_is_usable(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    clock = ManualClock()
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    async with ManagedIdentityProvider(
        client_id=identity.client_id, retry=retry, clock=clock
    ) as provider:
        token = await provider.get_token(VAULT_SCOPE)
        lifetime = token.expires_on - clock.time()
        clock.advance(lifetime - 61)  # refresh-ahead, past any jitter
        emulator.faults.add(Fault("managed_identity", "status", status=503, count=None))
        served = await asyncio.gather(*(provider.get_token(VAULT_SCOPE) for _ in range(50)))
        assert all(t == token for t in served)
        task = provider._flight.slots[VAULT_SCOPE].task
        assert task is not None
        with pytest.raises(IdentityProviderUnavailableError):
            await asyncio.shield(task)
        assert mi_requests(emulator, identity) == 1 + 2
        clock.advance(60)  # the must-refresh window: callers wait and share the error
        results = await asyncio.gather(
            *(provider.get_token(VAULT_SCOPE) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, IdentityProviderUnavailableError) for r in results)
        assert mi_requests(emulator, identity) == 1 + 2 + 2


async def test_imds_updating_is_retried(emulator: Emulator, identity: ManagedIdentity) -> None:
    emulator.faults.add(Fault("managed_identity", "status", status=410, count=1))
    async with ManagedIdentityProvider(client_id=identity.client_id, retry=FAST) as provider:
        assert await provider.get_token(VAULT_SCOPE)
    assert mi_requests(emulator, identity) == 2


async def test_an_identity_not_on_this_machine_is_a_configuration_error(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    async with ManagedIdentityProvider(
        client_id="00000000-0000-0000-0000-0000000000aa", retry=FAST
    ) as provider:
        with pytest.raises(ConfigurationError, match="HTTP 400") as info:
            await provider.get_token(VAULT_SCOPE)
        assert "assigned to this machine" in (info.value.hint or "")


async def test_claims_are_a_rate_limited_renewal(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    clock = ManualClock()
    async with ManagedIdentityProvider(client_id=identity.client_id, clock=clock) as provider:
        first = await provider.get_token(VAULT_SCOPE)
        answered = [
            await provider.get_token(VAULT_SCOPE, claims=f'{{"access_token": {{"n": {n}}}}}')
            for n in range(10)
        ]
        assert answered[0].token != first.token
        assert {a.token for a in answered} == {answered[0].token}
        clock.advance(RefreshPolicy().renewal_interval)
        renewed = await provider.renew_token(VAULT_SCOPE, rejected=answered[0])
        assert renewed.token != answered[0].token
    assert mi_requests(emulator, identity) == 3


def test_configuration_is_checked_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="once"):
        ManagedIdentityProvider(client_id="a", object_id="b")
    with pytest.raises(ConfigurationError, match="malformed"):
        ManagedIdentityProvider(client_id="has space")
    assert "system-assigned" in repr(ManagedIdentityProvider())
    assert "client_id=abc" in repr(ManagedIdentityProvider(client_id="abc"))


async def test_a_tenant_changes_nothing(emulator: Emulator, identity: ManagedIdentity) -> None:
    async with ManagedIdentityProvider(client_id=identity.client_id) as provider:
        plain = await provider.get_token(VAULT_SCOPE)
        assert await provider.get_token(VAULT_SCOPE, tenant_id="contoso.com") == plain
    assert mi_requests(emulator, identity) == 1


async def test_the_imds_form_serves_a_hundred_callers_with_one_request(
    emulator: Emulator, identity: ManagedIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_managed_identity(monkeypatch, emulator.managed_identity.imds_environ)
    emulator.faults.add(Fault("managed_identity", "latency", delay=0.2))
    async with ManagedIdentityProvider(client_id=identity.client_id, retry=FAST) as provider:
        tokens = await asyncio.gather(*(provider.get_token(VAULT_SCOPE) for _ in range(100)))
    assert len({t.token for t in tokens}) == 1
    imds = [
        r
        for r in emulator.requests.filter("managed_identity", client_id=identity.client_id)
        if r.path.startswith("/metadata/identity/oauth2/token")
    ]
    assert len(imds) == 1


async def test_it_authenticates_an_aiohttp_session_to_a_protected_api(
    emulator: Emulator, identity: ManagedIdentity
) -> None:
    import aiohttp
    from aiohttp import web

    api = emulator.add_api(f"api://mi-orders-{identity.client_id[:8]}", roles=["Orders.Read"])
    emulator.grant(identity.app, api, ["Orders.Read"])
    seen: list[list[str]] = []

    async def orders(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        claims = emulator.verify_access_token(header.removeprefix("Bearer "))
        seen.append(list(claims.get("roles", [])))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/orders", orders)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=emulator.server_ssl_context())
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    origin = f"https://127.0.0.1:{port}"
    try:
        from aioentra.aiohttp import authenticated_session

        connector = aiohttp.TCPConnector(ssl=emulator.ssl_context())
        async with (
            ManagedIdentityProvider(client_id=identity.client_id) as provider,
            authenticated_session(
                provider, {origin: f"{api.identifier_uri}/.default"}, connector=connector
            ) as session,
        ):
            for _ in range(3):
                async with session.get(f"{origin}/orders") as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    assert seen == [["Orders.Read"]] * 3
    assert mi_requests(emulator, identity) == 1
