"""What an adversarial review of the Key Vault credentials found, each against the emulator."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable

import pytest

from aioentra import (
    ClientSecret,
    ConfigurationError,
    CredentialChain,
    IdentityProviderUnavailableError,
    KeyVaultError,
    KeyVaultSecret,
    ManagedIdentityProvider,
    RetryPolicy,
    SecretsNotLoadedError,
    TokenProvider,
)
from aioentra.emulator import App, Emulator, Fault, ManagedIdentity
from aioentra.keyvault import load_secrets

from .conftest import SCOPE, rejected, token_requests, unique, vault_reads

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]
OTHER_SCOPE = "api://aioentra-tests-review/.default"


@pytest.fixture
def other_scope(emulator: Emulator, app: App) -> str:
    uri = OTHER_SCOPE.removesuffix("/.default")
    api = emulator.state.find_api(emulator.tenant_id, uri) or emulator.add_api(uri)
    emulator.grant(app, api, [])
    return OTHER_SCOPE


def _aioentra_threads() -> list[str]:
    """The SDK's threads (the emulator serving the tests runs one of its own)."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("aioentra-") and not t.name.startswith("aioentra-emulator")
    ]


async def _late_and_early(provider: TokenProvider, emulator: Emulator, app: App) -> list[object]:
    """One request that reaches the token endpoint late, one that overtakes it."""
    emulator.faults.add(Fault("token", "latency", delay=0.6, client_id=app.client_id, count=1))
    late = asyncio.ensure_future(provider.get_token(SCOPE, force_refresh=True))
    await asyncio.sleep(0.1)  # real time: the late one is at the emulator, being delayed
    early = asyncio.ensure_future(provider.get_token(OTHER_SCOPE))
    return list(await asyncio.gather(late, early, return_exceptions=True))


async def test_a_request_rejected_after_another_keys_reload_is_retried_not_failed(
    emulator: Emulator,
    app: App,
    vault_identity: ManagedIdentity,
    make_provider: MakeProvider,
    other_scope: str,
) -> None:
    name = unique("straggler-secret")
    emulator.vault.set_secret(name, app.secret or "")
    credential = KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file)
    async with make_provider(credential) as provider:
        await provider.get_token(SCOPE)
        emulator.vault.set_secret(name, emulator.rotate_secret(app))
        results = await _late_and_early(provider, emulator, app)
    assert [type(r).__name__ for r in results] == ["AccessToken", "AccessToken"]
    assert rejected(emulator, app) == 2  # both left with the old value ...
    assert vault_reads(emulator, f"/secrets/{name}") == 1 + 1  # ... one reload served both
    assert token_requests(emulator, app) == 1 + 2 + 2


async def test_a_late_rejection_does_not_move_a_chain_past_a_member_that_works(
    emulator: Emulator,
    app: App,
    vault_identity: ManagedIdentity,
    make_provider: MakeProvider,
    other_scope: str,
) -> None:
    name = unique("chain-straggler")
    emulator.vault.set_secret(name, app.secret or "")
    good = ClientSecret(emulator.add_secret(app))
    chain = CredentialChain(
        [
            KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file),
            good,
            ClientSecret("x"),
        ]
    )
    async with make_provider(chain) as provider:
        await provider.get_token(SCOPE)
        emulator.revoke_secret(app, app.secret or "")  # the vault's value is dead; no new one
        results = await _late_and_early(provider, emulator, app)
        assert [type(r).__name__ for r in results] == ["AccessToken", "AccessToken"]
        assert chain.current is good
        assert await provider.get_token(SCOPE, force_refresh=True)


async def test_loaded_values_are_not_in_the_frames_of_a_partial_failure(
    emulator: Emulator, vault_identity: ManagedIdentity
) -> None:
    emulator.vault.set_secret("review-loaded", "hunter2-value-XYZ")
    with pytest.raises(SecretsNotLoadedError) as info:
        await load_secrets(
            emulator.vault.url, ["review-loaded", "review-missing"], ca_file=emulator.ca_file
        )
    inner = info.value.__traceback__.tb_next if info.value.__traceback__ else None
    report = traceback.TracebackException(type(info.value), info.value, inner, capture_locals=True)
    assert "hunter2-value-XYZ" not in "".join(report.format())


async def test_closing_a_chain_closes_members_that_failed_to_load(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    chain = CredentialChain(
        [
            KeyVaultSecret(emulator.vault.url, unique("absent"), ca_file=emulator.ca_file),
            ClientSecret(app.secret or ""),
        ]
    )
    async with make_provider(chain) as provider:
        assert await provider.get_token(SCOPE)
        assert "aioentra-mi-1" in _aioentra_threads()  # the vault member's managed identity
    assert _aioentra_threads() == []


async def test_a_failed_enter_leaves_no_session_or_thread(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    credential = KeyVaultSecret(emulator.vault.url, unique("absent"), ca_file=emulator.ca_file)
    with pytest.raises(KeyVaultError):
        async with make_provider(credential):
            raise AssertionError("not entered")
    assert _aioentra_threads() == []


async def test_a_hanging_vault_is_bounded(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    name = unique("slow-secret")
    emulator.vault.set_secret(name, app.secret or "")
    emulator.faults.add(Fault("keyvault", "latency", delay=5.0, count=None))
    loop = asyncio.get_running_loop()
    credential = KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file)
    started = loop.time()
    with pytest.raises(IdentityProviderUnavailableError, match="total_timeout"):
        async with make_provider(credential, retry=RetryPolicy(total_timeout=1.0)):
            raise AssertionError("not entered")
    assert loop.time() - started < 1.0 + 0.5
    started = loop.time()
    with pytest.raises(SecretsNotLoadedError, match="did not finish") as info:
        await load_secrets(emulator.vault.url, [name, "other"], ca_file=emulator.ca_file, timeout=1)
    assert loop.time() - started < 1.0 + 0.5
    assert sorted(info.value.failures) == sorted([name, "other"])


async def test_a_throttling_vault_says_when_to_come_back(
    emulator: Emulator, vault_identity: ManagedIdentity
) -> None:
    emulator.vault.set_secret("review-throttled", "v")
    emulator.faults.add(Fault("keyvault", "throttle", retry_after=1, count=None))
    with pytest.raises(SecretsNotLoadedError) as info:
        await load_secrets(emulator.vault.url, ["review-throttled"], ca_file=emulator.ca_file)
    error = info.value.failures["review-throttled"]
    assert error.status == 429 and error.retry_after == 1 and error.retryable


def test_odd_arguments_are_configuration_errors(emulator: Emulator) -> None:
    for build in (
        lambda: CredentialChain(None),  # type: ignore[arg-type]
        lambda: CredentialChain(5),  # type: ignore[arg-type]
        lambda: KeyVaultSecret(emulator.vault.url, "n", clock=object()),  # type: ignore[arg-type]
        lambda: ManagedIdentityProvider(client_id=5),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError):
            build()
