"""The vault's wire behaviour, seen with a plain aiohttp client (protocol-facts §4.1-4.4)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aioentra.emulator import Emulator, Fault

pytestmark = pytest.mark.anyio

API = "api-version=2026-04-01"


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=emu.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def _vault_token(emu: Emulator, principal: Any, resource: str = "https://vault.azure.net") -> str:
    token, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=principal.client_id,
        object_id=principal.object_id,
        resource=resource,
    )
    return token


async def _get(
    http: aiohttp.ClientSession, url: str, token: str | None = None
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(), response.headers


async def test_no_token_gets_the_challenge(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, body, headers = await _get(http, f"{emu.vault.url}/secrets/x/?{API}")
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        f'Bearer authorization="{emu.base_url}/{emu.tenant_id}", resource="https://vault.azure.net"'
    )
    assert body == {
        "error": {
            "code": "Unauthorized",
            "message": "AKV10000: Request is missing a Bearer or PoP token.",
        }
    }


async def test_bodiless_put_without_token_gets_the_challenge(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.put(f"{emu.vault.url}/secrets/x?{API}", headers={"Content-Length": "0"}) as r:
        assert r.status == 401
        assert "WWW-Authenticate" in r.headers


async def test_missing_api_version_is_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, body, _ = await _get(http, f"{emu.vault.url}/secrets/x")
    assert status == 400
    assert body["error"]["code"] == "BadParameter"


async def test_token_for_another_api_is_akv10022(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app("wrong-audience")
    emu.vault.grant(app, ["get"])
    token = _vault_token(emu, app, resource="https://graph.microsoft.com")
    status, body, headers = await _get(http, f"{emu.vault.url}/secrets/x?{API}", token)
    assert status == 401
    assert body["error"]["message"] == (
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://graph.microsoft.com."
    )
    assert headers["WWW-Authenticate"].startswith('Bearer authorization="')


async def test_token_from_another_issuer_is_401(emu: Emulator, http: aiohttp.ClientSession) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "aud": "https://vault.azure.net",
        "iss": f"https://sts.windows.net/{emu.tenant_id}/",
        "tid": emu.tenant_id,
        "oid": "00000000-0000-0000-0000-000000000001",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "foreign"})
    status, body, _ = await _get(http, f"{emu.vault.url}/secrets/x?{API}", token)
    assert status == 401
    assert body["error"]["message"].startswith("AKV10046: Unable to resolve the key")


async def test_expired_token_is_401(emu: Emulator, http: aiohttp.ClientSession) -> None:
    app = emu.add_app("late")
    emu.vault.grant(app, ["get"])
    token, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource="https://vault.azure.net",
        claims={"exp": int(time.time()) - 3600},
    )
    status, body, _ = await _get(http, f"{emu.vault.url}/secrets/x?{API}", token)
    assert (status, body["error"]["code"]) == (401, "Unauthorized")
    assert "TokenExpired" in body["error"]["message"]


async def test_unauthorised_identity_gets_the_real_403(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app("no-policy")
    emu.vault.set_secret("x", "v")
    status, body, _ = await _get(http, f"{emu.vault.url}/secrets/x?{API}", _vault_token(emu, app))
    assert status == 403
    assert body["error"]["code"] == "Forbidden"
    assert body["error"]["innererror"] == {"code": "AccessDenied"}
    assert f"oid={app.object_id}" in body["error"]["message"]
    assert "does not have secrets get permission on key vault" in body["error"]["message"]


async def test_ids_and_next_link_use_the_request_host(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app("lister")
    emu.vault.grant(app, ["get", "list"])
    for index in range(3):
        emu.vault.set_secret(f"s{index}", "v")
    vault = emu.vault.url.replace("localhost", "127.0.0.1")
    token = _vault_token(emu, app)
    status, page, _ = await _get(http, f"{vault}/secrets?{API}&maxresults=2", token)
    assert status == 200
    assert [item["id"] for item in page["value"]] == [f"{vault}/secrets/s0", f"{vault}/secrets/s1"]
    assert page["nextLink"].startswith(f"{vault}/secrets?")
    assert "$skiptoken=" in page["nextLink"]
    status, last, _ = await _get(http, page["nextLink"], token)
    assert [item["id"] for item in last["value"]] == [f"{vault}/secrets/s2"]
    assert last["nextLink"] is None
    status, bundle, _ = await _get(http, f"{vault}/secrets/S0/?{API}", token)
    assert bundle["id"].startswith(f"{vault}/secrets/s0/")
    assert bundle["value"] == "v"


async def test_unknown_secret_is_404(emu: Emulator, http: aiohttp.ClientSession) -> None:
    app = emu.add_app("reader")
    emu.vault.grant(app, ["get"])
    status, body, _ = await _get(
        http, f"{emu.vault.url}/secrets/ghost?{API}", _vault_token(emu, app)
    )
    assert status == 404
    assert body["error"]["code"] == "SecretNotFound"
    assert body["error"]["message"].startswith(
        "A secret with (name/id) ghost was not found in this key vault."
    )


async def test_requests_are_logged_and_faults_apply(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(Fault("keyvault", "throttle", retry_after=1))
    status, body, headers = await _get(http, f"{emu.vault.url}/secrets/x?{API}")
    assert (status, headers["Retry-After"]) == (429, "1")
    assert body["error"]["code"] == "Throttled"
    status, _, _ = await _get(http, f"{emu.vault.url}/secrets/x?{API}")
    assert status == 401
    assert [r.status for r in emu.requests.filter("keyvault")] == [429, 401]
