"""The Azure SDK view (``as_azure_credential()``): Azure SDK clients stay inside the provider's
refresh-ahead window, and the view's options and its per-token azure-core objects.

An Azure SDK client keeps the token it got in its authentication policy and asks the credential
again only when it thinks the token due: azure-core's ``AsyncBearerTokenCredentialPolicy`` at
``refresh_on`` plus a jitter of up to 60 s, Key Vault's challenge policy at ``refresh_on`` or on
every request once less than five minutes are left. The provider refreshes in the background
from its own ``refresh_on`` and makes callers wait only past its usable window, so the view must
make the policy ask in between, whatever the jitter and the lifetime.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from itertools import cycle, repeat
from types import SimpleNamespace
from typing import Any
from unittest import mock

import aiohttp
import pytest
from azure.core import AsyncPipelineClient
from azure.core.credentials import (
    AccessToken as AzureAccessToken,
    AccessTokenInfo,
    TokenRequestOptions,
)
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    _authentication,
    _authentication_async,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.keyvault.secrets._shared import async_challenge_auth_policy as key_vault_policy
from azure.keyvault.secrets._shared.async_challenge_auth_policy import AsyncChallengeAuthPolicy
from azure.keyvault.secrets.aio import SecretClient

from aioentra import (
    AccessToken,
    AzureCredential,
    ClientSecret,
    ConfigurationError,
    FetchEvent,
    FetchReason,
    InvalidScopeError,
    RefreshPolicy,
    ServedFrom,
    Telemetry,
    TokenMetadata,
    TokenProvider,
    _policy,
)
from aioentra._azure import POLICY_JITTER, policy_refresh_on, usable_until
from aioentra.emulator import Api, App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests, unique

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]
VAULT_SCOPE = "https://vault.azure.net/.default"
SECRET = "azure-view-secret"
LIFETIMES = (10, 60, 120, 240, 301, 400, 600, 1200, 3599, 86400)


# -- which refresh_on is reported (fake times) -----------------------------------------------------


ISSUED = 1_000_000.0
"""When the tokens of the fake-time tests are issued (Unix time)."""


def _windows(lifetime: float, draw: str) -> tuple[float, float]:
    """``(refresh_on, usable_until)`` of a token issued at ``ISSUED``, with the provider's
    refresh start at the earliest or the latest point of its jitter."""
    pick = {"earliest": lambda low, high: low, "latest": lambda low, high: high}[draw]
    with mock.patch.object(_policy, "random", SimpleNamespace(uniform=pick)):
        refresh_after, usable_for = RefreshPolicy().windows(lifetime)
    return ISSUED + refresh_after, ISSUED + usable_for


@pytest.mark.parametrize("draw", ["earliest", "latest"])
@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_whatever_the_jitter_the_policy_asks_by_the_middle_of_the_window(
    lifetime: float, draw: str
) -> None:
    refresh_on, usable = _windows(lifetime, draw)
    reported = policy_refresh_on(refresh_on, usable)
    middle = (refresh_on + usable) / 2
    assert reported <= refresh_on
    for jitter in range(int(POLICY_JITTER) + 1):  # azure-core draws a whole second in [0, 60]
        assert reported + jitter <= middle + 1e-9
    if usable - refresh_on >= 2 * POLICY_JITTER:  # a window wider than the jitter: unchanged
        assert reported == refresh_on


def test_a_long_lived_token_reports_its_own_refresh_on_and_a_short_one_an_earlier_one() -> None:
    assert policy_refresh_on(1800.0, 3540.0) == 1800.0
    assert policy_refresh_on(60.0, 90.0) == 15.0  # asks land in [15, 75]; the window is [60, 90)
    assert policy_refresh_on(100.0, 100.0) == 40.0  # no refresh-ahead window at all
    assert policy_refresh_on(60.0, 90.0, jitter=0) == 60.0  # a policy that asks at refresh_on


def test_the_usable_window_is_read_off_the_token() -> None:
    policy = RefreshPolicy(expiry_margin=90.0)
    metadata = TokenMetadata(ServedFrom.MEMORY, FetchReason.COLD, 1000.0, 0.1)
    long_lived = AccessToken("t", 1000.0 + 3600, 1000.0 + 1800, SCOPE, metadata=metadata)
    short = AccessToken("t", 1000.0 + 120, 1000.0 + 60, SCOPE, metadata=metadata)
    made_elsewhere = AccessToken("t", 5000.0, 4000.0, SCOPE)
    assert usable_until(long_lived, policy) == 1000.0 + 3600 - 90
    assert usable_until(short, policy) == 1000.0 + 120 - 30  # a quarter of the lifetime
    assert usable_until(made_elsewhere, policy) == 5000.0 - 90  # the widest margin


class _Wall:
    """The wall clock azure-core's policies read (``time.time()``), moved by hand."""

    def __init__(self) -> None:
        self.now = ISSUED

    def time(self) -> float:
        return self.now


