"""The App Service managed-identity endpoint, raw and through azure-identity's aio credential."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientAssertionCredential, ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from aioentra.emulator import Emulator, Fault

pytestmark = pytest.mark.anyio

VAULT_SCOPE = "https://vault.azure.net/.default"
_OTHER_MI_VARIABLES = (
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


@pytest.fixture
def emu(aioentra_private_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name in _OTHER_MI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in aioentra_private_emulator.managed_identity.environ.items():
        monkeypatch.setenv(name, value)
    return aioentra_private_emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _token_request(
    http: aiohttp.ClientSession,
    emu: Emulator,
    *,
    header: str | None = "default",
    **params: str,
) -> tuple[int, dict[str, Any]]:
    mi = emu.managed_identity
    query = {"api-version": "2019-08-01", "resource": "https://vault.azure.net", **params}
    headers = (
        {}
        if header is None
        else {"X-IDENTITY-HEADER": mi.header if header == "default" else header}
    )
    async with http.get(mi.endpoint, params=query, headers=headers) as response:
        return response.status, await response.json()


async def test_app_service_response_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    before = int(time.time())
    status, body = await _token_request(http, emu)
    assert status == 200
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) > before + 300
    system = emu.managed_identity.system_assigned
    assert (body["token_type"], body["client_id"]) == ("Bearer", system.client_id)
    claims = emu.state.verify_access_token(body["access_token"])
    assert claims["aud"] == "https://vault.azure.net"
    assert (claims["oid"], claims["azp"]) == (system.object_id, system.client_id)


@pytest.mark.parametrize(
    ("header", "params", "status", "message"),
    [
        (None, {}, 400, "X-IDENTITY-HEADER header is missing"),
        ("wrong", {}, 401, "X-IDENTITY-HEADER header value is not valid"),
        ("default", {"api-version": "2017-09-01"}, 400, "api-version"),
        ("default", {"resource": ""}, 400, "resource parameter is required"),
        ("default", {"client_id": "00000000-0000-0000-0000-00000000000f"}, 400, "Unable to load"),
        ("default", {"resource": "api://unknown"}, 400, "AADSTS500011"),
    ],
)
async def test_errors(
    emu: Emulator,
    http: aiohttp.ClientSession,
    header: str | None,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    got, body = await _token_request(http, emu, header=header, **params)
    assert got == status
    assert body["statusCode"] == status
    assert message in body["message"]
    assert "correlationId" in body


async def test_user_assigned_selection(emu: Emulator, http: aiohttp.ClientSession) -> None:
    user = emu.managed_identity.add_identity(name="worker")
    for params in (
        {"client_id": user.client_id},
        {"object_id": user.object_id},
        {"principal_id": user.object_id.upper()},
        {"mi_res_id": user.resource_id},
    ):
        status, body = await _token_request(http, emu, **params)
        assert status == 200, params
        assert emu.state.verify_access_token(body["access_token"])["oid"] == user.object_id
    status, _ = await _token_request(http, emu, client_id=user.client_id, object_id=user.object_id)
    assert status == 400


async def test_system_assigned_credential_reads_the_vault(emu: Emulator) -> None:
    emu.vault.set_secret("from-mi", "hello")
    emu.vault.grant(emu.managed_identity.system_assigned, ["get"])
    credential = ManagedIdentityCredential()
    client = SecretClient(
        emu.vault.url, credential, verify_challenge_resource=False, connection_verify=emu.ca_file
    )
    async with credential, client:
        assert (await client.get_secret("from-mi")).value == "hello"
    logged = emu.requests.filter("managed_identity", status=200)
    assert [r.client_id for r in logged] == [emu.managed_identity.system_assigned.client_id]


async def test_user_assigned_credential_by_client_id(emu: Emulator) -> None:
    user = emu.managed_identity.add_identity(name="worker")
    async with ManagedIdentityCredential(client_id=user.client_id) as credential:
        token = await credential.get_token(VAULT_SCOPE)
    claims = emu.state.verify_access_token(token.token)
    assert (claims["azp"], claims["oid"]) == (user.client_id, user.object_id)
    assert token.expires_on > time.time() + 300


async def test_user_assigned_credential_by_object_id(emu: Emulator) -> None:
    user = emu.managed_identity.add_identity(object_id="aaaaaaaa-0000-0000-0000-000000000001")
    async with ManagedIdentityCredential(identity_config={"object_id": user.object_id}) as cred:
        token = await cred.get_token(VAULT_SCOPE)
    assert emu.state.verify_access_token(token.token)["oid"] == user.object_id


async def test_unknown_identity_fails_the_credential(emu: Emulator) -> None:
    async with ManagedIdentityCredential(client_id="00000000-0000-0000-0000-0000000000ee") as cred:
        with pytest.raises(ClientAuthenticationError):
            await cred.get_token(VAULT_SCOPE)


async def test_faults_reach_the_identity_endpoint(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(Fault("managed_identity", "status", status=500))
    status, _ = await _token_request(http, emu)
    assert status == 500
    status, _ = await _token_request(http, emu)
    assert status == 200
    assert [r.status for r in emu.requests.filter("managed_identity")] == [500, 200]


async def test_managed_identity_as_federated_credential(emu: Emulator) -> None:
    """A token for api://AzureADTokenExchange signs another app in (workload federation)."""
    identity = emu.managed_identity.add_identity(name="federation-source")
    app = emu.add_app("federated-daemon")
    emu.add_federated_credential(app, issuer=emu.issuer(), subject=identity.object_id)
    emu.vault.grant(app, ["get"])
    emu.vault.set_secret("federated", "ok")
    mi = ManagedIdentityCredential(client_id=identity.client_id)

    async def assertion() -> str:
        token = await mi.get_token("api://AzureADTokenExchange/.default")
        return token.token

    # ClientAssertionCredential wants a sync callable; fetch the assertion up front.
    async with mi:
        signed = await assertion()
    assert jwt.decode(signed, options={"verify_signature": False})["aud"] == (
        "api://AzureADTokenExchange"
    )
    credential = ClientAssertionCredential(
        emu.tenant_id,
        app.client_id,
        lambda: signed,
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    )
    client = SecretClient(
        emu.vault.url, credential, verify_challenge_resource=False, connection_verify=emu.ca_file
    )
    async with credential, client:
        assert (await client.get_secret("federated")).value == "ok"


async def test_a_410_fault_answers_in_app_service_shape(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    user = emu.managed_identity.add_identity(name="updating")
    emu.faults.add(Fault("managed_identity", "status", status=410, client_id=user.client_id))
    status, body = await _token_request(http, emu, client_id=user.client_id)
    assert status == 410
    assert set(body) == {"statusCode", "message", "correlationId"}
    assert body["statusCode"] == 410
    status, _ = await _token_request(http, emu)  # the fault was for the user-assigned identity
    assert status == 200
    status, _ = await _token_request(http, emu, client_id=user.client_id)
    assert status == 200
    system = emu.managed_identity.system_assigned
    assert emu.requests.count("managed_identity", client_id=user.client_id) == 2
    assert emu.requests.count("managed_identity", client_id=system.client_id) == 1
