"""Pure protocol rules, driven without a server."""

from __future__ import annotations

import base64

import pytest

from aioentra.emulator._errors import EntraError, error_body
from aioentra.emulator._http import basic_credentials
from aioentra.emulator._state import EmulatorState
from aioentra.emulator.identity._assertion import audience_matches
from aioentra.emulator.identity._scopes import resource_of_scope


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        ("api://orders/.default", "api://orders"),
        ("https://management.azure.com//.default", "https://management.azure.com/"),
        ("api://orders/.default api://orders/.default", "api://orders"),
    ],
)
def test_scope_to_resource(scope: str, resource: str) -> None:
    assert resource_of_scope(scope) == resource


@pytest.mark.parametrize(
    ("scope", "code"),
    [
        (None, 900144),
        ("User.Read", 1002012),
        ("a/.default b/.default", 700022),
        ("a/.default x", 70011),
        ("/.default", 70011),
    ],
)
def test_scope_errors(scope: str | None, code: int) -> None:
    with pytest.raises(EntraError) as info:
        resource_of_scope(scope)
    assert info.value.code == code


def test_basic_credentials_are_url_decoded() -> None:
    header = "Basic " + base64.b64encode(b"id:a%2Bb%3Ac").decode()
    assert basic_credentials(header) == ("id", "a+b:c")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic !!!") is None


def test_audience_forms() -> None:
    state = EmulatorState()
    tenant = state.add_tenant(domain="contoso.onmicrosoft.com")
    other = state.add_tenant()
    state.base_url = "https://localhost:8443"
    ok = [
        f"https://localhost:8443/{tenant.tenant_id}/oauth2/v2.0/token",
        f"https://127.0.0.1:8443/{tenant.tenant_id}/oauth2/v2.0/token/",
        "https://[::1]:8443/contoso.onmicrosoft.com/oauth2/v2.0/token",
    ]
    bad = [
        f"https://localhost:9999/{tenant.tenant_id}/oauth2/v2.0/token",
        f"http://localhost:8443/{tenant.tenant_id}/oauth2/v2.0/token",
        f"https://localhost:8443/{other.tenant_id}/oauth2/v2.0/token",
        f"https://login.microsoftonline.com/{tenant.tenant_id}/oauth2/v2.0/token",
        "not a url",
    ]
    assert all(audience_matches(a, state=state, tenant=tenant, port=8443) for a in ok)
    assert not any(audience_matches(a, state=state, tenant=tenant, port=8443) for a in bad)


def test_error_body_shape() -> None:
    body = error_body("invalid_client", "Nope.", [7000215], correlation_id="cid")
    assert body["error_description"].startswith("AADSTS7000215: Nope.\r\nTrace ID: ")
    assert body["correlation_id"] == "cid"
    assert body["error_uri"].endswith("code=7000215")
