"""load_secrets(): many secrets at startup, concurrently, with one vault token."""

from __future__ import annotations

import pytest

from aioentra import ConfigurationError, ManagedIdentityProvider, SecretsNotLoadedError
from aioentra.emulator import Emulator, Fault, ManagedIdentity
from aioentra.keyvault import load_secrets

from .conftest import use_managed_identity

pytestmark = pytest.mark.anyio


@pytest.fixture
def reader(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ManagedIdentity:
    use_managed_identity(monkeypatch, emulator.managed_identity.environ)
    identity = emulator.managed_identity.add_identity(name="startup-reader")
    emulator.vault.grant(identity, ["get"])
    return identity


async def test_fifty_secrets_with_one_token(emulator: Emulator, reader: ManagedIdentity) -> None:
    names = [f"startup-{n}" for n in range(50)]
    for name in names:
        emulator.vault.set_secret(name, f"value of {name}")
    emulator.faults.add(Fault("keyvault", "latency", delay=0.02, count=None))
    before = len(emulator.requests.filter("keyvault"))
    async with ManagedIdentityProvider(client_id=reader.client_id) as identity:
        secrets = await load_secrets(
            emulator.vault.url,
            names,
            credential=identity.as_azure_credential(),
            ca_file=emulator.ca_file,
        )
    assert dict(secrets) == {name: f"value of {name}" for name in names}
    assert "value of" not in repr(secrets) and "startup-0" in repr(secrets)
    vault = emulator.requests.filter("keyvault")[before:]
    assert sum(1 for r in vault if r.status == 200) == 50
    # At most one challenge (azure-keyvault remembers a vault's challenge per process).
    assert sum(1 for r in vault if r.status == 401) <= 1
    assert emulator.requests.count(endpoint="managed_identity", client_id=reader.client_id) == 1


async def test_every_failed_secret_is_named_in_one_error(
    emulator: Emulator, reader: ManagedIdentity
) -> None:
    emulator.vault.set_secret("startup-ok", "fine")
    emulator.vault.set_secret("startup-off", "hidden-value-123")
    emulator.vault.disable_secret("startup-off")
    async with ManagedIdentityProvider(client_id=reader.client_id) as identity:
        with pytest.raises(SecretsNotLoadedError) as info:
            await load_secrets(
                emulator.vault.url,
                ["startup-ok", "startup-missing", "startup-off", "startup-gone"],
                credential=identity.as_azure_credential(),
                ca_file=emulator.ca_file,
            )
    error = info.value
    assert sorted(error.failures) == ["startup-gone", "startup-missing", "startup-off"]
    assert "3 of 4" in str(error) and "hidden-value-123" not in str(error)
    assert error.failures["startup-missing"].status == 404
    assert error.failures["startup-off"].status == 403


async def test_names_are_checked_before_any_request(emulator: Emulator) -> None:
    before = len(emulator.requests.filter("keyvault"))
    for names in ("one-name", ["bad name"], [""], [5]):
        with pytest.raises(ConfigurationError):
            await load_secrets(emulator.vault.url, names)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="https"):
        await load_secrets("http://vault.example", ["a"])
    assert len(emulator.requests.filter("keyvault")) == before


async def test_an_untrusted_vault_certificate_says_to_trust_its_ca(
    emulator: Emulator, reader: ManagedIdentity
) -> None:
    emulator.vault.set_secret("startup-tls", "value")
    async with ManagedIdentityProvider(client_id=reader.client_id) as identity:
        with pytest.raises(SecretsNotLoadedError) as info:
            await load_secrets(  # no ca_file: the emulator's CA is not trusted
                emulator.vault.url, ["startup-tls"], credential=identity.as_azure_credential()
            )
    failure = info.value.failures["startup-tls"]
    assert "failed: :" not in failure.message
    assert "ca_file=" in (failure.hint or "")
