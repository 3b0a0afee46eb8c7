"""A plain-http loopback authority, allowed only with ``allow_insecure_http=True``.

msal itself only speaks https; the provider's transport sends msal's https URLs for that one
loopback origin over http. The server here is a minimal plain-http identity provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from aioentra import ClientSecret, ConfigurationError, TokenProvider

pytestmark = pytest.mark.anyio

TENANT = "contoso.example"


@pytest.fixture
async def plain_http_idp() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def discovery(request: web.Request) -> web.Response:
        seen.append(request)
        base = f"http://{request.host}/{TENANT}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
            }
        )

    async def token(request: web.Request) -> web.Response:
        seen.append(request)
        form = await request.post()
        assert form["client_secret"] == "s3cret"
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "access_token": "plain.http.token"}
        )

    app = web.Application()
    app.router.add_get(f"/{TENANT}/v2.0/.well-known/openid-configuration", discovery)
    app.router.add_post(f"/{TENANT}/oauth2/v2.0/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_plain_http_loopback_works_only_with_the_flag(
    plain_http_idp: tuple[str, list[web.Request]],
) -> None:
    authority, seen = plain_http_idp
    with pytest.raises(ConfigurationError, match="plain http"):
        TokenProvider(ClientSecret("s3cret"), tenant_id=TENANT, client_id="c", authority=authority)
    async with TokenProvider(
        ClientSecret("s3cret"),
        tenant_id=TENANT,
        client_id="c",
        authority=authority,
        allow_insecure_http=True,
    ) as provider:
        token = await provider.get_token("api://x/.default")
    assert token.token == "plain.http.token"
    assert [r.method for r in seen] == ["GET", "POST"]
    assert all(not r.secure for r in seen)
