"""Every credential form yields a token request the emulator accepts, and rejections are typed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from azure.keyvault.secrets.aio import SecretClient

from aioentra import (
    ApplicationNotFoundError,
    AssertionContext,
    Certificate,
    ClientAssertion,
    ClientSecret,
    CredentialRejectedError,
    InvalidScopeError,
    ManagedIdentityAssertion,
    TenantNotFoundError,
    TokenProvider,
)
from aioentra.emulator import Api, App, Emulator

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


def _pem(app: App) -> bytes:
    material = app.certificate
    assert material is not None and material.private_key_pem is not None
    return material.private_key_pem + material.certificate_pem


@pytest.fixture
def cert_app(emulator: Emulator, api: Api) -> App:
    app = emulator.add_app("daemon-cert", secret=False, certificate=True)
    emulator.grant(app, api, ["Things.Read"])
    return app


@pytest.mark.parametrize(
    "options",
    [{}, {"algorithm": "RS256"}, {"send_certificate_chain": True}],
    ids=["ps256-x5t#S256", "rs256-x5t", "x5c"],
)
async def test_certificate_assertion_is_accepted(
    emulator: Emulator, cert_app: App, make_provider: MakeProvider, options: dict[str, object]
) -> None:
    credential = Certificate.from_pem(_pem(cert_app), **options)  # type: ignore[arg-type]
    async with make_provider(credential, client_id=cert_app.client_id) as provider:
        token = await provider.get_token(SCOPE)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["azp"] == cert_app.client_id and claims["azpacr"] == "2"
    assert token_requests(emulator, cert_app) == 1


async def test_assertion_callables_sync_and_async_are_accepted(
    emulator: Emulator, cert_app: App, make_provider: MakeProvider
) -> None:
    signer = Certificate.from_pem(_pem(cert_app))
    contexts: list[AssertionContext] = []

    def sync_source(context: AssertionContext) -> str:
        contexts.append(context)
        return signer.get_assertion(context)

    async def async_source(context: AssertionContext) -> str:
        contexts.append(context)
        return signer.get_assertion(context)

    for source in (sync_source, async_source):
        credential = ClientAssertion(source)
        async with make_provider(credential, client_id=cert_app.client_id) as provider:
            assert await provider.get_token(SCOPE)
    assert [c.token_endpoint for c in contexts] == [emulator.token_endpoint] * 2
    assert {c.client_id for c in contexts} == {cert_app.client_id}


async def test_unregistered_certificate_is_rejected(
    emulator: Emulator, cert_app: App, app: App, make_provider: MakeProvider
) -> None:
    other = emulator.add_app("other", secret=False, certificate=True)
    credential = Certificate.from_pem(_pem(other))
    async with make_provider(credential, client_id=cert_app.client_id) as provider:
        with pytest.raises(CredentialRejectedError) as info:
            await provider.get_token(SCOPE)
    assert 700027 in info.value.error_codes and info.value.status == 401
    assert "not registered" in (info.value.hint or "")


async def test_wrong_and_expired_secrets_are_rejected(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider(ClientSecret("not-the-right-value-123")) as provider:
        with pytest.raises(CredentialRejectedError) as info:
            await provider.get_token(SCOPE)
    error = info.value
    assert error.error == "invalid_client" and error.error_codes == (7000215,)
    assert error.correlation_id and error.trace_id and error.status == 401
    assert "not-the-right-value-123" not in str(error)

    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    expired = emulator.add_secret(app, expires_at=past)
    async with make_provider(ClientSecret(expired)) as provider:
        with pytest.raises(CredentialRejectedError) as info:
            await provider.get_token(SCOPE)
    assert info.value.error_codes == (7000222,)
    assert expired not in str(info.value)


async def test_unknown_client_tenant_and_resource(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    async with make_provider(client_id="00000000-0000-4000-8000-00000000dead") as provider:
        with pytest.raises(ApplicationNotFoundError) as unknown_app:
            await provider.get_token(SCOPE)
    assert unknown_app.value.error_codes == (700016,)
    async with make_provider(tenant_id="unknown.example.com") as provider:
        with pytest.raises(TenantNotFoundError) as unknown_tenant:
            await provider.get_token(SCOPE)
    assert 90002 in unknown_tenant.value.error_codes
    async with make_provider() as provider:
        with pytest.raises(InvalidScopeError) as unknown_resource:
            await provider.get_token("api://nobody-registered-this/.default")
    assert unknown_resource.value.error_codes == (500011,)
    assert token_requests(emulator, app) == 1  # the last one; the others failed discovery or client


async def test_azure_sdk_client_uses_the_provider(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.vault.set_secret("db-password", "correct horse")
    emulator.vault.grant(app, ["get"])
    async with make_provider() as provider:
        credential = provider.as_azure_credential()
        async with SecretClient(
            emulator.vault.url,
            credential,
            verify_challenge_resource=False,
            connection_verify=emulator.ca_file,
        ) as client:
            secret = await client.get_secret("db-password")
            again = await client.get_secret("db-password")
    assert secret.value == again.value == "correct horse"
    assert emulator.requests.count(endpoint="token", client_id=app.client_id) == 1


async def test_managed_identity_signed_assertion(
    emulator: Emulator, api: Api, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workload identity federation: a managed identity's token is the app's client assertion."""
    for name, value in emulator.managed_identity.environ.items():
        monkeypatch.setenv(name, value)
    identity = emulator.managed_identity.add_identity(name="federation-source")
    app = emulator.add_app("federated-daemon", secret=False)
    emulator.add_federated_credential(app, issuer=emulator.issuer(), subject=identity.object_id)
    emulator.grant(app, api, ["Things.Read"])
    assertion = ManagedIdentityAssertion(client_id=identity.client_id)
    try:
        async with make_provider(assertion, client_id=app.client_id) as provider:
            token = await provider.get_token(SCOPE)
            # The MI token is reused while it is fresh: a second app token needs no new one.
            await provider.get_token(SCOPE, force_refresh=True)
    finally:
        await assertion.close()
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["azp"] == app.client_id and claims["roles"] == ["Things.Read"]
    assert emulator.requests.count(endpoint="managed_identity", client_id=identity.client_id) == 1
    assert token_requests(emulator, app) == 2


async def test_workload_identity_token_file(
    emulator: Emulator, api: Api, make_provider: MakeProvider, tmp_path: Path
) -> None:
    """AZURE_FEDERATED_TOKEN_FILE: the kubelet-projected token is read, and re-read on rotation."""
    subject = "system:serviceaccount:orders:worker"
    app = emulator.add_app("workload", secret=False)
    emulator.add_federated_credential(app, issuer=emulator.issuer(), subject=subject)
    emulator.grant(app, api, ["Things.Read"])
    token_file = tmp_path / "azure-identity-token"

    def project(identity_subject: str) -> None:
        signed = emulator.issue_access_token(
            tenant_id=emulator.tenant_id,
            client_id=app.client_id,
            object_id=identity_subject,
            resource="api://AzureADTokenExchange",
        )[0]
        token_file.write_text(signed)

    project(subject)
    async with make_provider(ClientAssertion.from_file(token_file), client_id=app.client_id) as p:
        assert await p.get_token(SCOPE)
        project("system:serviceaccount:orders:intruder")
        with pytest.raises(CredentialRejectedError):
            await p.get_token(SCOPE, force_refresh=True)
