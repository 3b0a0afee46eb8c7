"""Authority and scope rules, checked before any network call."""

from __future__ import annotations

import pickle
import ssl

import pytest

from aioentra import ClientSecret, ConfigurationError, InvalidScopeError, TokenProvider
from aioentra._authority import Authority, is_loopback_host, validate_scope

TENANT = "0f4c3a3e-3b7e-4a43-9a6e-6f1a2b3c4d5e"


@pytest.mark.parametrize(
    "scope",
    [
        "https://graph.microsoft.com/.default",
        "api://b7a6c1de-0000-4000-8000-000000000001/.default",
        "https://database.windows.net//.default",
        "b7a6c1de-0000-4000-8000-000000000001/.default",
    ],
)
def test_valid_scopes_pass_unchanged(scope: str) -> None:
    assert validate_scope(scope) == scope


def test_one_element_list_is_accepted() -> None:
    assert validate_scope(["https://graph.microsoft.com/.default"]) == (
        "https://graph.microsoft.com/.default"
    )


def test_permission_scope_is_refused_with_the_default_hint() -> None:
    with pytest.raises(InvalidScopeError) as info:
        validate_scope("https://graph.microsoft.com/User.Read.All")
    assert "'https://graph.microsoft.com/.default'" in str(info.value)
    assert "roles" in (info.value.hint or "")


def test_resource_with_trailing_slash_gets_the_double_slash_hint() -> None:
    with pytest.raises(InvalidScopeError) as info:
        validate_scope("https://database.windows.net/")
    assert "'https://database.windows.net//.default'" in (info.value.hint or "")
    assert "double slash" in (info.value.hint or "")


def test_bare_resource_gets_the_default_hint() -> None:
    with pytest.raises(InvalidScopeError, match=r"does not end in '/\.default'") as info:
        validate_scope("api://my-api")
    assert "'api://my-api/.default'" in (info.value.hint or "")


@pytest.mark.parametrize(
    "scopes",
    [
        "https://graph.microsoft.com/.default https://vault.azure.net/.default",
        ["https://graph.microsoft.com/.default", "https://vault.azure.net/.default"],
        [],
    ],
)
def test_several_scopes_are_refused(scopes: str | list[str]) -> None:
    with pytest.raises(InvalidScopeError, match="scope"):
        validate_scope(scopes)


@pytest.mark.parametrize("scope", ["", "   ", "/.default"])
def test_empty_scopes_are_refused(scope: str) -> None:
    with pytest.raises(InvalidScopeError):
        validate_scope(scope)


def test_invalid_scope_error_is_a_configuration_error() -> None:
    assert issubclass(InvalidScopeError, ConfigurationError)
    assert issubclass(InvalidScopeError, ValueError)


def test_authority_host_plus_tenant() -> None:
    authority = Authority.parse("https://login.microsoftonline.com/", TENANT)
    assert authority.url == f"https://login.microsoftonline.com/{TENANT}"
    assert (
        authority.token_endpoint == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    )


def test_authority_with_tenant_in_path() -> None:
    authority = Authority.parse(f"https://login.microsoftonline.us/{TENANT}")
    assert (authority.host, authority.tenant) == ("https://login.microsoftonline.us", TENANT)


def test_authority_without_scheme_gets_https() -> None:
    assert Authority.parse("login.chinacloudapi.cn", "contoso.com").url == (
        "https://login.chinacloudapi.cn/contoso.com"
    )


def test_external_id_authority_defaults_its_tenant_domain() -> None:
    authority = Authority.parse("https://contoso.ciamlogin.com")
    assert authority.url == "https://contoso.ciamlogin.com/contoso.onmicrosoft.com"
    assert Authority.parse("https://contoso.ciamlogin.com", TENANT).tenant == TENANT


def test_conflicting_tenants_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="names tenant"):
        Authority.parse(f"https://login.microsoftonline.com/{TENANT}", "contoso.com")


@pytest.mark.parametrize("tenant", ["common", "consumers", "Common"])
def test_tenantless_authorities_are_refused(tenant: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot be used by a daemon") as info:
        Authority.parse("https://login.microsoftonline.com", tenant)
    assert "consent" in (info.value.hint or "")


def test_organizations_only_with_a_secret() -> None:
    assert Authority.parse("https://login.microsoftonline.com", "organizations").tenant
    with pytest.raises(ConfigurationError, match="only with a client secret"):
        Authority.parse(
            "https://login.microsoftonline.com", "organizations", secret_credential=False
        )


def test_missing_and_malformed_tenants_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="no tenant") as info:
        Authority.parse("https://login.microsoftonline.com")
    assert "AZURE_TENANT_ID" in (info.value.hint or "")
    with pytest.raises(ConfigurationError, match="not a tenant id"):
        Authority.parse("https://login.microsoftonline.com", "bad tenant!")


def test_plain_http_is_refused_except_loopback_with_the_flag() -> None:
    with pytest.raises(ConfigurationError, match="plain http") as info:
        Authority.parse("http://login.microsoftonline.com", TENANT, allow_insecure_http=True)
    assert "loopback" in (info.value.hint or "")
    with pytest.raises(ConfigurationError, match="plain http") as info:
        Authority.parse("http://127.0.0.1:8080", TENANT)
    assert "allow_insecure_http=True" in (info.value.hint or "")
    authority = Authority.parse("http://127.0.0.1:8080", TENANT, allow_insecure_http=True)
    assert authority.url == f"http://127.0.0.1:8080/{TENANT}"
    assert not authority.is_https


@pytest.mark.parametrize("bad", ["ftp://login.microsoftonline.com", "https://", "https://h/t?x=1"])
def test_malformed_authorities_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        Authority.parse(bad, TENANT)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("app.localhost", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_provider_validates_before_any_network_call() -> None:
    secret = ClientSecret("s")
    with pytest.raises(ConfigurationError, match="client_id"):
        TokenProvider(secret, tenant_id=TENANT, client_id="")
    with pytest.raises(ConfigurationError, match="not a credential"):
        TokenProvider("secret", tenant_id=TENANT, client_id="c")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="common"):
        TokenProvider(secret, tenant_id="common", client_id="c")
    with pytest.raises(ConfigurationError, match="does not exist"):
        TokenProvider(secret, tenant_id=TENANT, client_id="c", ca_file="/nonexistent/ca.pem")
    context = ssl.create_default_context()
    with pytest.raises(ConfigurationError, match="ca_file or ssl_context"):
        TokenProvider(
            secret,
            tenant_id=TENANT,
            client_id="c",
            ca_file="x",
            ssl_context=context,
        )


@pytest.mark.anyio
async def test_bad_scope_fails_before_any_request() -> None:
    async with TokenProvider(ClientSecret("s"), tenant_id=TENANT, client_id="c") as provider:
        with pytest.raises(InvalidScopeError):
            await provider.get_token("https://graph.microsoft.com/User.Read")
        with pytest.raises(ConfigurationError, match="white space"):
            await provider.get_token(" https://graph.microsoft.com/.default")
        with pytest.raises(ConfigurationError, match="not allowed"):
            await provider.get_token("https://graph.microsoft.com/.default", tenant_id="other.com")
        assert provider._engine is None  # nothing was started: no session, no threads


def test_secrets_do_not_leak_in_reprs() -> None:
    secret = ClientSecret("hunter2-super-secret")
    provider = TokenProvider(secret, tenant_id=TENANT, client_id="c")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in repr(provider)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
