"""Origin lookup for httpx URLs: the same table as the middleware's yarl lookup, no yarl."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from yarl import URL

from aioentra import ConfigurationError
from aioentra._origins import OriginScopes, origin_from_parts
from aioentra.httpx import BearerTokenAuth, _origin

GRAPH = "https://graph.microsoft.com/.default"
TODO = "api://todo/.default"
SOURCE: Any = object()  # never called: construction only


@pytest.fixture
def scopes() -> OriginScopes:
    return OriginScopes(
        {"https://graph.microsoft.com": GRAPH, "https://todo.contoso.com:8443": TODO}
    )


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://graph.microsoft.com/v1.0/users?$top=1", GRAPH),
        ("https://GRAPH.Microsoft.COM/v1.0/me", GRAPH),
        ("HTTPS://graph.microsoft.com/", GRAPH),
        ("https://graph.microsoft.com:443/", GRAPH),
        ("https://graph.microsoft.com./v1.0", GRAPH),
        ("https://todo.contoso.com:8443/items", TODO),
        # not the same origin: scheme, port or host differ
        ("http://graph.microsoft.com/v1.0/users", None),
        ("https://graph.microsoft.com:8443/", None),
        ("https://todo.contoso.com/items", None),
        ("https://graph.microsoft.com.evil.example/", None),
        ("https://evil.example/graph.microsoft.com", None),
        ("https://user:pw@evil.example/", None),
        ("https://graph.microsoft.com@evil.example/", None),
        ("ws://graph.microsoft.com/", None),
    ],
)
def test_scope_for_an_httpx_url(scopes: OriginScopes, url: str, scope: str | None) -> None:
    assert scopes.scope_of(_origin(httpx.URL(url))) == scope
    assert scopes.scope_for(URL(url)) == scope  # the middleware's answer, for the same URL


def test_idn_and_ipv6_hosts() -> None:
    scopes = OriginScopes(
        {"https://bücher.example": TODO, "http://[::1]:8080": GRAPH}, allow_http=True
    )
    assert scopes.scope_of(_origin(httpx.URL("https://bücher.example/x"))) == TODO
    assert scopes.scope_of(_origin(httpx.URL("https://xn--bcher-kva.example/x"))) == TODO
    assert scopes.scope_of(_origin(httpx.URL("http://[::1]:8080/x"))) == GRAPH
    assert scopes.scope_of(_origin(httpx.URL("http://[::1]:8081/x"))) is None


@pytest.mark.parametrize(
    ("parts", "origin"),
    [
        (("https", "Graph.Microsoft.com.", None), ("https", "graph.microsoft.com", 443)),
        (("HTTP", "127.0.0.1", None), ("http", "127.0.0.1", 80)),
        (("https", "::1", 8443), ("https", "::1", 8443)),
        (("ws", "graph.microsoft.com", None), None),
        (("https", "", None), None),
    ],
)
def test_origin_from_parts(
    parts: tuple[str, str, int | None], origin: tuple[str, str, int] | None
) -> None:
    assert origin_from_parts(*parts) == origin


def test_scope_of_nothing_is_nothing(scopes: OriginScopes) -> None:
    assert scopes.scope_of(None) is None


def test_http_port_80_needs_its_https_upgrade_mapped_to_the_same_scope() -> None:
    """httpx keeps Authorization on http://host -> https://host: refuse what that would leak."""
    with pytest.raises(ConfigurationError, match="https://localhost on a redirect") as info:
        BearerTokenAuth(SOURCE, {"http://localhost": TODO}, allow_http=True)
    assert info.value.hint is not None
    assert "map 'https://localhost' to the same scope" in info.value.hint
    with pytest.raises(ConfigurationError, match="on a redirect"):
        BearerTokenAuth(
            SOURCE, {"http://127.0.0.1:80": TODO, "https://127.0.0.1": GRAPH}, allow_http=True
        )
    # fine: the upgrade target takes the same token, or the port is not 80
    BearerTokenAuth(SOURCE, {"http://localhost": TODO, "https://localhost": TODO}, allow_http=True)
    BearerTokenAuth(SOURCE, {"http://localhost:8080": TODO}, allow_http=True)
