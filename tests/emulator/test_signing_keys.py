"""Token-signing key rotation, and faults on the JWKS and discovery endpoints (v2 and v1 paths)
as an API that validates tokens meets them."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import jwt
import pytest

from aioentra.emulator import Emulator, Fault, InvalidTokenError

from .helpers import http, post_token, secret_form

pytestmark = pytest.mark.anyio

JWKS_PATHS = ("/discovery/v2.0/keys", "/discovery/keys")


async def get(emu: Emulator, path: str) -> tuple[int, str]:
    async with http(emu) as session, session.get(f"{emu.authority}{path}") as response:
        return response.status, await response.text()


async def served_kids(emu: Emulator) -> list[str]:
    """The ``kid`` list of the JWKS, the same on both paths."""
    documents = [json.loads((await get(emu, path))[1]) for path in JWKS_PATHS]
    assert documents[0] == documents[1] == emu.jwks()
    return [key["kid"] for key in documents[0]["keys"]]


async def token_for(emu: Emulator, client_id: str, secret: str, api: str) -> str:
    status, body, _ = await post_token(emu, secret_form(client_id, secret, f"{api}/.default"))
    assert status == 200, body
    return str(body["access_token"])


def verify_with(jwks: dict[str, Any], token: str, audience: str) -> dict[str, Any]:
    """A resource server's check: the JWKS key the token's ``kid`` names (KeyError if none)."""
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}
    key = keys[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)
    return claims


async def test_rotation_keeps_the_previous_key_published(emu: Emulator) -> None:
    api = emu.add_api("api://todo", ["ToDoList.Read"])
    v1 = emu.add_api("api://todo-v1", access_token_version=1)
    app = emu.add_app()
    first = emu.signing_key_id
    old, old_v1 = [
        await token_for(emu, app.client_id, str(app.secret), a)
        for a in ("api://todo", "api://todo-v1")
    ]
    assert await served_kids(emu) == [first]
    second = emu.rotate_signing_key()
    assert second != first
    assert emu.signing_key_id == second
    new = await token_for(emu, app.client_id, str(app.secret), "api://todo")
    assert jwt.get_unverified_header(new)["kid"] == second
    assert await served_kids(emu) == [second, first]
    jwks = emu.jwks()
    for token in (old, new):
        assert verify_with(jwks, token, api.app_id)["aud"] == api.app_id
        emu.verify_access_token(token)
    assert verify_with(jwks, old_v1, v1.identifier_uri)["ver"] == "1.0"
    emu.verify_access_token(old_v1)
    # A second rotation keeps only the one key before it.
    third = emu.rotate_signing_key()
    assert await served_kids(emu) == [third, second]
    with pytest.raises(InvalidTokenError, match="unknown signing key id"):
        emu.verify_access_token(old)
    emu.verify_access_token(new)


async def test_rotation_without_the_previous_key(emu: Emulator) -> None:
    api = emu.add_api("api://todo", ["ToDoList.Read"])
    app = emu.add_app()
    emu.vault.grant(app, ["get"])
    emu.vault.set_secret("greeting", "hello")
    old = await token_for(emu, app.client_id, str(app.secret), "api://todo")
    old_vault = await token_for(emu, app.client_id, str(app.secret), "https://vault.azure.net")
    new_kid = emu.rotate_signing_key(keep_previous=False)
    assert await served_kids(emu) == [new_kid]
    with pytest.raises(InvalidTokenError, match="unknown signing key id"):
        emu.verify_access_token(old)
    with pytest.raises(KeyError):
        verify_with(emu.jwks(), old, api.app_id)
    new = await token_for(emu, app.client_id, str(app.secret), "api://todo")
    assert verify_with(emu.jwks(), new, api.app_id)["oid"] == app.object_id
    # The vault verifies bearer tokens with the same key ring.
    url = f"{emu.vault.url}/secrets/greeting?api-version=7.4"
    async with http(emu) as session:
        headers = {"Authorization": f"Bearer {old_vault}"}
        async with session.get(url, headers=headers) as response:
            assert response.status == 401
            assert "AKV10046" in await response.text()
        fresh = await token_for(emu, app.client_id, str(app.secret), "https://vault.azure.net")
        headers = {"Authorization": f"Bearer {fresh}"}
        async with session.get(url, headers=headers) as response:
            assert response.status == 200


def test_rotation_is_thread_safe(threaded_emu: Emulator) -> None:
    emu = threaded_emu
    app = emu.add_app()
    ids = {"tenant_id": emu.tenant_id, "client_id": app.client_id, "object_id": app.object_id}
    initial = emu.signing_key_id
    with ThreadPoolExecutor(max_workers=4) as pool:
        rotations = [pool.submit(emu.rotate_signing_key) for _ in range(4)]
        minted = [pool.submit(emu.issue_access_token, **ids, resource="api://x") for _ in range(8)]
        kids = [future.result() for future in rotations]
        tokens = [future.result()[0] for future in minted]
    assert len(set(kids)) == 4
    assert emu.signing_key_id in kids
    published = [key["kid"] for key in emu.jwks()["keys"]]
    assert len(published) == 2
    assert published[0] == emu.signing_key_id
    assert published[1] in kids
    assert all(jwt.get_unverified_header(t)["kid"] in [initial, *kids] for t in tokens)
    token, _ = emu.issue_access_token(**ids, resource="api://x")
    assert emu.verify_access_token(token)["aud"] == "api://x"


@pytest.mark.parametrize("path", JWKS_PATHS)
async def test_jwks_status_fault(emu: Emulator, path: str) -> None:
    emu.faults.add(Fault("jwks", "status", status=503, retry_after=5))
    status, _ = await get(emu, "/v2.0/.well-known/openid-configuration")
    assert status == 200  # a jwks fault leaves discovery alone
    status, text = await get(emu, path)
    assert status == 503
    body = json.loads(text)
    assert (body["error"], body["error_codes"]) == ("temporarily_unavailable", [90033])
    assert (await get(emu, path))[0] == 200
    assert [(r.endpoint, r.status, r.fault) for r in emu.requests.records] == [
        ("discovery", 200, None),
        ("jwks", 503, "status"),
        ("jwks", 200, None),
    ]


async def test_jwks_reset_and_latency_faults(emu: Emulator) -> None:
    # aiohttp retries an idempotent request once on a dropped connection: reset it twice. The
    # fault names the tenant by domain; the request names it by GUID.
    emu.faults.add(Fault("jwks", "reset", count=2, tenant=emu.domain))
    with pytest.raises(aiohttp.ClientError):
        await get(emu, "/discovery/keys")
    assert [(r.endpoint, r.status, r.fault) for r in emu.requests.records] == [
        ("jwks", None, "reset"),
        ("jwks", None, "reset"),
    ]
    emu.faults.add(Fault("jwks", "latency", delay=0.2))
    started = time.monotonic()
    status, _ = await get(emu, "/discovery/v2.0/keys")
    assert status == 200
    assert time.monotonic() - started >= 0.2
    assert emu.requests.records[-1].fault == "latency"
    assert emu.faults.active == []


async def test_discovery_faults_on_both_documents(emu: Emulator) -> None:
    emu.faults.add(Fault("discovery", "status", status=503, count=2))
    for path in ("/.well-known/openid-configuration", "/v2.0/.well-known/openid-configuration"):
        status, _ = await get(emu, path)
        assert status == 503
    assert (await get(emu, "/discovery/keys"))[0] == 200
    emu.faults.add(Fault("discovery", "reset", count=2))
    with pytest.raises(aiohttp.ClientError):
        await get(emu, "/.well-known/openid-configuration")
    assert (await get(emu, "/.well-known/openid-configuration"))[0] == 200


def test_pyjwt_jwks_client_meets_a_jwks_fault(threaded_emu: Emulator) -> None:
    """PyJWT's PyJWKClient, as an API would use it, against the v1 JWKS URI."""
    emu = threaded_emu
    api = emu.add_api("api://todo-v1", access_token_version=1)
    app = emu.add_app()
    token, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource=api.identifier_uri,
    )
    uri = f"{emu.authority}/discovery/keys"
    emu.faults.add(Fault("jwks", "status", status=503))
    failing = jwt.PyJWKClient(uri, ssl_context=emu.ssl_context(), cache_jwk_set=False)
    with pytest.raises(jwt.PyJWKClientConnectionError):
        failing.get_signing_key_from_jwt(token)
    client = jwt.PyJWKClient(uri, ssl_context=emu.ssl_context())
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience="api://todo-v1",
        issuer=emu.issuer_v1(),
    )
    assert claims["appid"] == app.client_id
    assert emu.requests.count("jwks", status=503) == 1
