"""The origin -> scope map: normalisation and the configuration it refuses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from yarl import URL

from aioentra import ConfigurationError
from aioentra._origins import URL_SLOTS, OriginScopes, host_port, origin_of

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


# -- the lookups that build no origin ---------------------------------------------------------

LOOKUP = {
    "https://graph.microsoft.com": GRAPH,
    "https://todo.contoso.com:8443": TODO,
    "https://[::1]:9443": TODO,
    "https://bücher.example": GRAPH,
    "http://localhost:8080": TODO,
}

URLS = [
    "https://graph.microsoft.com/v1.0/users",
    "https://GRAPH.microsoft.com:443/",
    "https://graph.microsoft.com.:443/",
    "https://graph.microsoft.com..",
    "https://user:pw@graph.microsoft.com/",
    "HTTPS://graph.microsoft.com/",
    "https://graph.microsoft.com:0443/",
    "https://graph.microsoft.com:8443/",
    "http://graph.microsoft.com/",
    "https://todo.contoso.com:8443/items",
    "https://todo.contoso.com/items",
    "https://[::1]:9443/",
    "https://[0:0:0::1]:9443/",
    "https://[::1]/",
    "https://BÜCHER.example/",
    "https://xn--bcher-kva.example:443/",
    "http://localhost:8080/",
    "http://LOCALHOST:8080/",
    "https://localhost:8080/",
    "https://graph.microsoft.com.evil.example/",
    "https://evil.example/graph.microsoft.com",
    "https://graph.microsoft.com@evil.example/",
    "ws://graph.microsoft.com/",
    "/relative/path",
]


def test_the_installed_yarl_keeps_scheme_and_netloc_in_slots() -> None:
    assert URL_SLOTS  # else the middleware takes scope_for's lookup: correct, slower
    url = URL("https://Graph.Microsoft.com:443/v1.0?x#y")
    assert (url._scheme, url._netloc) == ("https", "graph.microsoft.com:443")


def test_host_port_writes_what_yarl_writes_for_the_host_header() -> None:
    for origin, text in [
        (("https", "graph.microsoft.com", 443), "graph.microsoft.com"),
        (("https", "graph.microsoft.com", 80), "graph.microsoft.com:80"),
        (("http", "localhost", 80), "localhost"),
        (("https", "::1", 9443), "[::1]:9443"),
    ]:
        assert host_port(origin) == text
        scheme, host, port = origin
        assert URL.build(scheme=scheme, host=host, port=port).host_port_subcomponent == text


def test_netlocs_are_the_https_origins_as_yarl_writes_their_netloc() -> None:
    scopes = OriginScopes(LOOKUP, allow_http=True)
    assert dict(scopes.netlocs) == {
        "graph.microsoft.com": GRAPH,
        "graph.microsoft.com:443": GRAPH,
        "todo.contoso.com:8443": TODO,
        "[::1]:9443": TODO,
        "xn--bcher-kva.example": GRAPH,
        "xn--bcher-kva.example:443": GRAPH,
    }
    assert dict(scopes.hosts["http"]) == {"localhost:8080": TODO}


@pytest.mark.parametrize("text", URLS)
def test_every_lookup_answers_what_the_normalised_origin_answers(text: str) -> None:
    """A hit in ``netlocs`` or ``hosts`` is exact, and ``scope_for`` never differs from the
    normalised origin's scope: the fast lookups only ever save work."""
    scopes = OriginScopes(LOOKUP, allow_http=True)
    url = URL(text)
    expected = scopes.scope_of(origin_of(url)) if url.absolute else None
    assert scopes.scope_for(url) == expected
    fast = scopes.netlocs.get(url._netloc) if url._scheme == "https" else None
    assert fast in (None, expected)
    by_host = scopes.hosts.get(url.scheme, {}).get(url.host_port_subcomponent or "")
    assert by_host in (None, expected)


@dataclass(frozen=True)
class FakeURL:
    """The four properties ``scope_for`` reads, set at will (what yarl could hand over)."""

    scheme: str
    raw_host: str | None
    port: int | None
    host_port_subcomponent: str | None


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        (FakeURL("https", "graph.microsoft.com", 443, "graph.microsoft.com"), GRAPH),
        # a host yarl left as given (URL.build(..., encoded=True)): normalised, still found
        (FakeURL("https", "Graph.Microsoft.COM", 443, "Graph.Microsoft.COM"), GRAPH),
        (FakeURL("https", "graph.microsoft.com.", 443, "graph.microsoft.com"), GRAPH),
        (FakeURL("https", "::1", 9443, "[::1]:9443"), TODO),
        (FakeURL("http", "localhost", 8080, "localhost:8080"), TODO),
        # the host and port of a mapped origin under another scheme
        (FakeURL("http", "graph.microsoft.com", 80, "graph.microsoft.com"), None),
        (FakeURL("https", "localhost", 8080, "localhost:8080"), None),
        (FakeURL("ftp", "graph.microsoft.com", None, "graph.microsoft.com"), None),
        (FakeURL("", None, None, None), None),  # a relative URL
        (FakeURL("https", "", 443, ""), None),
    ],
)
def test_scope_for_fake_urls(url: FakeURL, scope: str | None) -> None:
    scopes = OriginScopes(LOOKUP, allow_http=True)
    assert scopes.scope_for(url) == scope  # type: ignore[arg-type]  # a URL's look-alike


def test_a_url_built_from_an_unnormalised_host_is_found() -> None:
    scopes = OriginScopes(LOOKUP, allow_http=True)
    url = URL.build(scheme="https", host="Graph.Microsoft.com", encoded=True)
    assert url.host_port_subcomponent == "Graph.Microsoft.com"  # no hit in hosts
    assert scopes.scope_for(url) == GRAPH
