"""v1.0 access tokens for APIs registered with ``access_token_version=1``, the v1 discovery
document, chosen object ids and tokens minted for negative API-side tests."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import jwt
import msal
import pytest

from aioentra.emulator import Emulator, EmulatorConfig, InvalidTokenError

from .helpers import http, post_token, requests_session, secret_form

pytestmark = pytest.mark.anyio

DEMO_OID = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
V1_CLAIMS = {"aud", "iss", "iat", "nbf", "exp", "appid", "appidacr", "idp", "idtyp", "oid"}


async def get_json(emu: Emulator, path: str) -> tuple[int, dict[str, Any]]:
    async with http(emu) as session, session.get(f"{emu.base_url}{path}") as response:
        return response.status, json.loads(await response.text())


def decode_with_jwks(token: str, jwks: dict[str, Any], **checks: Any) -> dict[str, Any]:
    """Verify ``token`` as a resource server would: the key its ``kid`` names in ``jwks``."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], **checks)
    return claims


def test_msal_gets_a_v1_token_that_verifies_with_v1_discovery(threaded_emu: Emulator) -> None:
    emu = threaded_emu
    api = emu.add_api("api://todo-v1", ["ToDoList.Read"], access_token_version=1)
    app = emu.add_app("v1-daemon", object_id=DEMO_OID)
    emu.grant(app, api, ["ToDoList.Read"])
    with requests_session(emu) as session:
        cca = msal.ConfidentialClientApplication(
            app.client_id,
            client_credential=app.secret,
            authority=emu.authority,
            instance_discovery=False,
            http_client=session,
        )
        result = cca.acquire_token_for_client(["api://todo-v1/.default"])
        assert "access_token" in result, result
        config = session.get(f"{emu.authority}/.well-known/openid-configuration").json()
        jwks = session.get(config["jwks_uri"]).json()
    token = str(result["access_token"])
    issuer = f"https://sts.windows.net/{emu.tenant_id}/"
    assert config["issuer"] == issuer == emu.issuer_v1()
    assert config["jwks_uri"] == f"{emu.authority}/discovery/keys"
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("RS256", "JWT")
    assert header["x5t"] == header["kid"] == emu.signing_key_id
    claims = decode_with_jwks(token, jwks, audience="api://todo-v1", issuer=issuer)
    assert set(claims) >= V1_CLAIMS
    assert (claims["ver"], claims["idp"], claims["idtyp"]) == ("1.0", issuer, "app")
    assert (claims["appid"], claims["appidacr"]) == (app.client_id, "1")
    assert "azp" not in claims
    assert "azpacr" not in claims
    assert claims["oid"] == claims["sub"] == DEMO_OID
    assert claims["tid"] == emu.tenant_id
    assert claims["roles"] == ["ToDoList.Read"]
    assert emu.verify_access_token(token) == claims


async def test_v1_audience_is_the_resource_as_requested(emu: Emulator) -> None:
    api = emu.add_api("api://todo-v1", ["ToDoList.Read"], access_token_version=1)
    app = emu.add_app(certificate=True)
    for requested in (api.app_id, "api://todo-v1"):
        status, body, _ = await post_token(
            emu, secret_form(app.client_id, str(app.secret), f"{requested}/.default")
        )
        assert status == 200, body
        claims = emu.verify_access_token(str(body["access_token"]))
        assert (claims["aud"], claims["ver"]) == (requested, "1.0")
        assert "roles" not in claims  # nothing granted


async def test_v2_stays_the_default(emu: Emulator) -> None:
    api = emu.add_api("api://todo-v2", ["ToDoList.Read"])
    assert api.access_token_version == 2
    app = emu.add_app()
    for requested in (api.app_id, "api://todo-v2"):
        _, body, _ = await post_token(
            emu, secret_form(app.client_id, str(app.secret), f"{requested}/.default")
        )
        token = str(body["access_token"])
        assert "x5t" not in jwt.get_unverified_header(token)
        claims = emu.verify_access_token(token)
        assert (claims["aud"], claims["ver"], claims["iss"]) == (api.app_id, "2.0", emu.issuer())
        assert (claims["azp"], claims["azpacr"]) == (app.client_id, "1")
        assert not {"appid", "appidacr", "idp"} & set(claims)


