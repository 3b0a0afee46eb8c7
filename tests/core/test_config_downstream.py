"""``DownstreamApis`` from appsettings.json: an origin -> scope map the bearer middleware takes,
each entry one ``/.default`` scope; and the scope map refusing a bad scope when it is built."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aioentra import ConfigurationError, InvalidScopeError, Settings, TokenProvider
from aioentra._origins import OriginScopes
from aioentra.aiohttp import BearerTokenMiddleware, authenticated_session
from aioentra.emulator import Api, App, Emulator, InvalidTokenError

from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

TENANT = "0f4c3a3e-3b7e-4a43-9a6e-6f1a2b3c4d5e"
CLIENT = "11111111-2222-3333-4444-555555555555"
AZURE_AD = {"TenantId": TENANT, "ClientId": CLIENT, "ClientSecret": "s3"}


def appsettings(tmp_path: Path, apis: Any, azure_ad: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "appsettings.json"
    path.write_text(json.dumps({"AzureAd": azure_ad or AZURE_AD, "DownstreamApis": apis}))
    return path


# -- reading the section ------------------------------------------------------------------------


def test_entries_in_identity_webs_shapes(tmp_path: Path) -> None:
    graph = "https://graph.microsoft.com"
    path = appsettings(
        tmp_path,
        {
            "TodoList": {
                "BaseUrl": "https://Todo.Contoso.com:443/api/",
                "RelativePath": "/todolist",
                "Scopes": ["api://todo/.default"],
                "RequestAppToken": True,
                "HttpMethod": "GET",  # request shaping: not aioentra's, ignored
                "AcquireTokenOptions": {"Tenant": TENANT},
            },
            # the older DownstreamWebApi form: one space-separated string
            "Graph": {"BaseUrl": f"{graph}/v1.0", "Scopes": f" {graph}/.default "},
            # a second API on Graph's origin with the same scope: one map entry
            "GraphBeta": {
                "BaseUrl": f"{graph}/beta",
                "Scopes": [f"{graph}/.default"],
                "ProtocolScheme": "Bearer",
            },
        },
    )
    settings = Settings.from_file(path)
    assert dict(settings.downstream_apis) == {
        "https://todo.contoso.com": "api://todo/.default",
        "https://graph.microsoft.com": "https://graph.microsoft.com/.default",
    }
    todo = settings.api("TodoList")
    assert todo.url == "https://Todo.Contoso.com:443/api/todolist"
    assert todo.origin == "https://todo.contoso.com"
    assert settings.api("Graph").url == "https://graph.microsoft.com/v1.0"
    assert [api.name for api in settings.apis] == ["TodoList", "Graph", "GraphBeta"]
    with pytest.raises(ConfigurationError, match="no DownstreamApis entry is named 'Todo'") as info:
        settings.api("Todo")
    assert "'TodoList', 'Graph', 'GraphBeta'" in (info.value.hint or "")
    # the map is the middleware's input as it is
    assert dict(OriginScopes(settings.downstream_apis).as_mapping()) == dict(
        settings.downstream_apis
    )


def test_no_section_is_an_empty_map(tmp_path: Path) -> None:
    path = tmp_path / "appsettings.json"
    path.write_text(json.dumps({"AzureAd": AZURE_AD}))
    assert dict(Settings.from_file(path).downstream_apis) == {}


def test_a_loopback_http_api_is_read_for_allow_http(tmp_path: Path) -> None:
    path = appsettings(
        tmp_path, {"Local": {"BaseUrl": "http://127.0.0.1:8080", "Scopes": ["api://x/.default"]}}
    )
    scopes = Settings.from_file(path).downstream_apis
    assert dict(scopes) == {"http://127.0.0.1:8080": "api://x/.default"}
    with pytest.raises(ConfigurationError, match="plain http"):
        OriginScopes(scopes)
    assert OriginScopes(scopes, allow_http=True).as_mapping() == scopes


def entry(**keys: Any) -> dict[str, Any]:
    """A DownstreamApis entry: a good one, but for ``keys`` (``None`` removes a key)."""
    good: dict[str, Any] = {"BaseUrl": "https://x.example", "Scopes": ["api://x/.default"]}
    return {k: v for k, v in (good | keys).items() if v is not None}


@pytest.mark.parametrize(
    ("value", "key", "says", "hint"),
    [
        # the example: the resource without /.default, and the scope to use instead
        (
            entry(Scopes=["api://orders"]),
            "Scopes",
            "not end in '/.default'",
            "'api://orders/.default'",
        ),
        (
            entry(Scopes=["User.Read", "Mail.Read"]),
            "Scopes",
            "one scope, got 2",
            "delegated scopes",
        ),
        (entry(Scopes="api://a/.default api://b/.default"), "Scopes", "names several", "per API"),
        (entry(Scopes=[]), "Scopes", "exactly one scope, got 0", ""),
        (entry(Scopes=None), "Scopes", "is missing", "/.default"),
        (entry(Scopes={"a": 1}), "Scopes", "must be a list of one scope", ""),
        (entry(BaseUrl=None), "BaseUrl", "is missing", "https URL"),
        (entry(BaseUrl="todo.contoso.com"), "BaseUrl", "is not an http(s) URL", ""),
        (entry(BaseUrl="http://todo.contoso.com"), "BaseUrl", "plain-http", "use https"),
        (entry(BaseUrl="https://u:p@todo.contoso.com"), "BaseUrl", "user info", ""),
        (entry(RelativePath=3), "RelativePath", "must be a string", ""),
        (entry(RequestAppToken="yes"), "RequestAppToken", "true or false", ""),
        (entry(ProtocolScheme="MTLS_POP"), "ProtocolScheme", "must be Bearer", "bearer tokens"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, value: dict[str, Any], key: str, says: str, hint: str
) -> None:
    path = appsettings(tmp_path, {"Orders": value})
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(path)
    assert info.value.message.startswith(f"{path}: DownstreamApis.Orders.{key}")
    assert says in info.value.message
    assert hint in (info.value.hint or "")


def test_two_entries_on_one_origin_with_different_scopes_are_refused(tmp_path: Path) -> None:
    path = appsettings(
        tmp_path,
        {
            "Orders": entry(BaseUrl="https://api.contoso.com/orders", Scopes="api://o/.default"),
            "Billing": entry(BaseUrl="https://API.contoso.com:443/b", Scopes="api://b/.default"),
        },
    )
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(path)
    assert info.value.message == (
        f"{path}: DownstreamApis: entries 'Orders' and 'Billing' are both on "
        "https://api.contoso.com but name different scopes"
    )
    assert "whole origin" in (info.value.hint or "")


def test_the_section_and_its_entries_must_be_objects(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"DownstreamApis must be a JSON object"):
        Settings.from_file(appsettings(tmp_path, ["https://x.example"]))
    with pytest.raises(ConfigurationError, match=r"DownstreamApis\.Orders must be a JSON object"):
        Settings.from_file(appsettings(tmp_path, {"Orders": "https://x.example"}))


def test_parameters_json_endpoint_and_scope_are_one_api(tmp_path: Path) -> None:
    path = tmp_path / "parameters.json"
    document = {
        "authority": f"https://login.microsoftonline.com/{TENANT}",
        "client_id": CLIENT,
        "secret": "s3",
        "scope": ["https://graph.microsoft.com/.default"],
        "endpoint": "https://graph.microsoft.com/v1.0/users",
    }
    path.write_text(json.dumps(document))
    settings = Settings.from_file(path)
    assert dict(settings.downstream_apis) == {
        "https://graph.microsoft.com": "https://graph.microsoft.com/.default"
    }
    assert settings.api("endpoint").url == "https://graph.microsoft.com/v1.0/users"
    path.write_text(json.dumps(document | {"scope": "https://graph.microsoft.com/User.Read"}))
    with pytest.raises(InvalidScopeError) as info:
        Settings.from_file(path)
    assert info.value.message.startswith(f"{path}: scope: ")
    assert "'https://graph.microsoft.com/.default'" in (info.value.hint or "")


# -- the scope map checks its scopes when it is built ---------------------------------------------


def test_the_scope_map_refuses_a_scope_without_default_at_construction() -> None:
    with pytest.raises(InvalidScopeError) as info:
        OriginScopes({"https://x.example": "api://orders"})
    assert isinstance(info.value, ConfigurationError)
    assert "https://x.example" in info.value.message
    assert "'api://orders/.default'" in (info.value.hint or "")
    for bad in ("api://a/.default api://b/.default", "https://management.azure.com/"):
        with pytest.raises(InvalidScopeError):
            OriginScopes({"https://x.example": bad})
    with pytest.raises(InvalidScopeError, match="must be a string"):
        OriginScopes({"https://x.example": ["api://x/.default"]})  # type: ignore[dict-item]
    # a valid scope is kept as the token request will send it
    assert OriginScopes({"https://x.example": " api://x/.default"}).as_mapping() == {
        "https://x.example": "api://x/.default"
    }


async def test_the_session_refuses_the_bad_scope_before_any_request(
    emulator: Emulator, app: App, make_provider: Any
) -> None:
    async with make_provider() as provider:
        with pytest.raises(InvalidScopeError, match=r"/\.default"):
            BearerTokenMiddleware(provider, {"https://x.example": "api://orders"})
        with pytest.raises(InvalidScopeError, match=r"/\.default"):
            authenticated_session(provider, {"https://x.example": "api://orders"})
    assert token_requests(emulator, app) == 0


# -- end to end: appsettings.json -> provider -> session -> two HTTPS APIs ----------------------


class LocalApi:
    """An HTTPS API (the emulator's server certificate) that accepts the emulator's tokens for
    one audience and answers with the caller's roles; ``audiences`` records every token's."""

    def __init__(self, emulator: Emulator, audience: str) -> None:
        self.emulator = emulator
        self.audience = audience
        self.audiences: list[str | None] = []
        self.origin = ""
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def _any(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            self.audiences.append(None)
            return web.json_response({"error": "no token"}, status=401)
        try:
            claims = self.emulator.verify_access_token(header.removeprefix("Bearer "))
        except InvalidTokenError:
            return web.json_response({"error": "invalid_token"}, status=401)
        self.audiences.append(claims.get("aud"))
        if claims.get("aud") != self.audience:
            return web.json_response({"error": "wrong audience"}, status=401)
        return web.json_response({"path": request.path, "roles": claims.get("roles", [])})

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", 0, ssl_context=self.emulator.server_ssl_context()
        )
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.origin = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def orders(emulator: Emulator, api: Api) -> AsyncIterator[LocalApi]:
    server = LocalApi(emulator, api.app_id)  # conftest's API: SCOPE
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def billing(emulator: Emulator, aioentra_api: Api) -> AsyncIterator[LocalApi]:
    server = LocalApi(emulator, aioentra_api.app_id)
    await server.start()
    yield server
    await server.stop()


async def test_downstream_apis_from_appsettings_get_each_their_own_token(
    emulator: Emulator,
    app: App,
    aioentra_api: Api,
    orders: LocalApi,
    billing: LocalApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "AIOENTRA_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    emulator.grant(app, aioentra_api, ["Test.Read"])
    billing_scope = f"{aioentra_api.identifier_uri}/.default"
    shutil.copy(emulator.ca_file, tmp_path / "ca.pem")
    path = appsettings(
        tmp_path,
        {
            "Orders": {
                "BaseUrl": orders.origin + "/api",
                "RelativePath": "orders",
                "Scopes": [SCOPE],
                "RequestAppToken": True,
            },
            "Billing": {"BaseUrl": billing.origin, "Scopes": billing_scope},
        },
        azure_ad={
            "Instance": emulator.base_url,
            "TenantId": emulator.tenant_id,
            "ClientId": app.client_id,
            "ClientSecret": app.secret,
            "CaFile": "ca.pem",  # the identity provider's CA, next to the file
        },
    )
    settings = Settings.from_file(path)
    roles = {"Orders": ["Things.Read"], "Billing": ["Test.Read"]}
    connector = aiohttp.TCPConnector(ssl=emulator.ssl_context())  # the APIs' own TLS trust
    async with (
        TokenProvider.from_file(path) as provider,
        authenticated_session(provider, settings.downstream_apis, connector=connector) as session,
    ):
        for api in (settings.api("Orders"), settings.api("Billing"), settings.api("Orders")):
            async with session.get(api.url) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["roles"] == roles[api.name]
        assert settings.api("Orders").url == f"{orders.origin}/api/orders"
    assert orders.audiences == [orders.audience, orders.audience]
    assert billing.audiences == [billing.audience]
    requested = [r.scope for r in emulator.requests.filter("token", client_id=app.client_id)]
    assert sorted(requested) == sorted([SCOPE, billing_scope])  # one token per API
    assert token_requests(emulator, app) == 2