def _step(lifetime: float) -> float:
    """The simulations' time step."""
    return max(lifetime / 20_000, 0.01)


def _first_ask_from(
    policy: Any,
    info: AccessTokenInfo | AzureAccessToken,
    wall: _Wall,
    refresh_on: float,
    jitters: Iterator[int],
) -> float:
    """When the policy, holding ``info`` from ``ISSUED`` on, first asks at or after
    ``refresh_on`` (the ask that starts the provider's background refresh). Each earlier ask is
    answered with the same token (fresh: no fetch), as the provider answers it."""
    step = _step(info.expires_on - ISSUED)
    policy._token, policy._refresh_jitter = info, next(jitters)
    while wall.now < info.expires_on:
        if policy._need_new_token():
            if wall.now >= refresh_on:
                return wall.now
            policy._token, policy._refresh_jitter = info, next(jitters)
        wall.now += step
    return wall.now


@pytest.mark.parametrize("jitter", ["none", "most", "cycling"])
@pytest.mark.parametrize("lifetime", LIFETIMES)
@pytest.mark.parametrize("client", ["azure-core", "key vault", "azure-core, get_token"])
def test_azure_core_s_own_decision_asks_inside_the_refresh_ahead_window(
    monkeypatch: pytest.MonkeyPatch, client: str, lifetime: float, jitter: str
) -> None:
    """The policies' own ``_need_new_token``, on fake times: the first ask at or after the
    provider's ``refresh_on`` comes before its usable window ends (by its middle, give or take
    the simulation's step), for either end of the provider's jitter and any of azure-core's.

    Through ``get_token`` (a policy given a credential without ``get_token_info``) there is
    no ``refresh_on``: azure-core asks from five minutes before expiry on (every request for a
    shorter token), still inside the usable window, though not always by its middle.
    """
    wall = _Wall()
    monkeypatch.setattr(_authentication, "time", wall)
    monkeypatch.setattr(key_vault_policy, "time", wall)
    credential: Any = SimpleNamespace()
    if client == "key vault":
        policy: Any = AsyncChallengeAuthPolicy(credential)
    else:
        policy = AsyncBearerTokenCredentialPolicy(credential, VAULT_SCOPE)
    for draw in ("earliest", "latest"):
        refresh_on, usable = _windows(lifetime, draw)
        reported = policy_refresh_on(refresh_on, usable)
        expires_on = int(ISSUED + lifetime)
        info: AccessTokenInfo | AzureAccessToken = AccessTokenInfo(
            "t", expires_on, refresh_on=int(reported)
        )
        if client == "azure-core, get_token":
            info = AzureAccessToken("t", expires_on)
        jitters = {
            "none": repeat(0),
            "most": repeat(int(POLICY_JITTER)),
            "cycling": cycle(range(int(POLICY_JITTER) + 1)),
        }[jitter]
        wall.now = ISSUED
        asked = _first_ask_from(policy, info, wall, refresh_on, jitters)
        assert refresh_on <= asked < usable
        if client != "azure-core, get_token":
            assert asked <= (refresh_on + usable) / 2 + _step(lifetime)