async def test_managed_identity_gets_v1_tokens_for_a_v1_api(emu: Emulator) -> None:
    emu.add_api("api://todo-v1", ["ToDoList.Read"], access_token_version=1)
    identity = emu.managed_identity.add_identity(name="v1-worker", object_id=DEMO_OID.upper())
    assert identity.object_id == DEMO_OID
    emu.grant(identity.app, "api://todo-v1", ["ToDoList.Read"])
    query = {
        "api-version": "2018-02-01",
        "resource": "api://todo-v1",
        "client_id": identity.client_id,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            emu.managed_identity.imds_endpoint, params=query, headers={"Metadata": "true"}
        ) as response,
    ):
        assert response.status == 200
        body = await response.json()
    claims = emu.verify_access_token(body["access_token"])
    assert (claims["aud"], claims["ver"], claims["iss"]) == (
        "api://todo-v1",
        "1.0",
        emu.issuer_v1(),
    )
    assert (claims["appid"], claims["appidacr"], claims["oid"]) == (
        identity.client_id,
        "2",
        DEMO_OID,
    )
    assert claims["roles"] == ["ToDoList.Read"]


async def test_v1_discovery_documents(emu: Emulator) -> None:
    status, by_domain = await get_json(emu, f"/{emu.domain}/.well-known/openid-configuration")
    assert status == 200
    assert by_domain["issuer"] == f"https://sts.windows.net/{emu.tenant_id}/"
    assert by_domain["jwks_uri"] == f"{emu.authority}/discovery/keys"
    assert by_domain["token_endpoint"] == f"{emu.authority}/oauth2/token"
    _, common = await get_json(emu, "/common/.well-known/openid-configuration")
    assert common["issuer"] == "https://sts.windows.net/{tenantid}/"
    _, v1_keys = await get_json(emu, f"/{emu.tenant_id}/discovery/keys")
    _, v2_keys = await get_json(emu, f"/{emu.tenant_id}/discovery/v2.0/keys")
    assert v1_keys == v2_keys == emu.jwks()
    status, unknown = await get_json(
        emu, "/00000000-0000-0000-0000-000000000001/.well-known/openid-configuration"
    )
    assert (status, unknown["error"], unknown["error_codes"]) == (400, "invalid_tenant", [90002])
    endpoints = [r.endpoint for r in emu.requests.records]
    assert endpoints == ["discovery", "discovery", "jwks", "jwks", "discovery"]


async def test_issue_access_token_v1_and_lifetimes(emu: Emulator) -> None:
    api = emu.add_api("api://todo-v1", ["ToDoList.Read"], access_token_version=1)
    app = emu.add_app(object_id=DEMO_OID)
    ids = {"tenant_id": emu.tenant_id, "client_id": app.client_id, "object_id": app.object_id}
    token, expires_on = emu.issue_access_token(
        **ids, resource="api://todo-v1/.default", roles=["ToDoList.Read"], azpacr="2", lifetime=60
    )
    assert jwt.get_unverified_header(token)["x5t"] == emu.signing_key_id
    claims = emu.verify_access_token(token)
    assert (claims["aud"], claims["iss"], claims["ver"]) == (
        "api://todo-v1",
        emu.issuer_v1(),
        "1.0",
    )
    assert (claims["appidacr"], claims["exp"], claims["exp"] - claims["iat"]) == (
        "2",
        expires_on,
        60,
    )
    by_id, _ = emu.issue_access_token(**ids, resource=api.app_id)
    assert emu.verify_access_token(by_id)["aud"] == api.app_id
    now = int(time.time())
    expired, _ = emu.issue_access_token(
        **ids, resource=api.identifier_uri, claims={"exp": now - 3600, "nbf": now - 7200}
    )
    with pytest.raises(InvalidTokenError, match="expired"):
        emu.verify_access_token(expired)
    early, _ = emu.issue_access_token(
        **ids, resource=api.identifier_uri, claims={"nbf": now + 3600}
    )
    with pytest.raises(InvalidTokenError, match="not yet valid"):
        emu.verify_access_token(early)
    assert jwt.decode(early, options={"verify_signature": False})["nbf"] == now + 3600


