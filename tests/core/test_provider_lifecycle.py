"""Lifecycle, back-off, tenants, sessions and secret hygiene of the TokenProvider."""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from aioentra import (
    AssertionContext,
    Certificate,
    ClientAssertion,
    ClientSecret,
    ConfigurationError,
    CredentialRejectedError,
    IdentityProviderUnavailableError,
    ProviderClosedError,
    ThrottledError,
    TokenProvider,
)
from aioentra.emulator import Api, App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


def _msal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("aioentra-msal")]


async def test_close_releases_a_worker_waiting_on_a_slow_async_credential(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    started = asyncio.Event()

    async def slow_assertion(context: AssertionContext) -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never.used.here"

    provider = make_provider(ClientAssertion(slow_assertion))
    waiter = asyncio.ensure_future(provider.get_token(SCOPE))
    await started.wait()
    await provider.close()
    with pytest.raises(ProviderClosedError):
        await waiter
    assert _msal_threads() == []
    assert [t for t in asyncio.all_tasks() if "slow_assertion" in repr(t)] == []


async def test_a_cancelled_close_still_finishes(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    await provider.get_token(SCOPE)
    closing = asyncio.ensure_future(provider.close())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await provider.close()  # waits for the same shutdown, which went on
    assert _msal_threads() == []
    assert provider._session is None


async def test_renewals_and_forced_refreshes_respect_the_back_off(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider() as provider:
        token = await provider.get_token(SCOPE)
        emulator.faults.add(Fault(endpoint="token", kind="throttle", retry_after=120, count=1))
        with pytest.raises(ThrottledError):
            await provider.renew_token(SCOPE, rejected=token)
        for _ in range(5):
            with pytest.raises(ThrottledError):
                await provider.renew_token(SCOPE, rejected=token)
            with pytest.raises(ThrottledError):
                await provider.get_token(SCOPE, force_refresh=True)
        # Plain callers still get the valid token meanwhile.
        assert await provider.get_token(SCOPE) == token
    assert token_requests(emulator, app) == 2


async def test_a_key_recovers_when_its_back_off_ends(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)
        failed = token_requests(emulator, app)
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)  # during the back-off: no request
        assert token_requests(emulator, app) == failed
        emulator.faults.clear()
        clock.advance(60)  # the back-off (at most max_failure_backoff) has run out
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == failed + 1


async def test_a_throttled_key_does_not_hold_the_worker_another_key_needs(
    emulator: Emulator, api: Api, app: App, make_provider: MakeProvider
) -> None:
    other_uri = "api://aioentra-tests-other"
    if emulator.state.find_api(emulator.tenant_id, other_uri) is None:
        emulator.add_api(other_uri)
    emulator.faults.add(Fault(endpoint="token", kind="throttle", retry_after=1, count=1))
    finished: list[str] = []

    async def get(scope: str) -> None:
        await provider.get_token(scope)
        finished.append(scope)

    async with make_provider(max_workers=1) as provider:
        throttled = asyncio.ensure_future(get(SCOPE))
        await asyncio.sleep(0.2)  # the first request has met its 429 and waits on the loop
        await get(f"{other_uri}/.default")
        await throttled
    assert finished == [f"{other_uri}/.default", SCOPE]
    assert token_requests(emulator, app) == 3


async def test_warm_hits_never_reach_the_engine(make_provider: MakeProvider) -> None:
    async with make_provider() as provider:
        token = await provider.get_token(SCOPE)
        engine = provider._engine
        assert engine is not None

        async def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a warm hit went to the engine")

        engine.acquire = refuse  # type: ignore[method-assign,assignment]
        for _ in range(1000):
            assert await provider.get_token(SCOPE) == token


async def test_multi_tenant_requests(
    emulator: Emulator, api: Api, make_provider: MakeProvider
) -> None:
    home = emulator.add_app("multi-tenant", secret=True)
    other = emulator.add_tenant(domain="fabrikam.onmicrosoft.com")
    emulator.consent(home, other.tenant_id)
    emulator.add_api("api://aioentra-tests", tenant=other.tenant_id)
    secret = ClientSecret(home.secret or "")
    allowed = make_provider(
        secret, client_id=home.client_id, additionally_allowed_tenants=[other.tenant_id.upper()]
    )
    async with allowed:
        lower = await allowed.get_token(SCOPE, tenant_id=other.tenant_id)
        upper = await allowed.get_token(SCOPE, tenant_id=other.tenant_id.upper())
        assert lower == upper  # one key, whatever the case
        with pytest.raises(ConfigurationError, match="not allowed"):
            await allowed.get_token(SCOPE, tenant_id="contoso.com")
    organizations = make_provider(secret, client_id=home.client_id, tenant_id="organizations")
    async with organizations:
        with pytest.raises(ConfigurationError, match="needs a tenant per request"):
            await organizations.get_token(SCOPE)
        assert await organizations.get_token(SCOPE, tenant_id=other.domain)
    assert emulator.requests.count(endpoint="token", client_id=home.client_id) == 2


async def test_user_session_is_used_without_its_own_behaviour(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    connector = aiohttp.TCPConnector(ssl=emulator.ssl_context())
    async with aiohttp.ClientSession(connector=connector, raise_for_status=True) as session:
        async with make_provider(ClientSecret("wrong-value-xyz"), session=session) as provider:
            with pytest.raises(CredentialRejectedError) as info:
                await provider.get_token(SCOPE)
        assert info.value.error_codes == (7000215,)
        assert not session.closed  # the caller's session stays the caller's
    assert token_requests(emulator, app) == 1
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer api-token"}) as leaky:
        with pytest.raises(ConfigurationError, match="default credentials"):
            make_provider(session=leaky)


async def test_provider_is_bound_to_its_event_loop(make_provider: MakeProvider) -> None:
    provider = make_provider()
    await provider.get_token(SCOPE)

    def elsewhere() -> None:
        with pytest.raises(ProviderClosedError, match="another event loop"):
            asyncio.run(provider.get_token(SCOPE, force_refresh=True))

    await asyncio.to_thread(elsewhere)
    await provider.close()


async def test_no_secret_in_logs_messages_or_traceback_locals(
    emulator: Emulator,
    api: Api,
    app: App,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cert_app = emulator.add_app("hygiene-cert", secret=False, certificate=True)
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    certificate = Certificate.from_pem(material.private_key_pem + material.certificate_pem)
    assertions: list[str] = []

    def recording_assertion(context: AssertionContext) -> str:
        assertions.append(certificate.get_assertion(context))
        return assertions[-1]

    secret = app.secret or ""
    rendered: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for credential, fault in [
            (ClientSecret(secret), Fault(endpoint="token", kind="status", status=503, count=None)),
            (ClientSecret(secret + "-wrong"), None),
            (
                ClientAssertion(recording_assertion),
                Fault(endpoint="token", kind="html", status=502, count=None),
            ),
        ]:
            emulator.faults.clear()
            if fault is not None:
                emulator.faults.add(fault)
            client_id = (
                app.client_id if isinstance(credential, ClientSecret) else cert_app.client_id
            )
            async with make_provider(credential, client_id=client_id) as provider:
                with pytest.raises(Exception) as info:
                    await provider.get_token(SCOPE)
                error = info.value
                # From the provider's frames down: what an error reporter capturing locals
                # would record (this test's own frame holds the secret on purpose).
                inner = error.__traceback__.tb_next if error.__traceback__ else None
                report = traceback.TracebackException(
                    type(error), error, inner, capture_locals=True
                )
                rendered.append("".join(report.format()))
                rendered.append(repr(provider) + repr(info.value))
        emulator.faults.clear()
        async with make_provider() as provider:
            token = await provider.get_token(SCOPE)
            rendered.append(repr(token) + str(token))
    text = caplog.text + "".join(rendered)
    assert assertions, "the assertion credential was used"
    for secret_value in [secret, token.token, *assertions]:
        assert secret_value not in text


async def test_an_unreadable_ca_file_is_a_configuration_error(
    emulator: Emulator, app: App, tmp_path: Path
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=str(bad),
    )
    async with provider:
        with pytest.raises(ConfigurationError, match="could not be loaded"):
            await provider.get_token(SCOPE)
    assert token_requests(emulator, app) == 0


async def test_per_tenant_msal_apps_are_bounded(
    emulator: Emulator, api: Api, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aioentra._engine.MAX_TENANT_APPS", 2)
    app = emulator.add_app("many-tenants", secret=True)
    tenants = []
    for _ in range(3):
        tenant = emulator.add_tenant()
        emulator.consent(app, tenant.tenant_id)
        emulator.add_api("api://aioentra-tests", tenant=tenant.tenant_id)
        tenants.append(tenant.tenant_id)
    provider = make_provider(
        ClientSecret(app.secret or ""), client_id=app.client_id, additionally_allowed_tenants=["*"]
    )
    async with provider:
        for tenant_id in tenants:
            await provider.get_token(SCOPE, tenant_id=tenant_id)
        engine = provider._engine
        assert engine is not None
        assert list(engine._apps) == tenants[1:]  # the least recently used one went
        discoveries = emulator.requests.count(endpoint="discovery", tenant=tenants[0])
        await provider.get_token(SCOPE, tenant_id=tenants[0], force_refresh=True)
        assert emulator.requests.count(endpoint="discovery", tenant=tenants[0]) == discoveries + 1
