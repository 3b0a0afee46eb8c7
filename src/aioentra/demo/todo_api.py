"""The ToDo API: aiohttp.web, protected by Entra ID app roles.

Routes (under ``/api/todolist``), as in the tutorial's ToDoListAPI:

==========================  ===============================  ================================
route                       does                             app roles (any one)
==========================  ===============================  ================================
``GET /api/todolist``       every to-do                      ``AppPermissions.Read``
``GET /api/todolist/{id}``  one to-do                        ``AppPermissions.Read``
``POST /api/todolist``      adds ``{"description": ...}``    ``AppPermissions.Write``
``PUT /api/todolist/{id}``  replaces its description         ``AppPermissions.Write``
``DELETE /api/todolist/{id}`` removes it                     ``AppPermissions.Write``
==========================  ===============================  ================================

A to-do's ``owner`` is the caller's object id (``oid``): for an app token, its service
principal's. Configuration is the tutorial's ``appsettings.json`` ``AzureAd`` section:
``Instance``, ``TenantId``, ``ClientId`` (the API's own client id, its token audience, which
also accepts ``api://{ClientId}``) and ``AppPermissions`` (``Read`` and ``Write`` role lists).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._errors import ConfigurationError
from ..aiohttp.web import TokenValidation, request_claims, require_roles, token_validation

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._validator import ValidatorOptions

__all__ = ["ApiSettings", "create_app"]

READ_ROLES = ("ToDoList.Read.All", "ToDoList.ReadWrite.All")
WRITE_ROLES = ("ToDoList.ReadWrite.All",)


@dataclass(frozen=True)
class ApiSettings:
    """The API's ``AzureAd`` settings."""

    instance: str
    tenant_id: str
    client_id: str
    read_roles: tuple[str, ...] = READ_ROLES
    write_roles: tuple[str, ...] = WRITE_ROLES

    @classmethod
    def from_file(cls, path: str | Path) -> ApiSettings:
        """Read the ``AzureAd`` section of an ASP.NET-style ``appsettings.json``."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {str(path)!r}: {exc}") from None
        section = document.get("AzureAd") if isinstance(document, dict) else None
        if not isinstance(section, dict):
            raise ConfigurationError(f"{str(path)!r} has no 'AzureAd' section")
        missing = [k for k in ("Instance", "TenantId", "ClientId") if not section.get(k)]
        if missing:
            raise ConfigurationError(
                f"{str(path)!r}: 'AzureAd' lacks {', '.join(missing)}",
                hint="set the API registration's Instance, TenantId and ClientId.",
            )
        wrong = [k for k in ("Instance", "TenantId", "ClientId") if not isinstance(section[k], str)]
        if wrong:
            raise ConfigurationError(
                f"{str(path)!r}: 'AzureAd' {', '.join(wrong)} must be strings",
                hint="set the API registration's Instance URL, TenantId and ClientId as strings.",
            )
        permissions = section.get("AppPermissions") or {}
        if not isinstance(permissions, dict):
            raise ConfigurationError(f"{str(path)!r}: 'AzureAd.AppPermissions' must be an object")
        return cls(
            instance=str(section["Instance"]),
            tenant_id=str(section["TenantId"]),
            client_id=str(section["ClientId"]),
            read_roles=_roles(permissions, "Read", READ_ROLES, path),
            write_roles=_roles(permissions, "Write", WRITE_ROLES, path),
        )

    def validation(self, **options: Unpack[ValidatorOptions]) -> TokenValidation:
        """The token-validation middleware for these settings (``options``: ``ca_file``...)."""
        return token_validation(
            authority=self.instance, tenant_id=self.tenant_id, audience=self.client_id, **options
        )


def _roles(
    permissions: dict[str, Any], name: str, default: tuple[str, ...], path: str | Path
) -> tuple[str, ...]:
    roles = permissions.get(name)
    if roles is None:
        return default
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise ConfigurationError(
            f"{str(path)!r}: 'AzureAd.AppPermissions.{name}' must be a list of role names",
            hint='e.g. "Read": ["ToDoList.Read.All", "ToDoList.ReadWrite.All"].',
        )
    return tuple(roles)


class ToDoStore:
    """The to-dos, in memory (the tutorial's API keeps them in an in-memory database)."""

    def __init__(self) -> None:
        self.items: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def add(self, owner: str, description: str) -> dict[str, Any]:
        number = next(self._ids)
        item: dict[str, Any] = {"id": number, "owner": owner, "description": description}
        self.items[number] = item
        return item


STORE = web.AppKey("store", ToDoStore)


def create_app(settings: ApiSettings, **validation_options: Any) -> web.Application:
    """The ToDo API: ``validation_options`` go to the token validation (``ca_file=``...)."""
    read = require_roles(*settings.read_roles)
    write = require_roles(*settings.write_roles)

    @read
    async def list_todos(request: web.Request) -> web.Response:
        return web.json_response(list(request.app[STORE].items.values()))

    @read
    async def get_todo(request: web.Request) -> web.Response:
        return web.json_response(_find(request))

    @write
    async def post_todo(request: web.Request) -> web.Response:
        description = await _description(request)
        owner = request_claims(request).object_id or ""
        item = request.app[STORE].add(owner, description)
        return web.json_response(item, status=201)

    @write
    async def put_todo(request: web.Request) -> web.Response:
        item = _find(request)
        item["description"] = await _description(request)
        return web.json_response(item)

    @write
    async def delete_todo(request: web.Request) -> web.Response:
        item = _find(request)
        del request.app[STORE].items[item["id"]]
        return web.Response(status=204)

    app = web.Application()
    app[STORE] = ToDoStore()
    settings.validation(**validation_options).install(app)
    app.router.add_get("/api/todolist", list_todos)
    app.router.add_get("/api/todolist/{id}", get_todo)
    app.router.add_post("/api/todolist", post_todo)
    app.router.add_put("/api/todolist/{id}", put_todo)
    app.router.add_delete("/api/todolist/{id}", delete_todo)
    return app


def _find(request: web.Request) -> dict[str, Any]:
    try:
        return request.app[STORE].items[int(request.match_info["id"])]
    except (KeyError, ValueError):
        raise web.HTTPNotFound(
            text=json.dumps({"error": "not_found"}), content_type="application/json"
        ) from None


async def _description(request: web.Request) -> str:
    try:
        body = await request.json()
    except ValueError:
        body = None
    description = body.get("description") if isinstance(body, dict) else None
    if not isinstance(description, str) or not description.strip():
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "a JSON body with a 'description' is required"}),
            content_type="application/json",
        )
    return description
