"""Defects an adversarial review of the token validation found, each with its test."""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioentra import (
    Claims,
    ConfigurationError,
    IdentityProviderUnavailableError,
    InvalidTokenError,
    TokenValidator,
)
from aioentra.emulator import Api, App, Emulator, Fault

from .conftest import API_URI, Serve, mint, protected_app

pytestmark = pytest.mark.anyio


def _with_header(token: str, **changes: Any) -> str:
    head, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{payload}.{signature}"


def validator(emulator: Emulator, api: Api, **options: Any) -> TokenValidator:
    return TokenValidator(
        audience=api.app_id, authority=emulator.authority, ca_file=emulator.ca_file, **options
    )


async def test_malformed_tokens_are_401s_not_500s(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    genuine = mint(emulator, aioentra_app, api.app_id)
    head, payload, _ = genuine.split(".")
    es_on_rsa = _with_header(genuine, alg="ES256")  # an EC algorithm naming an RSA key
    async with validator(emulator, api, algorithms=["RS256", "ES256"]) as checking:
        for token in (f"{head}.{payload}.\udcff", f"{head}.{payload}.é", es_on_rsa):
            with pytest.raises(InvalidTokenError):
                await checking.validate(token)
    served = await serve(audience=api.app_id, algorithms=["RS256", "ES256"])
    assert (await served.get("/things", es_on_rsa))[0] == 401


async def test_a_withdrawn_key_takes_the_tokens_it_signed_out_of_the_cache(
    aioentra_private_emulator: Emulator,
) -> None:
    emulator = aioentra_private_emulator
    api = emulator.add_api(API_URI, roles=["Things.Read"])
    app = emulator.add_app("withdrawn")
    token = mint(emulator, app, api.app_id, exp=int(time.time()) + 10 * 365 * 86400)
    async with validator(emulator, api) as warm:
        assert (await warm.validate(token)).app_id == app.client_id  # remembered
        emulator.rotate_signing_key(keep_previous=False)  # an emergency rollover
        await warm.refresh()
        with pytest.raises(InvalidTokenError, match="signing key"):
            await warm.validate(token)


async def test_an_unknown_kid_while_refetching_backs_off_is_a_401(
    emulator: Emulator, api: Api, aioentra_app: App
) -> None:
    async with validator(emulator, api) as checking:
        emulator.faults.add(Fault("jwks", "status", status=500, count=1))
        with pytest.raises(IdentityProviderUnavailableError):
            await checking.refresh()  # the key now backs off
        genuine = mint(emulator, aioentra_app, api.app_id)
        assert await checking.validate(genuine)  # the last good keys serve
        with pytest.raises(InvalidTokenError, match="signing key"):
            await checking.validate(_with_header(genuine, kid="made-up"))


async def test_two_authorization_headers_are_a_bad_request(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve
) -> None:
    served = await serve(audience=api.app_id)
    token = mint(emulator, aioentra_app, api.app_id)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Basic dXNlcjpwdw==")]
    async with served.session.get(f"{served.url}/things", headers=headers) as response:
        assert response.status == 400
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_request"')


async def test_one_middleware_on_a_second_app_fails_its_startup_clearly(
    emulator: Emulator, api: Api
) -> None:
    from aioentra.aiohttp.web import token_validation

    shared = token_validation(
        authority=emulator.authority, audience=api.app_id, ca_file=emulator.ca_file
    )
    first = web.AppRunner(protected_app(shared))
    await first.setup()
    await first.cleanup()
    second = web.AppRunner(protected_app(shared))
    with pytest.raises(ConfigurationError, match="one token_validation"):
        await second.setup()


async def test_request_paths_are_logged_quoted(
    emulator: Emulator, api: Api, aioentra_app: App, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(audience=api.app_id)
    caplog.set_level("INFO", logger="aioentra.aiohttp.web")
    context = ssl.create_default_context(cafile=emulator.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        forged = f"{served.url}/things%0A2030-01-01%20CRITICAL%20forged"
        async with session.get(forged, headers={"Authorization": "Bearer x.y.z"}) as response:
            assert response.status == 401
    assert all("\n" not in record.getMessage() for record in caplog.records)


def test_app_only_needs_an_app_and_its_own_subject() -> None:
    app = {"azp": "c", "oid": "o", "sub": "o"}
    assert Claims(app).is_app_only
    assert Claims({**app, "idtyp": "app", "scp": "x"}).is_app_only  # idtyp decides
    assert not Claims({**app, "scp": "A.Read"}).is_app_only  # a user's delegated token
    assert not Claims({"oid": "o", "sub": "o"}).is_app_only  # no app: an ID token, say
    assert not Claims({**app, "sub": "pairwise"}).is_app_only  # a user's sub is not the oid


def test_tenants_must_be_tenant_ids() -> None:
    with pytest.raises(ConfigurationError, match="GUIDs"):
        TokenValidator(
            audience="api://x",
            authority="https://login.microsoftonline.com/organizations",
            tenants=["contoso.onmicrosoft.com"],
        )
