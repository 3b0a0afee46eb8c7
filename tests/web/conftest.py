"""Fixtures: an HTTPS aiohttp.web API protected by ``token_validation``, tokens from the
session's emulator, and a client that trusts the emulator's CA."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioentra.aiohttp.web import TokenValidation, request_claims, require_roles, token_validation
from aioentra.emulator import Api, App, Emulator

API_URI = "api://aioentra-web-tests"


@dataclass
class Served:
    """A running API: its base URL and the middleware guarding it."""

    url: str
    validation: TokenValidation
    session: aiohttp.ClientSession

    async def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, Any], str]:
        """``(status, JSON body, WWW-Authenticate)`` of ``GET path`` with ``token``."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.session.get(self.url + path, headers=headers) as response:
            body = await response.json()
            return response.status, body, response.headers.get("WWW-Authenticate", "")


def protected_app(validation: TokenValidation) -> web.Application:
    @require_roles("Things.Read", "Things.ReadWrite")
    async def read(request: web.Request) -> web.Response:
        claims = request_claims(request)
        return web.json_response(
            {
                "app_id": claims.app_id,
                "tenant_id": claims.tenant_id,
                "object_id": claims.object_id,
                "roles": sorted(claims.roles),
                "version": claims.version,
            }
        )

    @require_roles("Things.ReadWrite")
    async def write(request: web.Request) -> web.Response:
        return web.json_response({"written": True})

    app = web.Application()
    validation.install(app)
    app.router.add_get("/things", read)
    app.router.add_get("/things/write", write)
    return app


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve(emulator: Emulator) -> AsyncIterator[Serve]:
    """``await serve(**token_validation options)``: the protected API on HTTPS loopback."""
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=emulator.ssl_context()))

    async def start(**options: Any) -> Served:
        options.setdefault("authority", emulator.authority)
        options.setdefault("ca_file", emulator.ca_file)
        validation = token_validation(**options)
        runner = web.AppRunner(protected_app(validation), access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=emulator.server_ssl_context())
        await site.start()
        port = runner.addresses[0][1]
        return Served(f"https://localhost:{port}", validation, session)

    yield start
    for runner in runners:
        await runner.cleanup()
    await session.close()


@pytest.fixture
def emulator(aioentra_isolated: Emulator) -> Emulator:
    return aioentra_isolated


@pytest.fixture
def api(emulator: Emulator) -> Api:
    found = emulator.state.find_api(emulator.tenant_id, API_URI)
    if found is not None:
        return found
    return emulator.add_api(API_URI, roles=["Things.Read", "Things.ReadWrite"])


def mint(
    emulator: Emulator,
    app: App,
    resource: str,
    *,
    roles: Sequence[str] = ("Things.Read",),
    tenant_id: str | None = None,
    **claims: Any,
) -> str:
    """An access token the emulator signed, as its token endpoint would, plus ``claims``."""
    token, _ = emulator.issue_access_token(
        tenant_id=tenant_id or emulator.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource=resource,
        roles=roles,
        claims=claims or None,
    )
    return token


def jwks_requests(emulator: Emulator) -> int:
    return emulator.requests.count(endpoint="jwks")


def now() -> int:
    return int(time.time())
