"""Key Vault-sourced credentials against the emulated vault and identity platform.

The real azure-keyvault-secrets / -certificates / -keys and msal are in the path; the vault is
reached with this machine's (emulated) managed identity, the natural default.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from aioentra import (
    ClientSecret,
    ConfigurationError,
    CredentialChain,
    CredentialRejectedError,
    KeyVaultCertificate,
    KeyVaultSecret,
    TokenProvider,
)
from aioentra.credentials._keyvault import PEM, PKCS12
from aioentra.emulator import App, Emulator, Fault, ManagedIdentity
from aioentra.testing import ManualClock

from .conftest import SCOPE, rejected, token_requests, unique, vault_reads

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


async def test_a_secret_in_the_vault_gets_a_token(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    name = unique("daemon-secret")
    version = emulator.vault.set_secret(name, app.secret or "").version
    credential = KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file)
    async with make_provider(credential) as provider:
        assert credential.version == version  # loaded when entered
        assert await provider.get_token(SCOPE)
    assert repr(credential).count(name) == 1 and (app.secret or "") not in repr(credential)
    assert vault_reads(emulator, f"/secrets/{name}") == 1


@pytest.mark.parametrize("content_type", [PKCS12, PEM])
async def test_a_certificate_in_the_vault_gets_a_token(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    make_provider: MakeProvider,
    content_type: str,
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    name = unique("daemon-cert")
    emulator.vault.set_certificate(
        name,
        key_pem=material.private_key_pem,
        cert_pem=material.certificate_pem,
        content_type=content_type,
    )
    credential = KeyVaultCertificate(emulator.vault.url, name, ca_file=emulator.ca_file)
    async with make_provider(credential, client_id=cert_app.client_id) as provider:
        assert await provider.get_token(SCOPE)
    assert token_requests(emulator, cert_app) == 1


async def test_a_rotated_secret_is_picked_up_with_one_reload_and_one_retry(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    name = unique("rotating-secret")
    emulator.vault.set_secret(name, app.secret or "")
    credential = KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file)
    async with make_provider(credential) as provider:
        first = await provider.get_token(SCOPE)
        new_value = emulator.rotate_secret(app)  # the old value is revoked at the IdP ...
        new_version = emulator.vault.set_secret(name, new_value).version  # ... and replaced
        emulator.faults.add(Fault("token", "latency", delay=0.2, client_id=app.client_id))
        tokens = await asyncio.gather(
            *(provider.get_token(SCOPE, force_refresh=True) for _ in range(100))
        )
        assert len({t.token for t in tokens}) == 1 and tokens[0].token != first.token
        assert credential.version == new_version
        # 100 callers: one rejected request, one reload, one retried request.
        assert token_requests(emulator, app) == 1 + 2 and rejected(emulator, app) == 1
        assert vault_reads(emulator, f"/secrets/{name}") == 1 + 1
        # Rotated again at the IdP but not in the vault: rejected, no second retry.
        emulator.rotate_secret(app)
        with pytest.raises(CredentialRejectedError) as info:
            await provider.get_token(SCOPE, force_refresh=True)
        assert info.value.error_codes == (7000215,) and info.value.hint
        assert token_requests(emulator, app) == 1 + 2 + 1


async def test_a_scheduled_reload_picks_up_a_new_version_without_a_rejection(
    emulator: Emulator, app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    name = unique("scheduled-secret")
    emulator.vault.set_secret(name, app.secret or "")
    credential = KeyVaultSecret(
        emulator.vault.url, name, ca_file=emulator.ca_file, reload_every=60, clock=clock
    )
    async with make_provider(credential) as provider:
        await provider.get_token(SCOPE)
        second = emulator.add_secret(app)  # both values are valid for a while (rotation)
        new_version = emulator.vault.set_secret(name, second).version
        clock.advance(61)
        await provider.get_token(SCOPE, force_refresh=True)  # its proof starts the reload
        for _ in range(200):  # the background read (bounded)
            if credential.version == new_version:
                break
            await asyncio.sleep(0.01)
        assert credential.version == new_version
        emulator.revoke_secret(app, app.secret or "")
        assert await provider.get_token(SCOPE, force_refresh=True)
    assert rejected(emulator, app) == 0
    assert vault_reads(emulator, f"/secrets/{name}") == 2


@pytest.mark.parametrize("fault", ["status", "reset"])
async def test_the_last_good_value_serves_while_the_vault_fails(
    emulator: Emulator,
    app: App,
    vault_identity: ManagedIdentity,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    clock = ManualClock()
    name = unique("outage-secret")
    emulator.vault.set_secret(name, app.secret or "")
    credential = KeyVaultSecret(
        emulator.vault.url, name, ca_file=emulator.ca_file, reload_every=60, clock=clock
    )
    async with make_provider(credential) as provider:
        await provider.get_token(SCOPE)
        emulator.faults.add(Fault("keyvault", fault, status=503, count=None))  # type: ignore[arg-type]
        clock.advance(61)
        with caplog.at_level(logging.WARNING, logger="aioentra.keyvault"):
            for _ in range(5):
                assert await provider.get_token(SCOPE, force_refresh=True)
                for _ in range(500):  # let the background read run and fail (bounded)
                    if "reading Key Vault failed" in caplog.text:
                        break
                    await asyncio.sleep(0.01)
        emulator.faults.clear()
    failures = [r for r in caplog.records if "reading Key Vault failed" in r.getMessage()]
    assert len(failures) == 1  # once per back-off period, not per call
    assert "keeps serving" in failures[0].getMessage()
    assert (app.secret or "") not in caplog.text
    assert token_requests(emulator, app) == 1 + 5


async def test_a_key_that_never_leaves_the_vault_signs_the_assertion(
    emulator: Emulator, cert_app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    name = unique("hsm-cert")
    emulator.vault.set_certificate(
        name,
        key_pem=material.private_key_pem,
        cert_pem=material.certificate_pem,
        exportable=False,
    )
    credential = KeyVaultCertificate(
        emulator.vault.url, name, sign_in_vault=True, ca_file=emulator.ca_file
    )
    async with make_provider(credential, client_id=cert_app.client_id) as provider:
        assert await provider.get_token(SCOPE)
        assert await provider.get_token(SCOPE, force_refresh=True)
    assert token_requests(emulator, cert_app) == 2  # both assertions were verified
    assert vault_reads(emulator, f"/secrets/{name}") == 0  # the key was never downloaded
    signs = [
        r
        for r in emulator.requests.filter("keyvault", status=200)
        if r.method == "POST" and r.path.split("?")[0].endswith("/sign")
    ]
    assert len(signs) == 2


async def test_reading_a_non_exportable_key_is_a_typed_error(
    emulator: Emulator, cert_app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    name = unique("locked-cert")
    emulator.vault.set_certificate(name, exportable=False)
    credential = KeyVaultCertificate(emulator.vault.url, name, ca_file=emulator.ca_file)
    provider = make_provider(credential, client_id=cert_app.client_id)
    with pytest.raises(ConfigurationError, match="not usable") as info:
        await provider.__aenter__()
    assert "sign_in_vault=True" in (info.value.hint or "")
    await provider.close()
    assert token_requests(emulator, cert_app) == 0


async def test_a_chain_falls_back_from_a_revoked_certificate_to_a_secret(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    secret = emulator.add_secret(cert_app)
    name = unique("chain-cert")
    emulator.vault.set_certificate(
        name, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
    )
    emulator.revoke_certificate(cert_app, material)
    chain = CredentialChain(
        [
            KeyVaultCertificate(emulator.vault.url, name, ca_file=emulator.ca_file),
            ClientSecret(secret),
        ]
    )
    with caplog.at_level(logging.INFO):
        async with make_provider(chain, client_id=cert_app.client_id) as provider:
            assert await provider.get_token(SCOPE)
            assert isinstance(chain.current, ClientSecret)
    assert token_requests(emulator, cert_app) == 2  # the rejected assertion, then the secret
    assert "credential chain: ClientSecret(***) serves" in caplog.text
    assert secret not in caplog.text


async def test_appsettings_client_credentials_become_a_chain(
    emulator: Emulator,
    cert_app: App,
    vault_identity: ManagedIdentity,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    name = unique("settings-cert")
    emulator.vault.set_certificate(
        name, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
    )
    monkeypatch.setenv("SSL_CERT_FILE", emulator.ca_file)  # the vault's TLS, as a deployment would
    settings = tmp_path / "appsettings.json"
    settings.write_text(
        json.dumps(
            {
                "AzureAd": {
                    "Instance": emulator.base_url,
                    "TenantId": emulator.tenant_id,
                    "ClientId": cert_app.client_id,
                    "ClientCredentials": [
                        {
                            "SourceType": "KeyVault",
                            "KeyVaultUrl": emulator.vault.url,
                            "KeyVaultCertificateName": name,
                        },
                        {"SourceType": "Path", "CertificateDiskPath": "missing.pfx"},
                        {"SourceType": "ClientSecret", "ClientSecret": "a-fallback-secret"},
                    ],
                }
            }
        )
    )
    provider = TokenProvider.from_file(settings, ca_file=emulator.ca_file)
    assert isinstance(provider.credential, CredentialChain)
    async with provider:
        assert await provider.get_token(SCOPE)
        assert isinstance(provider.credential.current, KeyVaultCertificate)
    assert token_requests(emulator, cert_app) == 1


async def test_a_rotated_certificate_is_picked_up_with_one_reload_and_one_retry(
    emulator: Emulator, cert_app: App, vault_identity: ManagedIdentity, make_provider: MakeProvider
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    name = unique("rotating-cert")
    emulator.vault.set_certificate(
        name, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
    )
    credential = KeyVaultCertificate(emulator.vault.url, name, ca_file=emulator.ca_file)
    async with make_provider(credential, client_id=cert_app.client_id) as provider:
        await provider.get_token(SCOPE)
        new = emulator.rotate_certificate(cert_app)  # the old one is revoked at the IdP
        assert new.private_key_pem is not None
        version = emulator.vault.set_certificate(
            name, key_pem=new.private_key_pem, cert_pem=new.certificate_pem
        ).version
        emulator.faults.add(Fault("token", "latency", delay=0.2, client_id=cert_app.client_id))
        tokens = await asyncio.gather(
            *(provider.get_token(SCOPE, force_refresh=True) for _ in range(100))
        )
        assert len({t.token for t in tokens}) == 1
        assert credential.version == version
    assert token_requests(emulator, cert_app) == 1 + 2 and rejected(emulator, cert_app) == 1
    assert vault_reads(emulator, f"/secrets/{name}") == 1 + 1
