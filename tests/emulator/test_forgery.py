"""Forged or malformed credentials are refused: the emulator must not be a pushover."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aioentra.emulator import App, Emulator

pytestmark = pytest.mark.anyio

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64u(json.dumps(header).encode())}.{_b64u(json.dumps(claims).encode())}"


@pytest.fixture(scope="module")
async def forge_emu() -> AsyncIterator[Emulator]:
    async with Emulator(reject_replayed_assertions=True, subject_alt_names=["idp.test"]) as emu:
        yield emu


@pytest.fixture
def victim(forge_emu: Emulator) -> App:
    return forge_emu.add_app("victim", secret=False, certificate=True)


def _claims(emu: Emulator, app: App, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "aud": emu.token_endpoint,
        "iss": app.client_id,
        "sub": app.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


async def _post(
    emu: Emulator, app: App, assertion: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(emu.token_endpoint, data=form, ssl=emu.ssl_context(), headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_unsigned_and_hmac_assertions_are_refused(forge_emu: Emulator, victim: App) -> None:
    material = victim.certificate
    assert material is not None
    x5t = material.x5t
    alg_none = (
        _unsigned({"alg": "none", "typ": "JWT", "x5t": x5t}, _claims(forge_emu, victim)) + "."
    )
    signing_input = _unsigned(
        {"alg": "HS256", "typ": "JWT", "x5t": x5t}, _claims(forge_emu, victim)
    )
    public_pem = material.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    for forged in (alg_none, f"{signing_input}.{_b64u(mac)}"):
        status, body = await _post(forge_emu, victim, forged)
        assert status == 401
        assert body["error"] == "invalid_client"


async def test_audience_is_not_taken_from_the_host_header(forge_emu: Emulator, victim: App) -> None:
    material = victim.certificate
    assert material is not None and material.private_key_pem is not None
    key = material.private_key_pem
    for host in ("evil.example", "idp.test"):
        aud = f"https://{host}:{forge_emu.port}/{forge_emu.tenant_id}/oauth2/v2.0/token"
        assertion = jwt.encode(
            _claims(forge_emu, victim, aud=aud), key, "RS256", headers={"x5t": material.x5t}
        )
        status, body = await _post(
            forge_emu, victim, assertion, headers={"Host": f"{host}:{forge_emu.port}"}
        )
        if host == "evil.example":
            assert (status, body["error_codes"]) == (401, [700023])
        else:  # a name the emulator's certificate covers
            assert status == 200


async def test_replayed_federated_assertion_is_refused_when_asked(forge_emu: Emulator) -> None:
    identity = forge_emu.managed_identity.add_identity(name="replay-source")
    app = forge_emu.add_app("federated", secret=False)
    forge_emu.add_federated_credential(app, issuer=forge_emu.issuer(), subject=identity.object_id)
    assertion, _ = forge_emu.issue_access_token(
        tenant_id=forge_emu.tenant_id,
        client_id=identity.client_id,
        object_id=identity.object_id,
        resource="api://AzureADTokenExchange",
        claims={"jti": str(uuid.uuid4())},
    )
    first, _ = await _post(forge_emu, app, assertion)
    second, body = await _post(forge_emu, app, assertion)
    assert (first, second) == (200, 401)
    assert body["error_codes"] == [50012]


async def test_vault_refuses_a_list_audience(forge_emu: Emulator) -> None:
    app = forge_emu.add_app("vault-reader")
    forge_emu.vault.grant(app, ["get"])
    forge_emu.vault.set_secret("s", "v")
    token, _ = forge_emu.issue_access_token(
        tenant_id=forge_emu.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource="https://vault.azure.net",
        claims={"aud": ["https://vault.azure.net"]},
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{forge_emu.vault.url}/secrets/s?api-version=7.5",
            headers={"Authorization": f"Bearer {token}"},
            ssl=forge_emu.ssl_context(),
        ) as response,
    ):
        assert response.status == 401
        assert "AKV10022" in (await response.json())["error"]["message"]
