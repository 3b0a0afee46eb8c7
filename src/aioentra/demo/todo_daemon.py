"""The ToDo daemon: an app token from ``appsettings.json``, then the tutorial's calls.

Configuration is the tutorial's ``ToDoListClient`` ``appsettings.json``: the ``AzureAd``
section builds the :class:`~aioentra.TokenProvider` (``Instance``, ``TenantId``,
``ClientId`` and a ``ClientCredentials`` entry: a secret, a certificate file, or a
certificate in Key Vault read with the machine's managed identity), and ``DownstreamApi``
names the API (``BaseUrl``, ``RelativePath``, ``Scopes``: one ``{App ID URI}/.default``).

The daemon posts, lists, deletes and edits to-dos, printing what the tutorial prints. An API
that refuses it raises the typed error the API's answer describes: a 403 without the role is
:class:`~aioentra.InsufficientPermissionsError`, with the API's hint (grant admin consent).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from .._errors import (
    AioEntraError,
    ConfigurationError,
    InsufficientPermissionsError,
    InvalidTokenError,
)
from .._netfail import connection_error
from .._provider import TokenProvider
from .._tls import load_verify_context
from ..aiohttp import authenticated_session

__all__ = ["ClientSettings", "ToDoApiError", "run"]


class ToDoApiError(AioEntraError):
    """The ToDo API answered an unexpected status."""


@dataclass(frozen=True)
class ClientSettings:
    """The daemon's ``DownstreamApi`` settings (``AzureAd`` goes to the provider as is)."""

    path: Path
    url: str
    """``BaseUrl`` + ``RelativePath``: the to-do list's URL."""
    scope: str

    @classmethod
    def from_file(cls, path: str | Path) -> ClientSettings:
        file = Path(path)
        try:
            document = json.loads(file.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {str(file)!r}: {exc}") from None
        section = document.get("DownstreamApi") if isinstance(document, dict) else None
        if not isinstance(section, dict) or not section.get("BaseUrl"):
            raise ConfigurationError(
                f"{str(file)!r} has no 'DownstreamApi' section with a BaseUrl",
                hint="name the ToDo API: BaseUrl, RelativePath and Scopes.",
            )
        base = section["BaseUrl"]
        parts = urlsplit(base) if isinstance(base, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigurationError(
                f"{str(file)!r}: 'DownstreamApi.BaseUrl' must be the API's https URL",
                hint='e.g. "BaseUrl": "https://localhost:44351/".',
            )
        relative = section.get("RelativePath", "")
        if not isinstance(relative, str):
            raise ConfigurationError(
                f"{str(file)!r}: 'DownstreamApi.RelativePath' must be a string",
                hint='e.g. "RelativePath": "api/todolist".',
            )
        scopes = section.get("Scopes")
        if not isinstance(scopes, list) or len(scopes) != 1 or not isinstance(scopes[0], str):
            raise ConfigurationError(
                f"{str(file)!r}: 'DownstreamApi.Scopes' must hold one scope",
                hint="use the API's App ID URI + '/.default', e.g. "
                "'api://<api client id>/.default'.",
            )
        url = urljoin(base if base.endswith("/") else base + "/", relative)
        return cls(path=file, url=url.rstrip("/"), scope=scopes[0])


async def run(
    settings: str | Path,
    *,
    out: Callable[[str], None] = print,
    ca_file: str | None = None,
    trust_env: bool = True,
) -> int:
    """Run the tutorial's sequence against the ToDo API; returns how many API calls it made.

    ``ca_file`` trusts a local CA (the emulator's) for every connection: the identity
    provider, Key Vault and the API. Leave it out for a real tenant. ``trust_env`` is the
    provider's: ``False`` ignores the proxy variables (``HTTPS_PROXY``...), as a run against
    a local emulator must.

    Raises :class:`ToDoApiError` when the API cannot be reached (with the hint "is the ToDo
    API running at ...?") or answers what the daemon cannot use, and the typed error the
    API's refusal describes (:func:`_refusal`).
    """
    downstream = ClientSettings.from_file(settings)
    parts = urlsplit(downstream.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    context: ssl.SSLContext | bool = True
    if ca_file is not None:
        context = await load_verify_context(ca_file, "aioentra-demo")
    calls = 0
    async with (
        TokenProvider.from_file(downstream.path, ca_file=ca_file, trust_env=trust_env) as provider,
        authenticated_session(
            provider,
            {origin: downstream.scope},
            connector=aiohttp.TCPConnector(ssl=context),
        ) as session,
    ):

        async def call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
            nonlocal calls
            calls += 1
            try:
                async with session.request(method, url, json=body) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = connection_error(f"{method} {url}", exc)
                raise ToDoApiError(
                    failure.message,
                    hint=f"is the ToDo API running at {origin}? {failure.hint}",
                ) from None
            if status >= 300:
                raise _refusal(method, url, status, text)
            try:
                return json.loads(text) if text else None
            except ValueError:
                raise ToDoApiError(
                    f"{method} {url}: the API's answer ({status}) is not JSON",
                    hint=f"check that BaseUrl names the ToDo API ({origin}).",
                    status=status,
                ) from None

        async def show() -> None:
            out("Retrieving to-do's from server...")
            todos = await call("GET", downstream.url)
            if not todos:
                out("There are no to-do's in server")
                return
            out("To-do data:")
            for todo in todos:
                out(f"ID: {todo['id']}")
                out(f"User ID: {todo['owner']}")
                out(f"Message: {todo['description']}")

        out("Posting a to-do...")
        first = await call("POST", downstream.url, {"description": "Bake bread"})
        await show()
        out("Posting a second to-do...")
        second = await call("POST", downstream.url, {"description": "Butter bread"})
        await show()
        out("Deleting a to-do...")
        await call("DELETE", f"{downstream.url}/{first['id']}")
        await show()
        out("Editing a to-do...")
        await call("PUT", f"{downstream.url}/{second['id']}", {"description": "Eat bread"})
        await show()
        out("Deleting remaining to-do...")
        await call("DELETE", f"{downstream.url}/{second['id']}")
        await show()
    return calls


def _refusal(method: str, url: str, status: int, text: str) -> AioEntraError:
    """The typed error for the API's answer (its RFC 6750 error, description and hint)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    description = str(body.get("error_description") or f"HTTP {status}")
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    message = f"{method} {url}: the API refused the request ({status}): {description}"
    if status == 403:
        return InsufficientPermissionsError(message, hint=hint)
    if status == 401:
        return InvalidTokenError(
            message, hint=hint or "the API did not accept the token: check its audience."
        )
    return ToDoApiError(message, status=status)
