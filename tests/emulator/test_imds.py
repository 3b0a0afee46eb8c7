"""The IMDS form of managed identity: raw, through msal's ManagedIdentityClient and through
azure-identity's aio ManagedIdentityCredential, found by AZURE_POD_IDENTITY_AUTHORITY_HOST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msal
import pytest
import requests
from azure.identity import CredentialUnavailableError
from azure.identity.aio import ManagedIdentityCredential

from aioentra.emulator import Emulator, Fault

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net"
_OTHER_MI_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
)


@pytest.fixture
def emu(aioentra_private_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name in _OTHER_MI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in aioentra_private_emulator.managed_identity.imds_environ.items():
        monkeypatch.setenv(name, value)
    return aioentra_private_emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _imds(
    http: aiohttp.ClientSession, emu: Emulator, *, metadata: bool = True, **params: str
) -> tuple[int, dict[str, Any]]:
    query = {"api-version": "2018-02-01", "resource": VAULT, **params}
    headers = {"Metadata": "true"} if metadata else {}
    async with http.get(emu.managed_identity.imds_endpoint, params=query, headers=headers) as r:
        return r.status, await r.json()


def test_imds_environ_names_the_host(emu: Emulator) -> None:
    origin = emu.managed_identity.origin
    assert emu.managed_identity.imds_environ == {"AZURE_POD_IDENTITY_AUTHORITY_HOST": origin}
    assert origin.startswith("http://127.0.0.1:")
    assert emu.managed_identity.imds_endpoint == f"{origin}/metadata/identity/oauth2/token"


async def test_imds_success_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, body = await _imds(http, emu)
    assert status == 200
    assert set(body) == {
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    }
    for field in ("expires_in", "expires_on", "ext_expires_in", "not_before"):
        assert isinstance(body[field], str), field
    assert int(body["expires_on"]) - int(body["not_before"]) == int(body["expires_in"])
    assert body["expires_in"] == body["ext_expires_in"] == str(emu.token_lifetime)
    system = emu.managed_identity.system_assigned
    assert (body["client_id"], body["resource"], body["token_type"]) == (
        system.client_id,
        VAULT,
        "Bearer",
    )
    claims = emu.verify_access_token(body["access_token"])
    assert (claims["oid"], claims["aud"], claims["azpacr"]) == (system.object_id, VAULT, "2")
    assert claims["xms_mirid"] == system.resource_id


@pytest.mark.parametrize(
    ("metadata", "params", "error", "description"),
    [
        (False, {}, "bad_request_102", "Required metadata header not specified"),
        (True, {"client_id": "00000000-0000-0000-0000-0000000000ee"}, "invalid_request", None),
        (True, {"msi_res_id": "/subscriptions/x"}, "invalid_request", "Identity not found"),
        (True, {"resource": ""}, "invalid_request", "The resource parameter is required."),
        (True, {"api-version": "2017-09-01"}, "invalid_request", None),
        (True, {"resource": "api://unknown"}, "invalid_resource", None),
    ],
)
async def test_imds_errors(
    emu: Emulator,
    http: aiohttp.ClientSession,
    metadata: bool,
    params: dict[str, str],
    error: str,
    description: str | None,
) -> None:
    status, body = await _imds(http, emu, metadata=metadata, **params)
    assert status == 400
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description
    if error == "invalid_resource":
        assert body["error_description"].startswith("AADSTS500011: ")


async def test_imds_selects_user_assigned_identities(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    user = emu.managed_identity.add_identity(name="imds-worker")
    for params in (
        {"client_id": user.client_id.upper()},
        {"object_id": user.object_id},
        {"msi_res_id": user.resource_id},
    ):
        status, body = await _imds(http, emu, **params)
        assert (status, body["client_id"]) == (200, user.client_id), params
    status, _ = await _imds(http, emu, principal_id=user.object_id)  # an App Service name only
    assert status == 200  # ignored: the system-assigned identity answers
    assert emu.requests.count("managed_identity", client_id=user.client_id) == 3


def test_msal_managed_identity_client_uses_imds(emu: Emulator) -> None:
    user = emu.managed_identity.add_identity(name="msal-imds")
    session = requests.Session()
    session.trust_env = False  # no proxy between msal and the loopback host
    with session:
        client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=user.client_id), http_client=session
        )
        first = client.acquire_token_for_client(resource=VAULT)
        second = client.acquire_token_for_client(resource=VAULT)
    assert "access_token" in first, first
    assert first["token_source"] == "identity_provider"
    assert second["token_source"] == "cache"
    assert emu.verify_access_token(first["access_token"])["azp"] == user.client_id
    records = emu.requests.filter("managed_identity")
    assert [(r.path, r.status, r.client_id) for r in records] == [
        ("/metadata/identity/oauth2/token", 200, user.client_id)
    ]


def test_msal_sees_an_imds_410_then_recovers(emu: Emulator) -> None:
    emu.faults.add(Fault("managed_identity", "status", status=410))
    session = requests.Session()
    session.trust_env = False
    with session:
        client = msal.ManagedIdentityClient(
            msal.SystemAssignedManagedIdentity(), http_client=session
        )
        failed = client.acquire_token_for_client(resource=VAULT)
        recovered = client.acquire_token_for_client(resource=VAULT)
    assert failed["error"] == "invalid_request"
    assert "being updated" in failed["error_description"]
    assert "access_token" in recovered
    assert [r.status for r in emu.requests.filter("managed_identity")] == [410, 200]


async def test_azure_identity_credential_uses_imds(emu: Emulator) -> None:
    system = emu.managed_identity.system_assigned
    user = emu.managed_identity.add_identity(name="aio-imds")
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token(f"{VAULT}/.default")
        await credential.get_token(f"{VAULT}/.default")  # cached
    assert emu.verify_access_token(token.token)["oid"] == system.object_id
    async with ManagedIdentityCredential(identity_config={"object_id": user.object_id}) as cred:
        assert emu.verify_access_token((await cred.get_token(f"{VAULT}/.default")).token)
    assert emu.requests.count("managed_identity", client_id=system.client_id) == 1
    assert emu.requests.count("managed_identity", client_id=user.client_id) == 1


async def test_azure_identity_retries_an_imds_410(emu: Emulator) -> None:
    """azure-identity retries 410 ("IMDS is updating"); its first retry has no back-off."""
    emu.faults.add(Fault("managed_identity", "status", status=410))
    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token(f"{VAULT}/.default")
    assert emu.verify_access_token(token.token)
    records = emu.requests.filter("managed_identity")
    assert [(r.status, r.fault) for r in records] == [(410, "status"), (200, None)]


async def test_unknown_identity_makes_the_credential_unavailable(emu: Emulator) -> None:
    async with ManagedIdentityCredential(client_id="00000000-0000-0000-0000-0000000000ef") as cred:
        with pytest.raises(CredentialUnavailableError, match="Identity not found"):
            await cred.get_token(f"{VAULT}/.default")
    assert emu.requests.count("managed_identity", status=400) == 1
