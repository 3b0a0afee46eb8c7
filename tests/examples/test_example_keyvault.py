"""examples/startup_secrets (load_secrets with the managed identity) and examples/azure_sdk_client
(SecretClient with provider.as_azure_credential()), against the emulator's vault."""

from __future__ import annotations

import uuid

import pytest

from aioentra.emulator import App, Emulator

from .conftest import EXAMPLES, run_example

pytestmark = pytest.mark.anyio

STARTUP_SECRETS = EXAMPLES / "startup_secrets" / "app.py"
AZURE_SDK_CLIENT = EXAMPLES / "azure_sdk_client" / "app.py"


def unique(name: str) -> str:
    """A secret name no other test of the session uses (the vault is shared)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def vault_env(aioentra_isolated: Emulator, base_env: dict[str, str]) -> dict[str, str]:
    """A machine whose managed identity may read the vault's secrets."""
    emu = aioentra_isolated
    emu.vault.grant(emu.managed_identity.system_assigned, ["get"])
    return base_env | emu.managed_identity.environ | {"KEY_VAULT_URL": emu.vault.url}


def identity_tokens(emu: Emulator) -> int:
    system = emu.managed_identity.system_assigned
    return emu.requests.count("managed_identity", client_id=system.client_id)


async def test_startup_secrets_loads_every_name_with_one_vault_token(
    aioentra_isolated: Emulator, vault_env: dict[str, str]
) -> None:
    emu = aioentra_isolated
    values = {unique("db-password"): "correct-horse-battery", unique("orders-api-key"): "k" * 40}
    for name, value in values.items():
        emu.vault.set_secret(name, value)
    tokens_before, reads_before = identity_tokens(emu), emu.requests.count("keyvault", status=200)

    run = await run_example(STARTUP_SECRETS, *values, env=vault_env)

    assert run.returncode == 0, run.stderr
    assert run.lines == [
        f"2 secrets loaded from {emu.vault.url}",
        *(f"loaded {name} ({len(value)} characters)" for name, value in values.items()),
    ]
    assert identity_tokens(emu) == tokens_before + 1  # one vault token for both reads
    assert emu.requests.count("keyvault", status=200) == reads_before + 2
    run.assert_nothing_leaked(*values.values())


async def test_startup_secrets_names_the_missing_secret(
    aioentra_isolated: Emulator, vault_env: dict[str, str]
) -> None:
    present, missing = unique("db-password"), unique("never-stored")
    aioentra_isolated.vault.set_secret(present, "correct-horse-battery")

    run = await run_example(STARTUP_SECRETS, present, missing, env=vault_env)

    assert run.returncode == 1
    assert run.stdout == ""
    assert run.error.startswith(
        f"1 of 2 secrets could not be read from {aioentra_isolated.vault.url}: '{missing}' ("
    )
    assert present not in run.error
    failures = [line for line in run.stderr.splitlines() if line.startswith("  ")]
    assert failures[0].startswith(f"  {missing}: ") and "SecretNotFound" in run.stderr
    assert failures[1].startswith("    hint: ")
    run.assert_nothing_leaked("correct-horse-battery")


async def test_azure_sdk_client_reads_a_secret_with_the_provider(
    aioentra_isolated: Emulator, aioentra_app: App, app_env: dict[str, str]
) -> None:
    emu, app = aioentra_isolated, aioentra_app
    emu.vault.grant(app, ["get"])
    name = unique("orders-api-key")
    stored = emu.vault.set_secret(name, "s3cr3t-value-of-the-vault")

    run = await run_example(AZURE_SDK_CLIENT, name, env=app_env | {"KEY_VAULT_URL": emu.vault.url})

    assert run.returncode == 0, run.stderr
    assert run.lines == [f"secret {name!r}: version {stored.version}"]
    vault_tokens = emu.requests.filter("token", client_id=app.client_id)
    assert [record.scope for record in vault_tokens] == ["https://vault.azure.net/.default"]
    assert app.secret is not None
    run.assert_nothing_leaked(app.secret, stored.value)


async def test_azure_sdk_client_wrong_secret_exits_with_the_hint(
    aioentra_isolated: Emulator, aioentra_app: App, app_env: dict[str, str]
) -> None:
    emu, app = aioentra_isolated, aioentra_app
    emu.vault.grant(app, ["get"])
    name = unique("orders-api-key")
    emu.vault.set_secret(name, "s3cr3t-value-of-the-vault")
    wrong = "not-the-secret-" + "z" * 20
    env = app_env | {"KEY_VAULT_URL": emu.vault.url, "AZURE_CLIENT_SECRET": wrong}

    run = await run_example(AZURE_SDK_CLIENT, name, env=env)

    assert run.returncode == 1
    assert run.stdout == ""
    assert "AADSTS7000215" in run.error
    assert run.hint == "the client secret is wrong: use the secret's Value, not its Secret ID."
    assert emu.requests.count("token", client_id=app.client_id, status=401) == 1
    run.assert_nothing_leaked(wrong, "s3cr3t-value-of-the-vault")
