"""``aioentra.aiohttp.web.token_validation`` against the emulator's real discovery and JWKS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aioentra import (
    AccessToken,
    ClientSecret,
    ConfigurationError,
    InvalidTokenError,
    TokenProvider,
    TokenValidator,
)
from aioentra.emulator import Api, App, Emulator, Fault
from aioentra.testing import ManualClock

from .conftest import API_URI, Serve, jwks_requests, mint, now

pytestmark = pytest.mark.anyio


async def test_a_valid_app_token_reaches_the_handler_with_its_claims(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id)
    status, body, _ = await served.get("/things", mint(emulator, aioentra_app, api.app_id))
    assert status == 200
    assert body == {
        "app_id": aioentra_app.client_id,
        "tenant_id": emulator.tenant_id,
        "object_id": aioentra_app.object_id,
        "roles": ["Things.Read"],
        "version": "2.0",
    }


async def test_a_token_from_the_real_token_endpoint_is_accepted(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    emulator.grant(aioentra_app, api, ["Things.ReadWrite"])
    served = await serve(audience=API_URI_AND_ID(api))
    token = await endpoint_token(emulator, aioentra_app, f"{api.identifier_uri}/.default")
    status, body, _ = await served.get("/things/write", token.token)
    assert (status, body) == (200, {"written": True})


async def endpoint_token(emulator: Emulator, app: App, scope: str) -> AccessToken:
    """A token from the emulator's real token endpoint, through a TokenProvider."""
    async with TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=emulator.ca_file,
    ) as provider:
        return await provider.get_token(scope)


def API_URI_AND_ID(api: Api) -> list[str]:
    return [api.identifier_uri, api.app_id]


async def test_no_token_gets_a_bare_bearer_challenge(api: Api, serve: Serve) -> None:
    served = await serve(audience=api.app_id)
    status, body, challenge = await served.get("/things")
    assert (status, challenge) == (401, "Bearer")
    assert body["error"] == "unauthorized"


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
async def test_garbage_is_an_invalid_token(api: Api, serve: Serve, garbage: str) -> None:
    served = await serve(audience=api.app_id)
    status, body, challenge = await served.get("/things", garbage)
    assert status == 401
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    assert body["error"] == "invalid_token"


async def test_a_token_without_the_role_gets_403_with_the_fix(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id)
    token = mint(emulator, aioentra_app, api.app_id, roles=[])  # consent never given
    status, body, challenge = await served.get("/things", token)
    assert status == 403
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert body["error"] == "insufficient_scope"
    assert "Things.Read or Things.ReadWrite" in body["error_description"]
    assert "admin consent" in body["hint"]
    # reading is allowed with Things.Read, writing needs Things.ReadWrite
    token = mint(emulator, aioentra_app, api.app_id, roles=["Things.Read"])
    assert (await served.get("/things", token))[0] == 200
    status, body, _ = await served.get("/things/write", token)
    assert status == 403
    assert "Things.ReadWrite" in body["error_description"]


async def test_wrong_audience_issuer_and_tenant_are_refused(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id)
    other_api = "api://aioentra-web-other"
    if emulator.state.find_api(emulator.tenant_id, other_api) is None:
        emulator.add_api(other_api, roles=["Things.Read"])
    wrong_audience = mint(emulator, aioentra_app, other_api)
    wrong_issuer = mint(emulator, aioentra_app, api.app_id, iss="https://issuer.invalid/x/v2.0")
    elsewhere = emulator.add_tenant()
    wrong_tenant = mint(emulator, aioentra_app, api.app_id, tid=elsewhere.tenant_id)
    other_tenant_issuer = mint(
        emulator,
        aioentra_app,
        api.app_id,
        tid=elsewhere.tenant_id,
        iss=emulator.issuer(elsewhere.tenant_id),
    )
    for token, reason in [
        (wrong_audience, "audience"),
        (wrong_issuer, "issuer"),
        (wrong_tenant, "issuer"),
        (other_tenant_issuer, "issuer"),
    ]:
        status, body, _ = await served.get("/things", token)
        assert status == 401, reason
        assert reason in body["error_description"]


