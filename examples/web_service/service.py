"""An aiohttp.web service that calls a protected downstream API under its own identity.

One :class:`~aioentra.TokenProvider` and one authenticated ``aiohttp.ClientSession`` serve the
whole process. A ``cleanup_ctx`` generator creates both when the app starts, stores them under
``web.AppKey`` keys and closes them when it stops; handlers take them from ``request.app``.

Configuration is the environment:

- ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET`` (or
  ``AZURE_CLIENT_CERTIFICATE_PATH``, or ``AZURE_FEDERATED_TOKEN_FILE`` on AKS): the service's
  app registration, read by ``TokenProvider.from_environment()`` (azure-identity's names);
- ``DOWNSTREAM_URL``: the API's URL, e.g. ``https://orders.contoso.com/orders``;
- ``DOWNSTREAM_SCOPE``: its scope, e.g. ``api://<orders api app id>/.default``;
- ``HOST`` and ``PORT`` (default: every interface, port 8080; a bad PORT stops it with exit
  status 1, as a configuration error does).

::

    python service.py
    curl http://localhost:8080/orders

Startup gets the first token, so a wrong secret stops the service at once (exit status 1,
with the error and its hint) instead of failing its first request.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from aioentra import AioEntraError, ConfigurationError, TokenProvider
from aioentra.aiohttp import authenticated_session

log = logging.getLogger("orders-service")


@dataclass(frozen=True)
class Downstream:
    """Where the downstream API is and which scope its tokens need."""

    url: str
    scope: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_environment(cls) -> Downstream:
        url, scope = os.environ.get("DOWNSTREAM_URL"), os.environ.get("DOWNSTREAM_SCOPE")
        if not url or not scope:
            raise ConfigurationError(
                "DOWNSTREAM_URL or DOWNSTREAM_SCOPE is not set",
                hint="set DOWNSTREAM_URL to the API's URL and DOWNSTREAM_SCOPE to its "
                "'{resource}/.default' scope.",
            )
        return cls(url=url, scope=scope)


# Typed keys: request.app[SESSION] is an aiohttp.ClientSession for the type checker too.
DOWNSTREAM = web.AppKey("downstream", Downstream)
PROVIDER = web.AppKey("provider", TokenProvider)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def entra_context(app: web.Application) -> AsyncIterator[None]:
    """Startup: the provider and the session. Shutdown: close them, the session first."""
    downstream = Downstream.from_environment()
    async with TokenProvider.from_environment() as provider:
        # Fail fast: a wrong secret or a missing role stops the startup here.
        await provider.get_token(downstream.scope)
        timeout = aiohttp.ClientTimeout(total=10)
        async with authenticated_session(
            provider, {downstream.origin: downstream.scope}, timeout=timeout
        ) as session:
            app[DOWNSTREAM], app[PROVIDER], app[SESSION] = downstream, provider, session
            log.info("calling %s as app %s", downstream.origin, provider.client_id)
            yield
        log.info("closed the downstream session")
    log.info("closed the token provider")


async def list_orders(request: web.Request) -> web.Response:
    """``GET /orders``: the downstream API's orders, as it returned them."""
    downstream, session = request.app[DOWNSTREAM], request.app[SESSION]
    try:
        async with session.get(downstream.url) as response:
            if response.status != 200:
                log.warning("downstream answered %s", response.status)
                return web.json_response(
                    {"error": f"the orders API answered {response.status}"}, status=502
                )
            orders = await response.json()
    except AioEntraError as error:  # no token: the identity provider failed or refused
        log.warning("no token for the orders API: %s", error)  # message, hint, correlation id
        return web.json_response({"error": "no token for the orders API"}, status=503)
    except aiohttp.ClientError as error:
        log.warning("the orders API is unreachable: %s", error)
        return web.json_response({"error": "the orders API is unreachable"}, status=502)
    return web.json_response(orders)


def create_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(entra_context)
    app.router.add_get("/orders", list_orders)
    return app


def port_from_environment() -> int:
    """``PORT`` (default 8080), a ConfigurationError when it is not a port number."""
    text = os.environ.get("PORT", "8080")
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigurationError(
            f"PORT {text!r} is not a port number", hint="set PORT to 1-65535 (default 8080)."
        )
    return port


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        port = port_from_environment()
        # Serves until SIGINT or SIGTERM, then runs the cleanup contexts.
        web.run_app(create_app(), host=os.environ.get("HOST"), port=port)
    except AioEntraError as error:  # raised by the startup: configuration, credential, ...
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 1
    except OSError as error:  # the port is taken, HOST does not resolve
        print(f"error: cannot listen on port {port}: {error.strerror or error}", file=sys.stderr)
        print("hint: choose another PORT, or stop what is using it.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