async def test_a_delegated_looking_token(emu: Emulator) -> None:
    """A user (delegated) token for an API's negative tests: ``scp``, ``idtyp: user``, no
    ``roles``."""
    api = emu.add_api("api://todo", ["ToDoList.Read"])
    app = emu.add_app()
    token, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        object_id=DEMO_OID,
        resource=api.identifier_uri,
        claims={"scp": "ToDoList.Read", "idtyp": "user"},
    )
    claims = emu.verify_access_token(token)
    assert (claims["scp"], claims["idtyp"], claims["aud"]) == ("ToDoList.Read", "user", api.app_id)
    assert claims["oid"] == DEMO_OID
    assert "roles" not in claims
    v1 = emu.add_api("api://todo-v1", access_token_version=1)
    token_v1, _ = emu.issue_access_token(
        tenant_id=emu.tenant_id,
        client_id=app.client_id,
        object_id=DEMO_OID,
        resource=v1.identifier_uri,
        claims={"scp": "ToDoList.Read", "idtyp": "user"},
    )
    assert emu.verify_access_token(token_v1)["idtyp"] == "user"


async def test_verify_rejects_a_version_issuer_mismatch(emu: Emulator) -> None:
    app = emu.add_app()
    ids = {"tenant_id": emu.tenant_id, "client_id": app.client_id, "object_id": app.object_id}
    v2_as_v1, _ = emu.issue_access_token(**ids, resource="https://other", claims={"ver": "1.0"})
    with pytest.raises(InvalidTokenError, match="unexpected issuer"):
        emu.verify_access_token(v2_as_v1)
    v1_issuer_on_v2, _ = emu.issue_access_token(
        **ids, resource="https://other", claims={"iss": emu.issuer_v1()}
    )
    with pytest.raises(InvalidTokenError, match="unexpected issuer"):
        emu.verify_access_token(v1_issuer_on_v2)


async def test_chosen_object_id(emu: Emulator) -> None:
    app = emu.add_app("demo", object_id=DEMO_OID.upper())
    assert app.object_id == DEMO_OID
    assert emu.find_identity(object_id=DEMO_OID) is app
    _, body, _ = await post_token(emu, secret_form(app.client_id, str(app.secret)))
    claims = emu.verify_access_token(str(body["access_token"]))
    assert claims["oid"] == claims["sub"] == DEMO_OID
    with pytest.raises(ValueError, match="already exists"):
        emu.add_app("again", object_id=DEMO_OID)
    with pytest.raises(ValueError, match="already exists"):
        emu.managed_identity.add_identity(object_id=DEMO_OID)
    with pytest.raises(ValueError, match="GUID"):
        emu.add_app("bad", object_id="not-a-guid")
    assert sum(a.name in {"again", "bad"} for a in emu.state.apps.values()) == 0


def test_registration_file_fields() -> None:
    data = {
        "apis": [
            {"identifier_uri": "api://todo-v1", "roles": ["R"], "access_token_version": 1},
            {"identifier_uri": "api://todo-v2", "access_token_version": 2},
            {"identifier_uri": "api://todo"},
        ],
        "apps": [{"name": "demo", "object_id": DEMO_OID, "secrets": ["s"]}],
    }
    config = EmulatorConfig.from_dict(data)
    assert [a.access_token_version for a in config.apis] == [1, 2, 2]
    assert config.apps[0].object_id == DEMO_OID
    emu = Emulator(config=config)
    assert emu.state.find_api(emu.tenant_id, "api://todo-v1").access_token_version == 1  # type: ignore[union-attr]
    app = emu.find_identity(object_id=DEMO_OID)
    assert app is not None
    assert app.name == "demo"
    for bad in (0, 3, "1", True, 1.0):
        with pytest.raises(ValueError, match=r"apis\[0\]\.access_token_version: expected 1 or 2"):
            EmulatorConfig.from_dict(
                {"apis": [{"identifier_uri": "api://x", "access_token_version": bad}]}
            )
    with pytest.raises(ValueError, match=r"apps\[0\]\.object_id: expected a string"):
        EmulatorConfig.from_dict({"apps": [{"name": "a", "object_id": 7}]})
    with pytest.raises(ValueError, match="access_token_version must be 1 or 2"):
        emu.add_api("api://y", access_token_version=3)  # type: ignore[arg-type]