def test_the_token_s_own_refresh_on_would_make_azure_core_ask_too_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why the view does not report the token's own ``refresh_on`` for a short-lived token:
    with azure-core's jitter the policy would first ask after the usable window."""
    wall = _Wall()
    monkeypatch.setattr(_authentication, "time", wall)
    credential: Any = SimpleNamespace()
    policy = AsyncBearerTokenCredentialPolicy(credential, VAULT_SCOPE)
    refresh_on, usable = _windows(120, "earliest")
    info = AccessTokenInfo("t", int(ISSUED + 120), refresh_on=int(refresh_on))
    assert _first_ask_from(policy, info, wall, refresh_on, repeat(60)) >= usable


# -- Azure SDK clients across rollovers, against the emulator -------------------------------------


class _Fetches(Telemetry):
    def __init__(self) -> None:
        self.events: list[FetchEvent] = []

    def fetch_ended(self, event: FetchEvent) -> None:
        self.events.append(event)

    @property
    def reasons(self) -> list[FetchReason]:
        return [event.reason for event in self.events]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """One manual clock for the provider and for the Azure SDK policies (which read
    ``time.time()``), and azure-core's jitter at its largest: the latest it ever asks."""
    clock = ManualClock()
    wall = SimpleNamespace(time=clock.time)
    monkeypatch.setattr(_authentication, "time", wall)
    monkeypatch.setattr(key_vault_policy, "time", wall)
    monkeypatch.setattr(_authentication_async, "random", SimpleNamespace(randint=lambda a, b: b))
    return clock


Call = Callable[[], Awaitable[None]]


