"""TokenProvider with a RedisCache behind its own cell, in one process (several providers
stand in for replicas: each has its own connection pool)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cache_support import RedisServer

from aioentra import ClientSecret, ConfigurationError, ServedFrom, TokenProvider
from aioentra._config import Settings
from aioentra.emulator import Api, App, Emulator, Fault
from aioentra.redis import RedisCache

pytestmark = pytest.mark.anyio

KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def scope(aioentra_isolated: Emulator, aioentra_app: App) -> str:
    uri = f"api://shared-{uuid.uuid4().hex[:8]}"
    api: Api = aioentra_isolated.add_api(uri, roles=["Things.Read"])
    aioentra_isolated.grant(aioentra_app, api, ["Things.Read"])
    return f"{uri}/.default"


@pytest.fixture
async def make(
    aioentra_isolated: Emulator, aioentra_app: App, redis_server: RedisServer, prefix: str
) -> AsyncIterator[Callable[..., TokenProvider]]:
    built: list[TokenProvider] = []

    def build(**options: Any) -> TokenProvider:
        provider = TokenProvider(
            ClientSecret(aioentra_app.secret or ""),
            tenant_id=aioentra_isolated.tenant_id,
            client_id=aioentra_app.client_id,
            authority=aioentra_isolated.base_url,
            ca_file=aioentra_isolated.ca_file,
            cache=options.pop("cache", None)
            or RedisCache(redis_server.url, key=KEY, prefix=prefix),
            **options,
        )
        built.append(provider)
        return provider

    yield build
    for provider in built:
        await provider.close()


def token_requests(emu: Emulator, app: App, scope: str) -> int:
    return sum(1 for r in emu.requests.filter("token", client_id=app.client_id) if r.scope == scope)


def commands(raw: Any) -> int:
    stats = raw.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


async def test_the_warm_path_makes_no_redis_call(
    make: Callable[..., TokenProvider], scope: str, raw: Any
) -> None:
    provider = make()
    first = await provider.get_token(scope)
    before = commands(raw)
    for _ in range(1000):
        assert await provider.get_token(scope) == first
    assert commands(raw) == before


async def test_replicas_share_one_token_and_redis_holds_no_readable_token(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
    raw: Any,
    prefix: str,
) -> None:
    replicas = [make() for _ in range(5)]
    tokens = [await replica.get_token(scope) for replica in replicas]
    assert len({t.token for t in tokens}) == 1
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 1
    # Each token says where it came from, and so do the replicas' stats.
    sources = [t.metadata.source if t.metadata else None for t in tokens]
    assert sources == [ServedFrom.NETWORK] + [ServedFrom.SHARED_CACHE] * 4
    assert [r.stats().shared_cache_hits for r in replicas] == [0, 1, 1, 1, 1]
    again = await replicas[1].get_token(scope)
    assert again.metadata is not None and again.metadata.source is ServedFrom.MEMORY
    names = list(raw.scan_iter(match=f"{prefix}:token:*"))
    stored = [raw.get(name) for name in names]
    assert len(stored) == 2  # the token and the discovery document
    assert not [blob for blob in stored if tokens[0].token.encode() in blob or b"eyJ" in blob]
    token_ttl, document_ttl = sorted(raw.pttl(name) for name in names)
    assert 0 < token_ttl <= 3600 * 1000 < document_ttl <= 24 * 3600 * 1000


async def test_a_renewal_after_a_401_never_takes_the_rejected_token_back_from_redis(
    aioentra_isolated: Emulator, aioentra_app: App, make: Callable[..., TokenProvider], scope: str
) -> None:
    one, two = make(), make()
    rejected = await one.get_token(scope)
    assert (await two.get_token(scope)).token == rejected.token  # from the shared cache
    renewed = await one.renew_token(scope, rejected=rejected)
    assert renewed.token != rejected.token
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 2
    # the other replica's renewal of the same rejected token takes the new one from Redis
    assert (await two.renew_token(scope, rejected=rejected)).token == renewed.token
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 2


async def test_a_tampered_entry_is_a_miss_not_an_error(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
    raw: Any,
    prefix: str,
) -> None:
    await make().get_token(scope)
    for name in raw.scan_iter(match=f"{prefix}:token:*"):
        value = bytearray(raw.get(name))
        value[-1] ^= 0xFF
        raw.set(name, bytes(value), px=60_000)
    assert await make().get_token(scope)  # fetched again, no error
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 2


async def test_an_entry_under_another_key_is_a_miss(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
    redis_server: RedisServer,
    prefix: str,
) -> None:
    await make().get_token(scope)
    other_key = base64.b64encode(os.urandom(32)).decode()
    foreign = make(cache=RedisCache(redis_server.url, key=other_key, prefix=prefix))
    assert await foreign.get_token(scope)
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 2


def test_the_shared_cache_comes_from_appsettings_or_the_environment(
    tmp_path: Path, aioentra_isolated: Emulator, aioentra_app: App
) -> None:
    emu = aioentra_isolated
    settings = tmp_path / "appsettings.json"
    document = {
        "AzureAd": {
            "Instance": emu.base_url,
            "TenantId": emu.tenant_id,
            "ClientId": aioentra_app.client_id,
            "ClientSecret": aioentra_app.secret,
        },
        "TokenCache": {"Redis": "redis://127.0.0.1:1/0", "EncryptionKeys": [KEY], "Prefix": "a"},
    }
    settings.write_text(json.dumps(document))
    shared = Settings.from_file(settings).shared_cache
    assert shared is not None
    assert (shared.url, shared.prefix) == ("redis://127.0.0.1:1/0", "a")
    assert KEY not in repr(shared)
    env = {
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": aioentra_app.client_id,
        "AZURE_CLIENT_SECRET": "x",
        "AIOENTRA_REDIS_URL": "redis://127.0.0.1:1/0",
        "AIOENTRA_REDIS_KEYS": f"{KEY}, {KEY}",
    }
    from_env = Settings.from_environment(env).shared_cache
    assert from_env is not None
    assert len(from_env.keys) == 2
    assert from_env.prefix == "aioentra"
    with pytest.raises(Exception, match="AIOENTRA_REDIS_KEYS"):
        Settings.from_environment({k: v for k, v in env.items() if k != "AIOENTRA_REDIS_KEYS"})


async def test_a_provider_from_configuration_owns_and_closes_its_cache(
    tmp_path: Path,
    aioentra_isolated: Emulator,
    aioentra_app: App,
    redis_server: RedisServer,
    scope: str,
    prefix: str,
) -> None:
    emu = aioentra_isolated
    env = {
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": aioentra_app.client_id,
        "AZURE_CLIENT_SECRET": aioentra_app.secret or "",
        "AZURE_AUTHORITY_HOST": emu.base_url,
        "AIOENTRA_REDIS_URL": redis_server.url,
        "AIOENTRA_REDIS_KEYS": KEY,
        "AIOENTRA_REDIS_PREFIX": prefix,
    }
    for _ in range(2):
        async with TokenProvider.from_environment(env, ca_file=emu.ca_file) as provider:
            assert await provider.get_token(scope)
    assert token_requests(emu, aioentra_app, scope) == 1  # the second one read Redis


def test_managed_identity_tokens_have_no_shared_cache() -> None:
    """They belong to the machine: ManagedIdentityProvider takes no cache at all."""
    import inspect

    from aioentra import ManagedIdentityProvider

    assert "cache" not in inspect.signature(ManagedIdentityProvider).parameters


def discovery_requests(emu: Emulator) -> int:
    return emu.requests.count("discovery", tenant=emu.tenant_id)


async def test_replicas_share_one_discovery_request(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
    raw: Any,
    prefix: str,
) -> None:
    """Five cold replicas starting at once send one OpenID discovery request and one token
    request between them: the discovery document goes through the shared cache too, sealed
    like a token (it is public, but only a holder of the keys can write what others trust)."""
    before = discovery_requests(aioentra_isolated)
    replicas = [make() for _ in range(5)]
    tokens = await asyncio.gather(*(replica.get_token(scope) for replica in replicas))
    assert len({t.token for t in tokens}) == 1
    assert discovery_requests(aioentra_isolated) - before == 1
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 1
    stored = [raw.get(name) for name in raw.scan_iter(match=f"{prefix}:token:*")]
    assert len(stored) == 2  # the token and the discovery document
    assert not [blob for blob in stored if b"token_endpoint" in blob]  # sealed


async def test_a_bad_discovery_answer_is_never_shared(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
) -> None:
    """A document that is not an OpenID configuration fails the replica that got it (as
    without a shared cache) and is not stored: the next replica asks again and succeeds."""
    aioentra_isolated.faults.add(
        Fault(
            "discovery",
            "respond",
            body=json.dumps({"issuer": "https://elsewhere.example"}),
            tenant=aioentra_isolated.tenant_id,
            count=1,
        )
    )
    before = discovery_requests(aioentra_isolated)
    with pytest.raises(ConfigurationError, match="not an OpenID configuration"):
        await make().get_token(scope)
    assert await make().get_token(scope)
    assert discovery_requests(aioentra_isolated) - before == 2
    assert token_requests(aioentra_isolated, aioentra_app, scope) == 1


async def test_a_failed_discovery_request_is_retried_and_then_shared(
    aioentra_isolated: Emulator,
    aioentra_app: App,
    make: Callable[..., TokenProvider],
    scope: str,
) -> None:
    aioentra_isolated.faults.add(
        Fault("discovery", "status", status=503, tenant=aioentra_isolated.tenant_id, count=1)
    )
    before = discovery_requests(aioentra_isolated)
    assert await make().get_token(scope)
    assert discovery_requests(aioentra_isolated) - before == 2  # the 503, then the document
    assert await make().get_token(scope)
    assert discovery_requests(aioentra_isolated) - before == 2
