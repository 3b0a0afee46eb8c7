"""The credential protocol's lifecycle: start on enter, reload once on rejection, close on close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from aioentra import (
    RELOAD_CODES,
    AssertionContext,
    ConfigurationError,
    CredentialRejectedError,
    CredentialUnavailableError,
    Proof,
    ProviderClosedError,
    ReloadReason,
    TokenProvider,
)
from aioentra.emulator import Api, App, Emulator
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


class RotatingSecret:
    """A secret kept elsewhere (a vault, a file): ``current`` is what ``reload`` fetches."""

    proof_kinds = frozenset({"client_secret"})

    def __init__(self, value: str, *, reload_finds: str | None = None) -> None:
        self._value = value
        self.current = reload_finds
        self.started = 0
        self.reloads: list[ReloadReason] = []
        self.closed = 0

    async def start(self) -> None:
        self.started += 1

    def get_proof(self, context: AssertionContext) -> Proof:
        return Proof.secret(self._value)

    async def reload(self, reason: ReloadReason) -> bool:
        self.reloads.append(reason)
        if self.current is None or self.current == self._value:
            return False
        self._value = self.current
        return True

    async def close(self) -> None:
        self.closed += 1

    def __repr__(self) -> str:
        return "RotatingSecret(***)"


async def test_a_credential_is_started_on_enter_and_closed_on_close(
    app: App, make_provider: MakeProvider
) -> None:
    credential = RotatingSecret(app.secret or "")
    async with make_provider(credential) as provider:
        assert credential.started == 1
        await provider.get_token(SCOPE)
        await provider.get_token(SCOPE, force_refresh=True)
        assert credential.started == 1
    assert credential.closed == 1
    shared = RotatingSecret(app.secret or "")
    async with make_provider(shared, close_credential=False) as provider:
        await provider.get_token(SCOPE)
    assert shared.closed == 0  # a shared credential stays its owner's


async def test_a_rotated_secret_is_reloaded_and_the_request_retried_exactly_once(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    stale = RotatingSecret("the-old-value", reload_finds=app.secret)
    async with make_provider(stale) as provider:
        token = await provider.get_token(SCOPE)
    assert token.token
    (reason,) = stale.reloads
    assert reason.error_codes == (7000215,) and 7000215 in RELOAD_CODES
    assert token_requests(emulator, app) == 2  # the rejected one, and the one retry


async def test_a_reload_that_finds_nothing_new_is_not_retried(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    wrong = RotatingSecret("still-wrong", reload_finds="still-wrong")
    async with make_provider(wrong) as provider:
        with pytest.raises(CredentialRejectedError):
            await provider.get_token(SCOPE)
    assert len(wrong.reloads) == 1
    assert token_requests(emulator, app) == 1


async def test_a_reload_that_is_rejected_again_is_not_retried_again(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    wrong = RotatingSecret("wrong-1", reload_finds="wrong-2")
    async with make_provider(wrong) as provider:
        with pytest.raises(CredentialRejectedError):
            await provider.get_token(SCOPE)
    assert len(wrong.reloads) == 1  # exactly one reload and one retry, never a loop
    assert token_requests(emulator, app) == 2


async def test_concurrent_rejections_share_one_reload(
    emulator: Emulator, api: Api, app: App, make_provider: MakeProvider
) -> None:
    other = "api://aioentra-tests-reload"
    if emulator.state.find_api(emulator.tenant_id, other) is None:
        emulator.add_api(other)
    stale = RotatingSecret("the-old-value", reload_finds=app.secret)
    gate = asyncio.Event()
    original = stale.reload

    async def slow_reload(reason: ReloadReason) -> bool:
        await gate.wait()
        return await original(reason)

    stale.reload = slow_reload  # type: ignore[method-assign]
    async with make_provider(stale) as provider:
        calls = [
            asyncio.ensure_future(provider.get_token(scope))
            for scope in (SCOPE, f"{other}/.default")
        ]
        for _ in range(200):
            if token_requests(emulator, app) == 2:
                break
            await asyncio.sleep(0.01)
        assert token_requests(emulator, app) == 2  # both scopes were rejected ...
        gate.set()
        assert all(t.token for t in await asyncio.gather(*calls))
    assert len(stale.reloads) == 1  # ... and one reload answered both
    assert token_requests(emulator, app) == 4


async def test_a_failing_start_is_typed_and_tried_again(
    app: App, make_provider: MakeProvider
) -> None:
    credential = RotatingSecret(app.secret or "")
    failures = [OSError("vault unreachable")]

    async def start() -> None:
        if failures:
            raise failures.pop()
        credential.started += 1

    credential.start = start  # type: ignore[method-assign]
    clock = ManualClock()
    provider = make_provider(credential, clock=clock)
    with pytest.raises(CredentialUnavailableError, match="starting"):
        await provider.get_token(SCOPE)  # the first request starts it, and fails
    clock.advance(60)  # past the key's back-off
    assert await provider.get_token(SCOPE)  # the next request tries again
    await provider.close()
    assert credential.started == 1


async def test_a_failed_enter_closes_what_the_start_opened(
    app: App, make_provider: MakeProvider
) -> None:
    credential = RotatingSecret(app.secret or "")

    async def start() -> None:
        raise OSError("vault unreachable")

    credential.start = start  # type: ignore[method-assign]
    provider = make_provider(credential)
    with pytest.raises(CredentialUnavailableError):
        async with provider:
            raise AssertionError("not entered")
    assert credential.closed == 1  # no __aexit__ follows a failed __aenter__: closed there
    with pytest.raises(ProviderClosedError):
        await provider.get_token(SCOPE)


async def test_an_object_of_the_old_shape_is_told_how_to_migrate(
    make_provider: MakeProvider,
) -> None:
    class OldStyle:
        def get_secret(self) -> str:
            return "value"

    with pytest.raises(ConfigurationError, match="not a credential") as info:
        make_provider(OldStyle())
    assert "get_proof" in (info.value.hint or "")


async def test_a_proof_of_the_wrong_type_is_a_configuration_error(
    make_provider: MakeProvider,
) -> None:
    class Broken:
        def get_proof(self, context: AssertionContext) -> str:
            return "a-bare-string"

    async with make_provider(Broken()) as provider:
        with pytest.raises(ConfigurationError, match="not a Proof"):
            await provider.get_token(SCOPE)


async def test_an_appsettings_managed_identity_assertion_closes_its_session(
    emulator: Emulator, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider owns what from_file built: closing it closes azure-identity's session.

    The suite runs with warnings as errors, so an "Unclosed client session" fails this test.
    """
    for name, value in emulator.managed_identity.environ.items():
        monkeypatch.setenv(name, value)
    identity = emulator.managed_identity.add_identity(name="appsettings-federation")
    app = emulator.add_app("appsettings-federated", secret=False)
    emulator.add_federated_credential(app, issuer=emulator.issuer(), subject=identity.object_id)
    emulator.grant(app, api, ["Things.Read"])
    path = tmp_path / "appsettings.json"
    path.write_text(
        json.dumps(
            {
                "AzureAd": {
                    "Instance": emulator.base_url,
                    "TenantId": emulator.tenant_id,
                    "ClientId": app.client_id,
                    "ClientCredentials": [
                        {
                            "SourceType": "SignedAssertionFromManagedIdentity",
                            "ManagedIdentityClientId": identity.client_id,
                        }
                    ],
                }
            }
        )
    )
    provider = TokenProvider.from_file(path, ca_file=emulator.ca_file)
    async with provider:
        results = await asyncio.gather(*(provider.get_token(SCOPE) for _ in range(20)))
        assert len({r.token for r in results}) == 1
    assert emulator.requests.count(endpoint="managed_identity", client_id=identity.client_id) == 1
    assert getattr(provider.credential, "_provider", None) is None  # closed and dropped
