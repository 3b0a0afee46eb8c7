"""OpenID discovery answers that say the URL is wrong fail at once, with the URL and a hint.

msal reads the OpenID configuration before the first token request. A 404 there (and any 4xx
but 408 and 429, and an answer that is not an OpenID configuration) is the same on every
attempt: it is a :class:`ConfigurationError`, sent once, never retried as an outage. 408, 429
and 5xx stay retryable. Each test uses a tenant of its own, so the emulator's request log
counts its discovery requests alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aioentra import (
    ClientSecret,
    ConfigurationError,
    IdentityProviderUnavailableError,
    RetryPolicy,
    TenantNotFoundError,
    TokenProvider,
)
from aioentra.emulator import App, Emulator, Fault

pytestmark = pytest.mark.anyio

SCOPE = "https://vault.azure.net/.default"  # registered in every emulated tenant
SECRET_HINT = "oidc_authority= its issuer URL"


@pytest.fixture
def tenant(emulator: Emulator) -> str:
    return emulator.add_tenant().tenant_id


@pytest.fixture
def tenant_app(emulator: Emulator, tenant: str) -> Iterator[App]:
    app = emulator.add_app("discovery-errors", tenant=tenant)
    yield app
    emulator.remove_app(app)


@pytest.fixture
def provider_for(emulator: Emulator, tenant: str, tenant_app: App) -> Callable[..., TokenProvider]:
    def build(**kwargs: Any) -> TokenProvider:
        kwargs.setdefault("tenant_id", tenant)
        return TokenProvider(
            ClientSecret(tenant_app.secret or ""),
            client_id=tenant_app.client_id,
            authority=kwargs.pop("authority", emulator.base_url),
            ca_file=emulator.ca_file,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
            **kwargs,
        )

    return build


def discovery_url(emulator: Emulator, tenant: str) -> str:
    return f"{emulator.base_url}/{tenant}/v2.0/.well-known/openid-configuration"


def discoveries(emulator: Emulator, tenant: str) -> int:
    return emulator.requests.count("discovery", tenant=tenant)


def token_requests(emulator: Emulator, app: App) -> int:
    return emulator.requests.count("token", client_id=app.client_id)


async def test_a_404_without_json_fails_once_naming_the_url(
    emulator: Emulator, tenant: str, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    emulator.faults.add(Fault("discovery", "html", status=404, count=None, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
        # Within the key's back-off the same failure comes back without a request.
        with pytest.raises(ConfigurationError):
            await provider.get_token(SCOPE)
    error = info.value
    assert type(error) is ConfigurationError
    assert error.message == (
        f"no OpenID configuration at {discovery_url(emulator, tenant)} (HTTP 404)"
    )
    assert error.status == 404 and not error.retryable
    assert "check the authority and the tenant" in (error.hint or "")
    assert SECRET_HINT in (error.hint or "")
    assert "proxy" not in str(error)
    assert (tenant_app.secret or "") not in str(error)
    assert discoveries(emulator, tenant) == 1
    assert token_requests(emulator, tenant_app) == 0


async def test_a_404_with_an_error_body_keeps_what_the_server_said(
    emulator: Emulator, tenant: str, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    emulator.faults.add(Fault("discovery", "status", status=404, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
    error = info.value
    assert error.message.startswith(
        f"no OpenID configuration at {discovery_url(emulator, tenant)} (HTTP 404): invalid_request"
    )
    assert error.error == "invalid_request" and error.correlation_id and error.trace_id
    assert not error.retryable
    assert discoveries(emulator, tenant) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 451])
async def test_other_client_errors_are_not_retried_either(
    emulator: Emulator,
    tenant: str,
    tenant_app: App,
    provider_for: Callable[..., TokenProvider],
    status: int,
) -> None:
    emulator.faults.add(Fault("discovery", "html", status=status, count=None, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
    assert info.value.status == status and f"(HTTP {status})" in info.value.message
    assert discoveries(emulator, tenant) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("discovery", "html", status=408),
        Fault("discovery", "throttle", retry_after=0.01),
        Fault("discovery", "html", status=503),
    ],
    ids=["408", "429", "503"],
)
async def test_408_429_and_5xx_are_still_retried(
    emulator: Emulator,
    tenant: str,
    tenant_app: App,
    provider_for: Callable[..., TokenProvider],
    fault: Fault,
) -> None:
    emulator.faults.add(dataclasses.replace(fault, tenant=tenant))
    async with provider_for() as provider:
        assert await provider.get_token(SCOPE)
    assert discoveries(emulator, tenant) == 2
    assert token_requests(emulator, tenant_app) == 1


async def test_a_transient_error_page_still_blames_the_outage(
    emulator: Emulator, tenant: str, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    emulator.faults.add(Fault("discovery", "html", status=502, count=None, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)
    assert discoveries(emulator, tenant) == RetryPolicy().max_attempts


async def test_a_200_that_is_not_json_is_not_an_openid_configuration(
    emulator: Emulator, tenant: str, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    # A host that answers every path with a web page (a single-page app, a portal).
    emulator.faults.add(Fault("discovery", "html", status=200, count=None, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
    assert info.value.message == (
        f"no OpenID configuration at {discovery_url(emulator, tenant)}: "
        "the answer is not a JSON object"
    )
    assert discoveries(emulator, tenant) == 1


async def test_json_that_is_not_an_openid_configuration(
    emulator: Emulator, tenant: str, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    body = json.dumps({"status": "ok", "version": "1.2.3"})  # some other service's answer
    emulator.faults.add(Fault("discovery", "respond", body=body, tenant=tenant))
    async with provider_for() as provider:
        with pytest.raises(ConfigurationError, match="has no authorization_endpoint or token_"):
            await provider.get_token(SCOPE)
    assert discoveries(emulator, tenant) == 1


async def test_a_wrong_tenant_path_fails_once_as_an_unknown_tenant(
    emulator: Emulator, tenant_app: App, provider_for: Callable[..., TokenProvider]
) -> None:
    wrong = "no-such-tenant.example"
    async with provider_for(authority=f"{emulator.base_url}/{wrong}", tenant_id=None) as provider:
        with pytest.raises(TenantNotFoundError) as info:
            await provider.get_token(SCOPE)
    error = info.value
    assert isinstance(error, ConfigurationError) and not error.retryable
    assert error.message.startswith(
        f"no OpenID configuration at {discovery_url(emulator, wrong)} (HTTP 400): invalid_tenant"
    )
    assert 90002 in error.error_codes and "tenant is unknown" in (error.hint or "")
    assert discoveries(emulator, wrong) == 1
    assert token_requests(emulator, tenant_app) == 0


async def test_a_wrong_issuer_path_fails_once_with_the_oidc_hint(
    emulator: Emulator, tenant: str, tenant_app: App
) -> None:
    issuer = f"{emulator.issuer(tenant)}/wrong"
    wanted = f"{issuer}/.well-known/openid-configuration"
    provider = TokenProvider(
        ClientSecret(tenant_app.secret or ""),
        client_id=tenant_app.client_id,
        oidc_authority=issuer,
        ca_file=emulator.ca_file,
    )
    async with provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
    error = info.value
    assert error.message.startswith(f"no OpenID configuration at {wanted} (HTTP 404)")
    assert "check oidc_authority" in (error.hint or "") and not error.retryable
    path = wanted.removeprefix(emulator.base_url)
    assert sum(1 for r in emulator.requests.records if r.path == path) == 1
    assert token_requests(emulator, tenant_app) == 0