@asynccontextmanager
async def _transport(emulator: Emulator) -> AsyncIterator[AioHttpTransport]:
    """azure-core's aiohttp transport trusting the emulator, keeping its connections open
    (``connection_verify=<CA file>`` would make a TLS context, so a connection, per request)."""
    connector = aiohttp.TCPConnector(ssl=emulator.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield AioHttpTransport(session=session, session_owner=False)


@asynccontextmanager
async def _key_vault(emulator: Emulator, credential: Any) -> AsyncIterator[Call]:
    """azure-keyvault-secrets' ``SecretClient`` (its challenge policy)."""
    async with (
        _transport(emulator) as transport,
        SecretClient(
            emulator.vault.url, credential, verify_challenge_resource=False, transport=transport
        ) as client,
    ):

        async def call() -> None:
            assert (await client.get_secret(SECRET)).value == "value"

        yield call


@asynccontextmanager
async def _azure_core(emulator: Emulator, credential: Any) -> AsyncIterator[Call]:
    """azure-core's pipeline client with its ``AsyncBearerTokenCredentialPolicy``, the policy
    most Azure SDK clients put in their pipelines."""
    policy = AsyncBearerTokenCredentialPolicy(credential, VAULT_SCOPE)
    async with _transport(emulator) as transport:
        client: AsyncPipelineClient[HttpRequest, AsyncHttpResponse] = AsyncPipelineClient(
            emulator.vault.url, policies=[policy], transport=transport
        )
        async with client:
            url = f"{emulator.vault.url}/secrets/{SECRET}?api-version=7.5"

            async def call() -> None:
                response = await client.send_request(HttpRequest("GET", url))
                assert response.status_code == 200

            yield call


def _short_tokens(emulator: Emulator, app: App, lifetime: int, count: int) -> None:
    """The next ``count`` token answers for ``app``: real vault tokens, said to live
    ``lifetime`` seconds (the token endpoint issues none shorter than 301 s)."""
    for _ in range(count):
        token, _ = emulator.issue_access_token(
            tenant_id=emulator.tenant_id,
            client_id=app.client_id,
            object_id=app.object_id,
            resource="https://vault.azure.net",
        )
        body = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
        emulator.faults.add(
            Fault("token", "respond", body=json.dumps(body), client_id=app.client_id, count=1)
        )


TOKENS = 4
"""Tokens each run goes through: the first and three rollovers."""


@pytest.mark.parametrize("lifetime", [120, 301, 3599])
@pytest.mark.parametrize("client", [_key_vault, _azure_core], ids=["key vault", "azure-core"])
async def test_an_azure_sdk_client_never_waits_for_a_rollover(
    emulator: Emulator,
    app: App,
    make_provider: MakeProvider,
    clock: ManualClock,
    client: Callable[[Emulator, Any], Any],
    lifetime: int,
) -> None:
    """Concurrent requests through a real Azure SDK client, with time moving in steps a
    twentieth of the lifetime long: one token request per rollover, and every one after the
    first a background refresh (no caller waited for a token)."""
    emulator.vault.set_secret(SECRET, "value")
    emulator.vault.grant(app, ["get"])
    if lifetime > 300:
        emulator.token_lifetime = lifetime
    else:
        _short_tokens(emulator, app, lifetime, TOKENS + 2)
    fetches = _Fetches()
    provider = make_provider(clock=clock, telemetry=fetches)
    async with provider, client(emulator, provider.as_azure_credential()) as call:
        started = clock.monotonic()
        while len(fetches.events) < TOKENS:
            assert clock.monotonic() - started < TOKENS * lifetime, fetches.reasons
            await asyncio.gather(*(call() for _ in range(10)))
            # A background refresh lands before time moves on, as it does in real time.
            await asyncio.gather(*provider._flight.tasks())
            clock.advance(lifetime / 20)
    assert fetches.reasons == [FetchReason.COLD] + [FetchReason.AHEAD] * (TOKENS - 1)
    assert all(event.succeeded for event in fetches.events)
    assert {event.expires_in for event in fetches.events} == {lifetime}
    assert token_requests(emulator, app) == TOKENS


async def test_many_tasks_through_one_client_share_each_token(
    emulator: Emulator, app: App, make_provider: MakeProvider, clock: ManualClock
) -> None:
    """300 concurrent requests at each rollover through azure-core's policy, short tokens."""
    emulator.vault.set_secret(SECRET, "value")
    emulator.vault.grant(app, ["get"])
    _short_tokens(emulator, app, 120, TOKENS + 2)
    fetches = _Fetches()
    provider = make_provider(clock=clock, telemetry=fetches)
    async with provider, _azure_core(emulator, provider.as_azure_credential()) as call:
        for _ in range(TOKENS):
            await asyncio.gather(*(call() for _ in range(300)))
            await asyncio.gather(*provider._flight.tasks())
            # A 2-minute token's background refresh starts between 60 and 75 s and callers
            # wait from 90 s on; the policy, its jitter at the largest, asks by 82.5 s.
            clock.advance(85)
    assert fetches.reasons == [FetchReason.COLD] + [FetchReason.AHEAD] * (TOKENS - 1)
    assert token_requests(emulator, app) == TOKENS


# -- options, and what the view hands out ----------------------------------------------------


async def test_the_view_builds_each_token_s_azure_core_form_once(
    make_provider: MakeProvider, clock: ManualClock
) -> None:
    async with make_provider(clock=clock) as provider:
        credential = provider.as_azure_credential()
        token = await provider.get_token(SCOPE)
        first = await credential.get_token_info(SCOPE)
        assert await credential.get_token_info(SCOPE) is first
        assert await credential.get_token_info(SCOPE, options={"enable_cae": True}) is first
        legacy = await credential.get_token(SCOPE)
        assert await credential.get_token(SCOPE, enable_cae=True) is legacy
        assert (first.token, legacy.token) == (token.token, token.token)
        assert first.expires_on == legacy.expires_on == int(token.expires_on)
        refresh_on = policy_refresh_on(token.refresh_on, usable_until(token, RefreshPolicy()))
        assert first.refresh_on == int(refresh_on) and first.token_type == "Bearer"
        clock.advance(provider._flight.slots[SCOPE].usable_until - clock.monotonic())
        renewed = await credential.get_token_info(SCOPE)
        assert renewed.token != first.token
        assert await credential.get_token_info(SCOPE) is not first


async def test_the_provider_s_own_tenant_is_the_plain_token(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """Key Vault names the tenant of its challenge, the provider's own: the plain token."""
    async with make_provider() as provider:
        credential = provider.as_azure_credential()
        await provider.get_token(SCOPE)  # the fetch's own answer is a token object of its own
        plain = await credential.get_token_info(SCOPE)
        for tenant in (emulator.tenant_id, emulator.tenant_id.upper()):
            named = await credential.get_token_info(
                SCOPE, options={"tenant_id": tenant, "enable_cae": True}
            )
            assert named is plain
            assert (await credential.get_token(SCOPE, tenant_id=tenant)).token == plain.token
    assert token_requests(emulator, app) == 1


async def test_claims_and_other_tenants_go_to_the_provider(
    emulator: Emulator, api: Api, make_provider: MakeProvider
) -> None:
    home = emulator.add_app("azure-view-multi-tenant", secret=True)
    other = emulator.add_tenant(domain=f"{unique('azure-view')}.onmicrosoft.com")
    emulator.consent(home, other.tenant_id)
    emulator.add_api("api://aioentra-tests", tenant=other.tenant_id)
    provider = make_provider(
        ClientSecret(home.secret or ""),
        client_id=home.client_id,
        additionally_allowed_tenants=[other.tenant_id],
    )
    async with provider:
        credential = provider.as_azure_credential()
        plain = await credential.get_token_info(SCOPE)
        elsewhere = await credential.get_token_info(SCOPE, options={"tenant_id": other.tenant_id})
        legacy_elsewhere = await credential.get_token(SCOPE, tenant_id=other.tenant_id)
        assert elsewhere.token == legacy_elsewhere.token != plain.token
        claims = '{"access_token": {"nbf": {"essential": true, "value": "1"}}}'
        answered = await credential.get_token_info(SCOPE, options={"claims": claims})
        assert (await credential.get_token(SCOPE, claims=claims)).token == answered.token
        assert answered.token != plain.token
        assert (await credential.get_token_info(SCOPE)).token == answered.token  # supersedes
        with pytest.raises(ConfigurationError, match="not allowed"):
            await credential.get_token_info(SCOPE, options={"tenant_id": "contoso.com"})
        with pytest.raises(ConfigurationError, match="not allowed"):
            await credential.get_token(SCOPE, tenant_id="contoso.com")
        with pytest.raises(ConfigurationError, match="TokenRequestOptions"):
            await credential.get_token_info(SCOPE, options=["claims"])  # type: ignore[arg-type]
        for scopes in ((), (SCOPE, VAULT_SCOPE)):
            with pytest.raises(InvalidScopeError, match="exactly one scope"):
                await credential.get_token_info(*scopes)
            with pytest.raises(InvalidScopeError, match="exactly one scope"):
                await credential.get_token(*scopes)
    assert emulator.requests.count(endpoint="token", client_id=home.client_id) == 3


class _GetTokenOnly:
    """A token source of an app's own: ``get_token`` and nothing else (no peek, no tenants)."""

    def __init__(self, token: AccessToken) -> None:
        self.token = token
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def get_token(
        self, scope: str, *, claims: str | None = None, tenant_id: str | None = None
    ) -> AccessToken:
        self.calls.append((scope, claims, tenant_id))
        return self.token


async def test_a_source_with_only_get_token_is_asked_every_time() -> None:
    token = AccessToken("t", ISSUED + 3600, ISSUED + 1800, SCOPE)  # no metadata
    source = _GetTokenOnly(token)
    credential = AzureCredential(source)
    kv: TokenRequestOptions = {"tenant_id": "contoso.com", "enable_cae": True}
    info = await credential.get_token_info(SCOPE, options=kv)
    assert await credential.get_token_info(SCOPE) is info
    assert (await credential.get_token(SCOPE, tenant_id="contoso.com")).token == "t"
    named, plain = (SCOPE, None, "contoso.com"), (SCOPE, None, None)
    assert source.calls == [named, plain, named]  # tenants as given: nothing says whose they are
    usable = ISSUED + 3600 - RefreshPolicy().expiry_margin
    assert info.refresh_on == int(policy_refresh_on(ISSUED + 1800, usable)) == ISSUED + 1800
    assert info.expires_on == ISSUED + 3600