async def test_a_tenant_allow_list_for_a_multi_tenant_api(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    allowed = emulator.add_tenant()
    refused = emulator.add_tenant()
    served = await serve(
        audience=api.app_id,
        authority=f"{emulator.base_url}/organizations",
        tenants=[emulator.tenant_id, allowed.tenant_id],
    )

    def token_from(tenant_id: str) -> str:
        return mint(
            emulator, aioentra_app, api.app_id, tid=tenant_id, iss=emulator.issuer(tenant_id)
        )

    assert (await served.get("/things", token_from(emulator.tenant_id)))[0] == 200
    assert (await served.get("/things", token_from(allowed.tenant_id)))[0] == 200
    status, body, _ = await served.get("/things", token_from(refused.tenant_id))
    assert status == 401
    assert "tenant" in body["error_description"]


def test_a_multi_tenant_authority_needs_a_tenant_list(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="organizations"):
        TokenValidator(audience="api://x", authority=f"{emulator.base_url}/organizations")


async def test_expired_and_not_yet_valid_tokens_are_refused(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id, leeway=30)
    expired = mint(emulator, aioentra_app, api.app_id, exp=now() - 31, nbf=now() - 3600)
    early = mint(emulator, aioentra_app, api.app_id, nbf=now() + 600)
    within_skew = mint(emulator, aioentra_app, api.app_id, nbf=now() + 20)
    status, body, _ = await served.get("/things", expired)
    assert (status, body["error_description"]) == (401, "the token has expired")
    status, body, _ = await served.get("/things", early)
    assert (status, body["error_description"]) == (401, "the token is not valid yet (nbf)")
    assert (await served.get("/things", within_skew))[0] == 200


def _unsigned(header: dict[str, object], claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


async def test_alg_none_and_hs256_with_the_public_key_are_refused(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id)
    genuine = mint(emulator, aioentra_app, api.app_id)
    kid = jwt.get_unverified_header(genuine)["kid"]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    none_token = _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, claims)
    # The classic key-confusion forgery: HMAC keyed with the RSA public key the JWKS publishes.
    public_jwk = next(k for k in emulator.jwks()["keys"] if k["kid"] == kid)
    public_pem = jwt.PyJWK(public_jwk).key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = _hmac_token(claims, kid, public_pem)
    for token in (none_token, hs256):
        status, body, _ = await served.get("/things", token)
        assert status == 401
        assert body["error_description"] == "the token's signing algorithm is not accepted"
    # and the signature itself is checked: the genuine header and claims, another signature
    head, payload, _ = genuine.split(".")
    tampered = f"{head}.{payload}.{base64.urlsafe_b64encode(b'x' * 256).rstrip(b'=').decode()}"
    status, body, _ = await served.get("/things", tampered)
    assert (status, body["error_description"]) == (401, "the token's signature does not verify")


def _hmac_token(claims: dict[str, object], kid: str, key: bytes) -> str:
    def part(value: dict[str, object]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


async def test_a_user_token_is_refused_where_app_tokens_are_required(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id, app_only=True)
    user = mint(emulator, aioentra_app, api.app_id, scp="Things.Read", idtyp="user")
    status, body, challenge = await served.get("/things", user)
    assert status == 403
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert "application tokens only" in body["error_description"]
    assert (await served.get("/things", mint(emulator, aioentra_app, api.app_id)))[0] == 200


async def test_v1_tokens_are_accepted_with_the_v1_issuer(
    emulator: Emulator, aioentra_app: App, serve: Serve
) -> None:
    uri = "api://aioentra-web-v1"
    v1 = emulator.state.find_api(emulator.tenant_id, uri) or emulator.add_api(
        uri, roles=["Things.Read"], access_token_version=1
    )
    emulator.grant(aioentra_app, v1, ["Things.Read"])
    served = await serve(audience=[uri, v1.app_id])
    token = await endpoint_token(emulator, aioentra_app, f"{uri}/.default")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["iss"] == f"https://sts.windows.net/{emulator.tenant_id}/"
    assert claims["ver"] == "1.0"
    status, body, _ = await served.get("/things", token.token)
    assert status == 200
    assert body["app_id"] == aioentra_app.client_id  # from v1's appid
    assert body["version"] == "1.0"
    # the v1 issuer of another tenant is not accepted
    other = emulator.add_tenant()
    forged = mint(
        emulator,
        aioentra_app,
        v1.app_id,
        iss=f"https://sts.windows.net/{other.tenant_id}/",
        tid=other.tenant_id,
    )
    assert (await served.get("/things", forged))[0] == 401


async def test_an_unknown_kid_refetches_the_keys_once_for_all_concurrent_requests(
    aioentra_private_emulator: Emulator,
) -> None:
    emulator = aioentra_private_emulator  # a rotation outlives the shared emulator's clean-up
    api = emulator.add_api(API_URI, roles=["Things.Read"])
    app = emulator.add_app("rotation")
    async with TokenValidator(
        audience=api.app_id, authority=emulator.authority, ca_file=emulator.ca_file
    ) as validator:
        assert (await validator.validate(mint(emulator, app, api.app_id))).roles
        before = jwks_requests(emulator)
        emulator.rotate_signing_key()
        rotated = [mint(emulator, app, api.app_id) for _ in range(20)]
        answers = await asyncio.gather(*(validator.validate(token) for token in rotated))
        assert {claims.app_id for claims in answers} == {app.client_id}
        assert jwks_requests(emulator) == before + 1
        # another new key within 5 minutes of that refetch: no second refetch yet
        emulator.rotate_signing_key(keep_previous=False)
        with pytest.raises(InvalidTokenError, match="signing key"):
            await validator.validate(mint(emulator, app, api.app_id))
        assert jwks_requests(emulator) == before + 1


async def test_made_up_kids_cost_one_fetch_per_five_minutes(
    emulator: Emulator, api: Api, aioentra_app: App
) -> None:
    clock = ManualClock(wall=now())
    async with TokenValidator(
        audience=api.app_id, authority=emulator.authority, ca_file=emulator.ca_file, clock=clock
    ) as validator:
        genuine = mint(emulator, aioentra_app, api.app_id)
        head, payload, signature = genuine.split(".")
        header = json.loads(base64.urlsafe_b64decode(head + "=="))

        def with_kid(kid: str) -> str:
            header["kid"] = kid
            encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=")
            return f"{encoded.decode()}.{payload}.{signature}"

        before = jwks_requests(emulator)
        for number in range(10):
            with pytest.raises(Exception, match="signing key is not one of the issuer's"):
                await validator.validate(with_kid(f"made-up-{number}"))
        assert jwks_requests(emulator) == before + 1
        clock.advance(301)
        with pytest.raises(Exception, match="signing key"):
            await validator.validate(with_kid("made-up-later"))
        assert jwks_requests(emulator) == before + 2
        assert (await validator.validate(genuine)).app_id == aioentra_app.client_id


async def test_the_last_good_keys_keep_serving_while_the_jwks_endpoint_is_down(
    emulator: Emulator, api: Api, aioentra_app: App
) -> None:
    clock = ManualClock(wall=now())
    async with TokenValidator(
        audience=api.app_id, authority=emulator.authority, ca_file=emulator.ca_file, clock=clock
    ) as validator:
        emulator.faults.add(Fault("jwks", "status", status=503, count=None))
        clock.advance(13 * 3600)  # past the 12 h refresh: a background refresh starts
        clock.step_wall(-13 * 3600)  # (the emulator mints with the real wall clock)
        for _ in range(5):
            claims = await validator.validate(mint(emulator, aioentra_app, api.app_id))
            assert claims.app_id == aioentra_app.client_id
            await asyncio.sleep(0)
        with pytest.raises(Exception, match="HTTP 503"):
            await validator.refresh()  # an explicit refresh reports the failure
        assert (await validator.validate(mint(emulator, aioentra_app, api.app_id))).roles


async def test_keys_that_never_loaded_give_503_and_the_fetch_backs_off(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    emulator.faults.add(Fault("jwks", "status", status=503, count=None))
    clock = ManualClock(wall=now())
    served = await serve(audience=api.app_id, clock=clock)  # startup logs it and goes on
    token = mint(emulator, aioentra_app, api.app_id)
    before = emulator.requests.count(endpoint="jwks")
    answers = [await served.get("/things", token) for _ in range(10)]
    assert {status for status, _, _ in answers} == {503}
    assert emulator.requests.count(endpoint="jwks") <= before + 1  # backing off
    assert answers[0][1]["error"] == "temporarily_unavailable"
    emulator.faults.clear()
    clock.advance(2)  # past the back-off: the next request fetches again
    assert (await served.get("/things", token))[0] == 200


async def test_a_malformed_jwks_is_never_cached(
    emulator: Emulator, api: Api, aioentra_app: App
) -> None:
    clock = ManualClock(wall=now())
    validator = TokenValidator(
        audience=api.app_id, authority=emulator.authority, ca_file=emulator.ca_file, clock=clock
    )
    try:
        emulator.faults.add(Fault("jwks", "respond", status=200, body='{"keys": "nope"}'))
        with pytest.raises(Exception, match="not a JWKS document"):
            await validator.start()
        with pytest.raises(Exception, match="not a JWKS document"):
            await validator.validate(mint(emulator, aioentra_app, api.app_id))  # backing off
        clock.advance(2)  # past the first back-off
        assert (await validator.validate(mint(emulator, aioentra_app, api.app_id))).roles
    finally:
        await validator.close()


async def test_a_wrong_tenant_fails_the_api_at_startup(
    emulator: Emulator, api: Api, serve: Serve
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await serve(audience=api.app_id, authority=f"{emulator.base_url}/no-such-tenant.example")
    assert "no-such-tenant.example" in caught.value.message
    assert "oidc_authority" in (caught.value.hint or "")
