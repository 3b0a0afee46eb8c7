"""A daemon that lists a tenant's users with Microsoft Graph, under its own identity.

It reads msal's ``parameters.json``, the file msal's confidential-client sample uses::

    {
        "authority": "https://login.microsoftonline.com/Enter_the_Tenant_Name_Here",
        "client_id": "Enter_the_Application_Id_Here",
        "scope": ["https://graph.microsoft.com/.default"],
        "secret": "Enter_the_Client_Secret_Here",
        "endpoint": "https://graph.microsoft.com/v1.0/users"
    }

Run it with the path of that file (default: ``parameters.json`` beside this script)::

    python daemon.py [parameters.json]

The app registration needs the Microsoft Graph *application* permission ``User.Read.All``,
with admin consent. The output is one ``displayName`` a line, then a count; no token or secret
is ever printed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from aioentra import AioEntraError, ConfigurationError, Settings
from aioentra.aiohttp import authenticated_session

DEFAULT_PARAMETERS = Path(__file__).resolve().with_name("parameters.json")
MAX_PAGES = 100  # Graph pages its answers (@odata.nextLink); never follow them forever


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the key of the middleware's origin -> scope map."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def list_users(*, parameters: Path) -> list[str]:
    """The display names of every user the endpoint lists, following Graph's paging."""
    # Settings.from_file reads the file once: the credential, and also its scope and endpoint.
    # settings.provider() is exactly what TokenProvider.from_file(parameters) returns.
    settings = Settings.from_file(parameters)
    if settings.scope is None or settings.endpoint is None:
        raise ConfigurationError(
            f"{str(parameters)!r} has no 'scope' or no 'endpoint'",
            hint='set "scope": ["https://graph.microsoft.com/.default"] and '
            '"endpoint": "https://graph.microsoft.com/v1.0/users".',
        )
    # Tokens go to the endpoint's origin only: a nextLink elsewhere would get none.
    scopes = {origin(settings.endpoint): settings.scope}
    names: list[str] = []
    async with (
        settings.provider() as provider,
        authenticated_session(provider, scopes, raise_for_status=True) as session,
    ):
        url: str | None = settings.endpoint
        for _ in range(MAX_PAGES):
            if url is None:
                break
            async with session.get(url) as response:
                page: dict[str, Any] = await response.json()
            names.extend(str(user.get("displayName")) for user in page.get("value", []))
            url = page.get("@odata.nextLink")
    return names


def fail(message: str, hint: str | None = None) -> int:
    """Report a failure on stderr (aioentra's messages and hints never hold a secret)."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return 1


async def main() -> int:
    # aioentra logs retries and failures (never a secret): show warnings on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parameters = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PARAMETERS
    try:
        names = await list_users(parameters=parameters)
    except AioEntraError as error:  # configuration, credential, consent, outage ...
        return fail(error.message, error.hint)
    except aiohttp.ClientResponseError as error:  # Graph itself refused or failed
        hint = None
        if error.status == 403:
            hint = "grant the app the User.Read.All application permission, with admin consent."
        return fail(f"Graph answered {error.status} {error.message}", hint)
    except aiohttp.ClientError as error:
        return fail(f"Graph could not be reached: {error}")
    for name in names:
        print(name)
    print(f"{len(names)} users")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
