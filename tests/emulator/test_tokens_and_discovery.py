"""Issued token claims (verified with the served JWKS) and the discovery documents."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest

from aioentra.emulator import Emulator, InvalidTokenError

from .helpers import http, post_token, secret_form

pytestmark = pytest.mark.anyio


async def get_json(emu: Emulator, path: str) -> tuple[int, dict[str, object]]:
    async with http(emu) as session, session.get(f"{emu.base_url}{path}") as response:
        return response.status, json.loads(await response.text())


async def test_token_claims_verify_with_jwks(emu: Emulator) -> None:
    api = emu.add_api("api://orders", ["Orders.Read", "Orders.Write"])
    app = emu.add_app()
    emu.grant(app, api, ["Orders.Read"])
    _, body, _ = await post_token(
        emu, secret_form(app.client_id, str(app.secret), "api://orders/.default")
    )
    token = str(body["access_token"])
    status, config = await get_json(emu, f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert config["issuer"] == emu.issuer()
    _, jwks = await get_json(emu, f"/{emu.tenant_id}/discovery/v2.0/keys")
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"
    assert header["alg"] == "RS256"
    keys = jwt.PyJWKSet.from_dict(jwks)
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=api.app_id, issuer=emu.issuer()
    )
    assert claims["roles"] == ["Orders.Read"]
    assert claims["tid"] == emu.tenant_id
    assert claims["azp"] == app.client_id
    assert claims["oid"] == claims["sub"] == app.object_id
    assert (claims["idtyp"], claims["ver"], claims["azpacr"]) == ("app", "2.0", "1")
    assert claims["exp"] - claims["iat"] == 3599
    assert isinstance(claims["nbf"], int)
    assert "uti" in claims
    assert "xms_cc" not in claims
    entry = jwks["keys"][0]  # type: ignore[index]
    assert {"kid", "x5t", "n", "e", "x5c", "issuer"} <= set(entry)
    assert entry["issuer"] == emu.issuer()


async def test_no_roles_claim_without_grant(emu: Emulator) -> None:
    emu.add_api("api://orders", ["Orders.Read"])
    app = emu.add_app()
    _, body, _ = await post_token(
        emu, secret_form(app.client_id, str(app.secret), "api://orders/.default")
    )
    assert "roles" not in emu.verify_access_token(str(body["access_token"]))


async def test_builtin_vault_audience_and_capabilities(emu: Emulator) -> None:
    app = emu.add_app()
    claims_param = json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}})
    form = secret_form(app.client_id, str(app.secret)) | {"claims": claims_param}
    _, body, _ = await post_token(emu, form)
    claims = emu.verify_access_token(str(body["access_token"]))
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["xms_cc"] == ["CP1"]
    assert emu.requests.records[-1].claims == claims_param
    challenge = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1700000000"}}})
    status, _, _ = await post_token(
        emu, secret_form(app.client_id, str(app.secret)) | {"claims": challenge}
    )
    assert status == 200


async def test_lifetime_and_refresh_in_settings(emu: Emulator) -> None:
    app = emu.add_app()
    emu.token_lifetime = 900
    emu.refresh_in = 450
    _, body, _ = await post_token(emu, secret_form(app.client_id, str(app.secret)))
    assert (body["expires_in"], body["refresh_in"]) == (900, 450)
    with pytest.raises(ValueError, match="> 300"):
        emu.token_lifetime = 300
    with pytest.raises(ValueError, match="> 300"):
        Emulator(token_lifetime=120)


async def test_issue_and_verify_tokens_directly(emu: Emulator) -> None:
    api = emu.add_api("api://reports", ["Reports.Read"])
    app = emu.add_app()
    emu.grant(app, api, ["Reports.Read"])
    ids = {"tenant_id": emu.tenant_id, "client_id": app.client_id, "object_id": app.object_id}
    token, expires_on = emu.issue_access_token(
        **ids, resource="api://reports/.default", roles=["Reports.Read"]
    )
    claims = emu.verify_access_token(token)
    assert claims["aud"] == api.app_id
    assert claims["roles"] == ["Reports.Read"]
    assert (claims["exp"], claims["azpacr"]) == (expires_on, "1")
    assert expires_on - claims["iat"] == emu.token_lifetime
    custom, _ = emu.issue_access_token(**ids, resource="https://other", azpacr="2", lifetime=600)
    custom_claims = emu.verify_access_token(custom)
    assert (custom_claims["aud"], custom_claims["azpacr"]) == ("https://other", "2")
    assert custom_claims["exp"] - custom_claims["iat"] == 600
    assert "roles" not in custom_claims
    expired, _ = emu.issue_access_token(
        **ids, resource=api.identifier_uri, claims={"exp": int(time.time()) - 3600}
    )
    with pytest.raises(InvalidTokenError, match="expired"):
        emu.verify_access_token(expired)
    forged = jwt.encode({"tid": emu.tenant_id}, "k" * 32, algorithm="HS256")
    with pytest.raises(InvalidTokenError):
        emu.verify_access_token(forged)
    assert emu.find_identity(object_id=app.object_id) is app


async def test_discovery_by_domain_and_multitenant_template(emu: Emulator) -> None:
    status, config = await get_json(
        emu, "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    )
    assert status == 200
    assert config["token_endpoint"] == emu.token_endpoint
    assert config["jwks_uri"] == f"{emu.authority}/discovery/v2.0/keys"
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]  # type: ignore[operator]
    _, common = await get_json(emu, "/common/v2.0/.well-known/openid-configuration")
    assert common["issuer"] == f"{emu.base_url}/{{tenantid}}/v2.0"


async def test_unknown_tenant_discovery_is_invalid_tenant(emu: Emulator) -> None:
    for path in ("/v2.0/.well-known/openid-configuration", "/discovery/v2.0/keys"):
        status, body = await get_json(emu, f"/{uuid.uuid4()}{path}")
        assert (status, body["error"], body["error_codes"]) == (400, "invalid_tenant", [90002])


async def test_instance_discovery(emu: Emulator) -> None:
    authorize = f"https://localhost/{emu.tenant_id}/oauth2/v2.0/authorize"
    status, body = await get_json(
        emu, f"/common/discovery/instance?api-version=1.1&authorization_endpoint={authorize}"
    )
    assert status == 200
    assert (
        body["tenant_discovery_endpoint"]
        == f"{emu.authority}/v2.0/.well-known/openid-configuration"
    )
    assert body["metadata"]


async def test_addresses_and_tls(emu: Emulator) -> None:
    assert emu.base_url == f"https://localhost:{emu.port}"
    assert emu.token_endpoint == f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token"
    uuid.UUID(emu.tenant_id)
    async with http(emu) as session:
        url = f"https://127.0.0.1:{emu.port}/{emu.tenant_id}/discovery/v2.0/keys"
        async with session.get(url) as response:
            assert response.status == 200
    assert emu.requests.count("jwks", status=200) == 1


def test_close_removes_ca_file_and_is_idempotent() -> None:
    emu = Emulator(tenant_id="11111111-2222-3333-4444-555555555555")
    with emu.serve_in_thread():
        ca_file = Path(emu.ca_file)
        assert "BEGIN CERTIFICATE" in ca_file.read_text(encoding="ascii")
    assert not ca_file.exists()
    asyncio.run(emu.close())  # idempotent
    assert emu.tenant_id == "11111111-2222-3333-4444-555555555555"
