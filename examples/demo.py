"""End-to-end demo: a daemon reads its settings from Key Vault, then calls a protected API.

Everything runs on this machine, offline: the aioentra emulator plays Microsoft
Entra ID and Key Vault, and a small "Todo API" (aiohttp.web, HTTPS) accepts only
tokens the emulator issued for it with the ``Todo.Read`` role.

    python examples/demo.py

The daemon side is what a real deployment runs; only the addresses differ.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import jwt
from aiohttp import web
from azure.keyvault.secrets.aio import SecretClient

from aioentra import ClientSecret, TokenProvider
from aioentra.aiohttp import authenticated_session
from aioentra.emulator import Emulator, Fault

TODO_URI = "api://todo-demo"
TODO_SCOPE = f"{TODO_URI}/.default"


# -- the protected web API (what your service would call) ----------------------------------------


def todo_api(emu: Emulator, audience: str) -> web.Application:
    """A web API that validates the bearer token: signature, issuer, audience, role."""
    keys = {key["kid"]: jwt.PyJWK(key) for key in emu.jwks()["keys"]}

    async def list_todos(request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        try:
            key = keys[jwt.get_unverified_header(token)["kid"]]
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=audience, issuer=emu.issuer()
            )
        except (jwt.PyJWTError, KeyError):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        if "Todo.Read" not in claims.get("roles", []):
            raise web.HTTPForbidden(text="the Todo.Read role is missing")
        return web.json_response(
            {"caller": claims["azp"], "todos": ["water the plants", "rotate the secrets"]}
        )

    app = web.Application()
    app.router.add_get("/todos", list_todos)
    return app


# -- the daemon ----------------------------------------------------------------------------------


async def daemon(emu: Emulator, tenant_id: str, client_id: str, secret: str, api_url: str) -> None:
    async with TokenProvider(
        ClientSecret(secret),
        tenant_id=tenant_id,
        client_id=client_id,
        authority=emu.base_url,  # in production: the default, login.microsoftonline.com
        ca_file=emu.ca_file,  # in production: the system trust store
    ) as provider:
        # 1. Startup: read configuration from Key Vault with the same provider.
        async with SecretClient(
            emu.vault.url,
            provider.as_azure_credential(),
            verify_challenge_resource=False,  # the emulator's vault host is not *.vault.azure.net
            connection_verify=emu.ca_file,
        ) as vault:
            api_key = await vault.get_secret("todo-api-base-path")
        print(f"1. read 'todo-api-base-path' from Key Vault: {api_key.value!r}")

        # 2. Call the protected API: the middleware adds and refreshes the token.
        connector = aiohttp.TCPConnector(ssl=emu.ssl_context())  # trusts the demo CA
        async with authenticated_session(
            provider, {api_url: TODO_SCOPE}, connector=connector
        ) as session:
            url = f"{api_url}{api_key.value}"
            started = time.perf_counter()
            results = await asyncio.gather(*(_get_json(session, url) for _ in range(100)))
            elapsed = time.perf_counter() - started
            print(
                f"2. 100 concurrent API calls in {elapsed * 1000:.0f} ms, all answered "
                f"{results[0]['todos']}"
            )
            token_requests = emu.requests.count(endpoint="token", client_id=client_id)
            print(f"   token requests sent so far: {token_requests} (one for the vault, one API)")

            # 3. The identity provider goes down: the cached token keeps the daemon running.
            emu.faults.add(Fault(endpoint="token", kind="status", status=503, count=None))
            await asyncio.gather(*(_get_json(session, url) for _ in range(20)))
            print("3. identity provider answering 503: 20 more API calls succeeded (cached token)")
            emu.faults.clear()

            # 4. The API revokes the token (401 invalid_token): one refresh, then it works.
            token = await provider.get_token(TODO_SCOPE)
            renewed = await provider.renew_token(TODO_SCOPE, rejected=token)
            print(f"4. after a rejected token, a new one: {renewed}")


async def _get_json(session: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with session.get(url) as response:
        response.raise_for_status()
        result: dict[str, object] = await response.json()
        return result


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    async with Emulator() as emu:
        # What an administrator sets up once in the portal:
        api = emu.add_api(TODO_URI, roles=["Todo.Read", "Todo.Write"])
        app = emu.add_app("todo-daemon")  # a client id and a client secret
        emu.grant(app, api, ["Todo.Read"])  # admin consent for one app role
        emu.vault.set_secret("todo-api-base-path", "/todos")
        emu.vault.grant(app, ["get"])
        print(f"emulator: authority {emu.authority}, vault {emu.vault.url}")

        runner = web.AppRunner(todo_api(emu, audience=api.app_id), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=emu.server_ssl_context())
        await site.start()
        port = runner.addresses[0][1]
        api_url = f"https://localhost:{port}"
        print(f"Todo API: {api_url}/todos (accepts tokens with the Todo.Read role)")
        try:
            await daemon(emu, emu.tenant_id, app.client_id, app.secret or "", api_url)
        finally:
            await runner.cleanup()
    print("done: every task, thread and server is closed")


if __name__ == "__main__":
    asyncio.run(main())
