"""examples/web_service: the provider in an aiohttp.web service (cleanup_ctx + web.AppKey)."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import socket
import sys
from collections.abc import AsyncIterator
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

from aioentra import ProviderClosedError, TokenProvider
from aioentra.emulator import Api, App, Emulator

from .conftest import EXAMPLES, Handler, Run, bearer_claims, https_api, run_example

pytestmark = pytest.mark.anyio

SERVICE = EXAMPLES / "web_service" / "service.py"
ORDERS = {"orders": [{"id": 1, "item": "water the plants"}, {"id": 2, "item": "rotate"}]}


@pytest.fixture
def orders_app(aioentra_isolated: Emulator, aioentra_app: App, aioentra_api: Api) -> App:
    """The service's app registration, granted the orders API's read role."""
    aioentra_isolated.grant(aioentra_app, aioentra_api, ["Test.Read"])
    return aioentra_app


@pytest.fixture
async def orders_api(
    aioentra_isolated: Emulator, aioentra_api: Api
) -> AsyncIterator[tuple[str, list[str]]]:
    """The downstream API: its URL and the ``azp`` of every caller it served."""
    emu, callers = aioentra_isolated, []

    async def orders(request: web.Request) -> web.Response:
        claims = bearer_claims(emu, request, aioentra_api.app_id)
        roles = claims.get("roles")
        if not isinstance(roles, list) or "Test.Read" not in roles:
            raise web.HTTPForbidden()
        callers.append(str(claims["azp"]))
        return web.json_response(ORDERS)

    routes: dict[str, Handler] = {"/orders": orders}
    async with https_api(emu, routes) as origin:
        yield f"{origin}/orders", callers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(app_env: dict[str, str], api: Api, url: str) -> dict[str, str]:
    return app_env | {"DOWNSTREAM_URL": url, "DOWNSTREAM_SCOPE": f"{api.identifier_uri}/.default"}


async def test_run_app_serves_orders_with_one_token_and_closes_on_sigterm(
    aioentra_isolated: Emulator,
    orders_app: App,
    aioentra_api: Api,
    orders_api: tuple[str, list[str]],
    app_env: dict[str, str],
) -> None:
    url, callers = orders_api
    port = free_port()
    env = service_env(app_env, aioentra_api, url)
    env |= {"HOST": "127.0.0.1", "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(SERVICE),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        # web.run_app prints its address once the startup (and its first token) succeeded.
        banner = await asyncio.wait_for(process.stdout.readline(), 30)
        assert f"Running on http://127.0.0.1:{port}" in banner.decode()
        async with aiohttp.ClientSession() as client:
            for _ in range(3):
                async with client.get(f"http://127.0.0.1:{port}/orders") as response:
                    assert response.status == 200
                    assert await response.json() == ORDERS
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    run = Run(process.returncode, banner.decode() + out.decode(), err.decode())

    assert run.returncode == 0, run.stderr
    assert callers == [orders_app.client_id] * 3
    # The startup's token served all three calls.
    assert aioentra_isolated.requests.count("token", client_id=orders_app.client_id) == 1
    logged = run.stderr.splitlines()
    calling = f"INFO orders-service: calling {url.removesuffix('/orders')} as app "
    assert any(line.startswith(calling) for line in logged), logged
    # The one token request, in aioentra's own INFO line.
    acquired = [line for line in logged if line.startswith("INFO aioentra.provider: token for")]
    assert len(acquired) == 1 and "no cached token; from the network" in acquired[0]
    closing = [line for line in logged if "orders-service: closed" in line]
    assert closing == [
        "INFO orders-service: closed the downstream session",
        "INFO orders-service: closed the token provider",
    ]
    assert orders_app.secret is not None
    run.assert_nothing_leaked(orders_app.secret)


async def test_wrong_secret_stops_the_startup_with_the_hint(
    aioentra_isolated: Emulator,
    orders_app: App,
    aioentra_api: Api,
    orders_api: tuple[str, list[str]],
    app_env: dict[str, str],
) -> None:
    url, callers = orders_api
    wrong = "not-the-secret-" + "y" * 20
    env = service_env(app_env, aioentra_api, url) | {"AZURE_CLIENT_SECRET": wrong}
    env |= {"HOST": "127.0.0.1", "PORT": str(free_port())}
    run = await run_example(SERVICE, env=env)

    assert run.returncode == 1
    assert "Running on" not in run.stdout  # it never listened
    assert "AADSTS7000215" in run.error
    assert run.hint == "the client secret is wrong: use the secret's Value, not its Secret ID."
    assert callers == []
    run.assert_nothing_leaked(wrong)


def load_service(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import examples/web_service/service.py as a module, as a test suite of the service would."""
    spec = importlib.util.spec_from_file_location("orders_service", SERVICE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


async def test_create_app_in_process_opens_and_closes_provider_and_session(
    aioentra_isolated: Emulator,
    orders_app: App,
    aioentra_api: Api,
    app_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The downstream API is down: nothing listens on this port.
    env = service_env(app_env, aioentra_api, f"https://127.0.0.1:{free_port()}/orders")
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.setenv(name, env[name])
    for name in ("AZURE_AUTHORITY_HOST", "DOWNSTREAM_URL", "DOWNSTREAM_SCOPE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, env[name])  # the provider reads SSL_CERT_FILE when it starts
    service = load_service(monkeypatch)

    app = service.create_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs the cleanup_ctx up to its yield
    try:
        provider, session = app[service.PROVIDER], app[service.SESSION]
        assert isinstance(provider, TokenProvider) and provider.client_id == orders_app.client_id
        assert not session.closed
        assert aioentra_isolated.requests.count("token", client_id=orders_app.client_id) == 1
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{port}/orders") as response,
        ):
            assert response.status == 502
            assert await response.json() == {"error": "the orders API is unreachable"}
    finally:
        await runner.cleanup()  # runs the rest of the cleanup_ctx

    assert session.closed
    with pytest.raises(ProviderClosedError):
        await provider.get_token(f"{aioentra_api.identifier_uri}/.default")


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
async def test_a_bad_port_is_a_clean_error(
    aioentra_api: Api, orders_app: App, app_env: dict[str, str], port: str
) -> None:
    env = service_env(app_env, aioentra_api, "https://127.0.0.1:1/orders") | {"PORT": port}
    run = await run_example(SERVICE, env=env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.error == f"PORT {port!r} is not a port number"
    assert run.hint == "set PORT to 1-65535 (default 8080)."


async def test_a_port_in_use_is_a_clean_error(
    aioentra_api: Api, orders_app: App, app_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(app_env, aioentra_api, "https://127.0.0.1:1/orders")
        env |= {"HOST": "127.0.0.1", "PORT": str(port)}
        run = await run_example(SERVICE, env=env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.error.startswith(f"cannot listen on port {port}: ")
