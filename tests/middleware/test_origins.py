"""The origin -> scope map: normalisation and the configuration it refuses."""

from __future__ import annotations

import pytest
from yarl import URL

from aioentra import ConfigurationError
from aioentra._origins import OriginScopes

GRAPH = "https://graph.microsoft.com/.default"
TODO = "api://todo/.default"


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
        ("ws://graph.microsoft.com/", None),
    ],
)
def test_scope_for(scopes: OriginScopes, url: str, scope: str | None) -> None:
    assert scopes.scope_for(URL(url)) == scope


def test_keys_are_normalised() -> None:
    scopes = OriginScopes(
        {"HTTPS://Graph.Microsoft.com:443/": GRAPH, "https://bücher.example": TODO}
    )
    assert dict(scopes.as_mapping()) == {
        "https://graph.microsoft.com": GRAPH,
        "https://xn--bcher-kva.example": TODO,
    }
    assert scopes.scope_for(URL("https://xn--bcher-kva.example/x")) == TODO
    assert scopes.scope_for(URL("https://bücher.example/x")) == TODO


def test_same_origin_twice_with_the_same_scope_is_fine() -> None:
    scopes = OriginScopes({"https://a.example": TODO, "https://a.example:443/": TODO})
    assert len(scopes.as_mapping()) == 1


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "empty"),
        ({"graph.microsoft.com": GRAPH}, "not an http"),
        ({"ftp://graph.microsoft.com": GRAPH}, "not an http"),
        ({"https://graph.microsoft.com/v1.0": GRAPH}, "not a bare origin"),
        ({"https://graph.microsoft.com/?x=1": GRAPH}, "not a bare origin"),
        ({"https://u@graph.microsoft.com": GRAPH}, "not a bare origin"),
        ({"https://graph.microsoft.com": " "}, "empty"),
        ({"https://a.example": TODO, "https://A.example:443": GRAPH}, "two different scopes"),
        ({"http://todo.contoso.com": TODO}, "plain http"),
        ({"http://127.0.0.1:8080": TODO}, "plain http"),
    ],
)
def test_refused_configuration(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        OriginScopes(mapping)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "[::1]"])
def test_allow_http_true_allows_loopback(host: str) -> None:
    scopes = OriginScopes({f"http://{host}:8080": TODO}, allow_http=True)
    assert scopes.scope_for(URL(f"http://{host}:8080/x")) == TODO
    assert scopes.scope_for(URL(f"https://{host}:8080/x")) is None


def test_allow_http_never_allows_a_network_host() -> None:
    with pytest.raises(ConfigurationError, match="plain http") as info:
        OriginScopes({"http://todo.contoso.com": TODO}, allow_http=True)
    assert "only loopback" in str(info.value)


def test_allow_http_list_names_exact_origins() -> None:
    mapping = {"http://127.0.0.1:8080": TODO, "http://localhost:9090": GRAPH}
    scopes = OriginScopes(mapping, allow_http=["http://127.0.0.1:8080", "http://localhost:9090/"])
    assert scopes.scope_for(URL("http://localhost:9090/")) == GRAPH
    with pytest.raises(ConfigurationError, match="localhost:9090"):
        OriginScopes(mapping, allow_http="http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        (["http://todo.contoso.com"], "not a loopback host"),
        (["https://127.0.0.1:8080"], "not an http origin"),
        (["http://127.0.0.1:9999"], "not in the scope map"),
        (["http://127.0.0.1:8080/path"], "not a bare origin"),
    ],
)
def test_allow_http_list_is_checked(allowed: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        OriginScopes({"http://127.0.0.1:8080": TODO}, allow_http=allowed)


def test_repr_shows_origins_and_scopes_only(scopes: OriginScopes) -> None:
    assert repr(scopes) == (
        "OriginScopes({'https://graph.microsoft.com': 'https://graph.microsoft.com/.default', "
        "'https://todo.contoso.com:8443': 'api://todo/.default'})"
    )
