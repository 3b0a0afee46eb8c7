"""Raw HTTP on the newer vault routes: faults, the soft-delete conflict, JSON for unserved paths."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioentra.emulator import App, Emulator, Fault

pytestmark = pytest.mark.anyio

API = "api-version=2026-04-01"


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=emu.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def _bearer(emu: Emulator, app: App) -> dict[str, str]:
    token, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource="https://vault.azure.net",
    )
    return {"Authorization": f"Bearer {token}"}


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, dict[str, str]]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json(), dict(response.headers)


def _sign_body(alg: str = "PS256") -> dict[str, str]:
    digest = hashlib.sha256(b"x").digest()
    return {"alg": alg, "value": base64.urlsafe_b64encode(digest).decode().rstrip("=")}


@pytest.fixture
def signer(emu: Emulator) -> tuple[App, str]:
    stored = emu.vault.set_certificate("routed")
    app = emu.add_app("routes")
    emu.vault.grant(app, ["all"], keys=["all"], certificates=["all"])
    return app, stored.version


async def test_certificate_bundle_on_the_wire(
    emu: Emulator, http: aiohttp.ClientSession, signer: tuple[App, str]
) -> None:
    app, version = signer
    vault = emu.vault.url
    url = f"{vault}/certificates/routed?{API}"
    status, body, _ = await _call(http, "GET", url, headers=_bearer(emu, app))
    assert status == 200
    assert set(body) == {"id", "kid", "sid", "x5t", "cer", "attributes", "policy"}
    assert (body["kid"], body["sid"]) == (
        f"{vault}/keys/routed/{version}",
        f"{vault}/secrets/routed/{version}",
    )
    assert "=" not in body["x5t"]
    assert set(body["attributes"]) == {
        "enabled",
        "nbf",
        "exp",
        "created",
        "updated",
        "recoveryLevel",
        "recoverableDays",
    }
    url = f"{vault}/keys/routed/{version}?{API}"
    status, key, _ = await _call(http, "GET", url, headers=_bearer(emu, app))
    assert (status, key["key"]["kty"], key["attributes"]["exportable"]) == (200, "RSA", True)
    assert set(key["key"]) == {"kid", "kty", "key_ops", "n", "e"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"alg": "PS256", "value": "AAAA"}, "Invalid digest length 3 for algorithm PS256"),
        (_sign_body("ES256"), "does not fit this key's type"),
        (_sign_body("HS256"), "Unsupported signature algorithm"),
        ({"value": "AAAA"}, "Property 'alg' is required"),
    ],
)
async def test_bad_sign_requests_are_400(
    emu: Emulator,
    http: aiohttp.ClientSession,
    signer: tuple[App, str],
    body: dict[str, str],
    message: str,
) -> None:
    app, version = signer
    url = f"{emu.vault.url}/keys/routed/{version}/sign?{API}"
    status, answer, _ = await _call(http, "POST", url, json=body, headers=_bearer(emu, app))
    assert (status, answer["error"]["code"]) == (400, "BadParameter")
    assert message in answer["error"]["message"]


async def test_faults_apply_to_certificate_and_key_routes(
    emu: Emulator, http: aiohttp.ClientSession, signer: tuple[App, str]
) -> None:
    app, version = signer
    headers = _bearer(emu, app)
    sign = f"{emu.vault.url}/keys/routed/{version}/sign?{API}"
    certificate = f"{emu.vault.url}/certificates/routed/{version}?{API}"
    emu.faults.add(Fault("keyvault", "throttle", retry_after=3))
    emu.faults.add(Fault("keyvault", "status", status=503))
    emu.faults.add(Fault("keyvault", "latency", delay=0.05))
    status, body, answer_headers = await _call(
        http, "POST", sign, json=_sign_body(), headers=headers
    )
    assert (status, answer_headers["Retry-After"], body["error"]["code"]) == (429, "3", "Throttled")
    status, body, _ = await _call(http, "GET", certificate, headers=headers)
    assert (status, body["error"]["code"]) == (503, "ServiceUnavailable")
    status, body, _ = await _call(http, "POST", sign, json=_sign_body(), headers=headers)
    assert (status, body["kid"]) == (200, f"{emu.vault.url}/keys/routed/{version}")
    emu.faults.add(Fault("keyvault", "reset"))
    with pytest.raises(aiohttp.ClientError):
        await _call(http, "POST", sign, json=_sign_body(), headers=headers)
    logged = [(r.status, r.fault) for r in emu.requests.filter("keyvault")]
    assert logged == [(429, "throttle"), (503, "status"), (200, "latency"), (None, "reset")]


async def test_set_on_a_soft_deleted_secret_is_409(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app("conflict")
    emu.vault.grant(app, ["set"])
    emu.vault.set_secret("gone", "v")
    emu.vault.delete_secret("gone")
    url = f"{emu.vault.url}/secrets/gone?{API}"
    status, body, _ = await _call(http, "PUT", url, json={"value": "w"}, headers=_bearer(emu, app))
    assert status == 409
    assert body == {
        "error": {
            "code": "Conflict",
            "message": "Secret gone is currently in a deleted but recoverable state, and its name "
            "cannot be reused; in this state, the secret can only be recovered or purged.",
            "innererror": {"code": "ObjectIsDeletedButRecoverable"},
        }
    }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/secrets/a/b/c", 404),
        ("GET", "/deletedkeys/x", 404),
        ("POST", "/certificates/x", 405),
    ],
)
async def test_unserved_vault_paths_answer_key_vault_json(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    got, body, headers = await _call(http, method, f"{emu.vault.url}{path}?{API}")
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error"}
    assert body["error"]["code"] == ("NotFound" if status == 404 else "MethodNotAllowed")
    assert path in body["error"]["message"]
    assert emu.requests.count("other", status=status) == 1


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404)])
async def test_unserved_identity_paths_answer_entra_json(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    got, body, _ = await _call(http, method, f"{emu.base_url}{path}")
    assert got == status
    assert body["error"] == "invalid_request"
    assert path in body["error_description"]
    assert {"error_codes", "timestamp", "trace_id", "correlation_id"} <= set(body)
    async with http.post(f"{emu.authority}/v2.0/.well-known/openid-configuration") as response:
        assert response.status == 405
        assert (await response.json())["error"] == "invalid_request"
    async with aiohttp.ClientSession() as plain:
        url = emu.managed_identity.endpoint.replace("/msi/token", "/unknown")
        async with plain.get(url) as response:
            assert response.status == 404
            assert (await response.json())["error"] == "invalid_request"
