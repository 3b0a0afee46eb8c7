"""Every emulated AADSTS error of the token endpoint: status, error, code, message, body shape."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from aioentra.emulator import App, CertificateMaterial, Emulator

from .helpers import make_assertion, post_token, secret_form

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net/.default"
BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion_form(client_id: str, assertion: str, scope: str = VAULT) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": BEARER,
        "client_assertion": assertion,
        "scope": scope,
    }


async def expect(
    emu: Emulator,
    data: dict[str, str],
    status: int,
    error: str,
    code: int,
    *,
    tenant: str | None = None,
) -> dict[str, object]:
    got_status, body, _ = await post_token(emu, data, tenant=tenant)
    assert (got_status, body["error"], body["error_codes"]) == (status, error, [code]), body
    description = str(body["error_description"])
    assert description.startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in description
    assert "\r\nCorrelation ID: " in description
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    return body


async def test_success_shape_and_headers(emu: Emulator) -> None:
    app = emu.add_app()
    status, body, headers = await post_token(
        emu, secret_form(app.client_id, str(app.secret)), headers={"client-request-id": "abc-123"}
    )
    assert status == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert headers["Cache-Control"] == "no-store, no-cache"
    assert headers["Pragma"] == "no-cache"


async def test_http_basic_client_authentication(emu: Emulator) -> None:
    app = emu.add_app(secret="p@ss:word+/=")
    basic = base64.b64encode(f"{app.client_id}:p%40ss%3Aword%2B%2F%3D".encode()).decode()
    form = {"grant_type": "client_credentials", "scope": VAULT}
    status, body, _ = await post_token(emu, form, headers={"Authorization": f"Basic {basic}"})
    assert status == 200, body
    assert emu.requests.records[-1].auth_method == "client_secret_basic"


async def test_wrong_secret_7000215(emu: Emulator) -> None:
    app = emu.add_app()
    body = await expect(emu, secret_form(app.client_id, "nope"), 401, "invalid_client", 7000215)
    assert app.client_id in str(body["error_description"])


async def test_expired_secret_7000222(emu: Emulator) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=1)
    app = emu.add_app(secret="old-secret", secret_expires_at=past)
    await expect(emu, secret_form(app.client_id, "old-secret"), 401, "invalid_client", 7000222)


async def test_no_credential_7000218(emu: Emulator) -> None:
    app = emu.add_app()
    form = {"grant_type": "client_credentials", "client_id": app.client_id, "scope": VAULT}
    await expect(emu, form, 401, "invalid_client", 7000218)


async def test_unknown_client_700016(emu: Emulator) -> None:
    await expect(emu, secret_form(str(uuid.uuid4()), "x"), 400, "unauthorized_client", 700016)


async def test_app_of_another_tenant_is_unknown_700016(emu: Emulator) -> None:
    other = emu.add_tenant(domain="fabrikam.onmicrosoft.com")
    app = emu.add_app(tenant=other.tenant_id)
    await expect(
        emu, secret_form(app.client_id, str(app.secret)), 400, "unauthorized_client", 700016
    )
    status, _, _ = await post_token(
        emu, secret_form(app.client_id, str(app.secret)), tenant="fabrikam.onmicrosoft.com"
    )
    assert status == 200


async def test_unknown_tenant_90002(emu: Emulator) -> None:
    app = emu.add_app()
    body = await expect(
        emu,
        secret_form(app.client_id, str(app.secret)),
        400,
        "invalid_request",
        90002,
        tenant=str(uuid.uuid4()),
    )
    assert "not found" in str(body["error_description"])


async def test_malformed_tenant_900023(emu: Emulator) -> None:
    app = emu.add_app()
    await expect(
        emu, secret_form(app.client_id, "x"), 400, "invalid_request", 900023, tenant="not_a_tenant"
    )


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers"])
async def test_tenantless_authority_50059(emu: Emulator, tenant: str) -> None:
    app = emu.add_app()
    await expect(
        emu,
        secret_form(app.client_id, str(app.secret)),
        400,
        "invalid_request",
        50059,
        tenant=tenant,
    )


async def test_domain_alias_in_path(emu: Emulator) -> None:
    app = emu.add_app()
    status, _, _ = await post_token(
        emu, secret_form(app.client_id, str(app.secret)), tenant="Contoso.onmicrosoft.com"
    )
    assert status == 200


@pytest.mark.parametrize(
    ("scope", "code", "error"),
    [
        ("api://orders/Orders.Read", 1002012, "invalid_scope"),
        (
            "https://vault.azure.net/.default https://graph.microsoft.com/.default",
            700022,
            "invalid_scope",
        ),
        ("https://vault.azure.net/.default openid", 70011, "invalid_scope"),
        (".default", 70011, "invalid_scope"),
        ("api://nowhere/.default", 500011, "invalid_resource"),
        ("", 900144, "invalid_request"),
    ],
)
async def test_scope_rules(emu: Emulator, scope: str, code: int, error: str) -> None:
    emu.add_api("api://orders", ["Orders.Read"])
    app = emu.add_app()
    await expect(emu, secret_form(app.client_id, str(app.secret), scope), 400, error, code)


async def test_api_by_app_id_and_trailing_slash_identifier(emu: Emulator) -> None:
    api = emu.add_api("api://orders", ["Orders.Read"])
    arm = emu.add_api("https://management.example/")
    app = emu.add_app()
    for scope in (f"{api.app_id}/.default", "https://management.example//.default"):
        status, body, _ = await post_token(emu, secret_form(app.client_id, str(app.secret), scope))
        assert status == 200, body
    assert arm.identifier_uri.endswith("/")
    await expect(
        emu,
        secret_form(app.client_id, str(app.secret), "https://management.example/.default"),
        400,
        "invalid_resource",
        500011,
    )


async def test_resource_parameter_901002(emu: Emulator) -> None:
    app = emu.add_app()
    form = secret_form(app.client_id, str(app.secret)) | {"resource": "https://vault.azure.net"}
    await expect(emu, form, 400, "invalid_request", 901002)


async def test_unsupported_grant_type(emu: Emulator) -> None:
    app = emu.add_app()
    form = secret_form(app.client_id, str(app.secret)) | {"grant_type": "password"}
    await expect(emu, form, 400, "unsupported_grant_type", 70003)


async def test_assignment_required_501051(emu: Emulator) -> None:
    api = emu.add_api("api://locked", ["Admin"], assignment_required=True)
    app = emu.add_app()
    form = secret_form(app.client_id, str(app.secret), "api://locked/.default")
    await expect(emu, form, 400, "invalid_client", 501051)
    emu.grant(app, api, ["Admin"])
    status, _, _ = await post_token(emu, form)
    assert status == 200


async def test_correlation_id_echoed(emu: Emulator) -> None:
    app = emu.add_app()
    _, body, headers = await post_token(
        emu,
        secret_form(app.client_id, "bad"),
        headers={"client-request-id": "c0ffee00-0000-0000-0000-000000000001"},
    )
    assert body["correlation_id"] == "c0ffee00-0000-0000-0000-000000000001"
    assert "Correlation ID: c0ffee00-0000-0000-0000-000000000001" in str(body["error_description"])
    assert headers["client-request-id"] == "c0ffee00-0000-0000-0000-000000000001"


# -- client assertions ---------------------------------------------------------------------------


async def test_assertion_wrong_audience_700023(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    bad = make_assertion(
        app.certificate, app.client_id, "https://login.microsoftonline.com/x/oauth2/v2.0/token"
    )
    await expect(emu, assertion_form(app.client_id, bad), 401, "invalid_client", 700023)


async def test_assertion_audience_forms_accepted(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    for aud in (
        emu.token_endpoint,
        f"https://127.0.0.1:{emu.port}/{emu.tenant_id}/oauth2/v2.0/token",
        f"https://localhost:{emu.port}/{emu.domain}/oauth2/v2.0/token",
    ):
        status, body, _ = await post_token(
            emu, assertion_form(app.client_id, make_assertion(app.certificate, app.client_id, aud))
        )
        assert status == 200, (aud, body)


async def test_unregistered_certificate_700027(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    stranger = CertificateMaterial.generate("stranger")
    body = await expect(
        emu,
        assertion_form(app.client_id, make_assertion(stranger, app.client_id, emu.token_endpoint)),
        401,
        "invalid_client",
        700027,
    )
    assert "The key was not found." in str(body["error_description"])


async def test_bad_signature_700027(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    token = make_assertion(app.certificate, app.client_id, emu.token_endpoint)
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{'A' * len(signature)}"
    body = await expect(emu, assertion_form(app.client_id, tampered), 401, "invalid_client", 700027)
    assert "Key was found" in str(body["error_description"])


async def test_expired_assertion_700024(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    old = make_assertion(app.certificate, app.client_id, emu.token_endpoint, lifetime=-3600)
    await expect(emu, assertion_form(app.client_id, old), 401, "invalid_client", 700024)
    future = make_assertion(
        app.certificate,
        app.client_id,
        emu.token_endpoint,
        not_before=time.time() + 3600,
        lifetime=7200,
    )
    await expect(emu, assertion_form(app.client_id, future), 401, "invalid_client", 700024)


async def test_assertion_within_clock_skew_is_accepted(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    late = make_assertion(app.certificate, app.client_id, emu.token_endpoint, lifetime=-60)
    status, _, _ = await post_token(emu, assertion_form(app.client_id, late))
    assert status == 200


async def test_no_thumbprint_50027(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    token = make_assertion(app.certificate, app.client_id, emu.token_endpoint, thumbprint=None)
    await expect(emu, assertion_form(app.client_id, token), 401, "invalid_client", 50027)


async def test_malformed_assertion_50027(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    await expect(emu, assertion_form(app.client_id, "not-a-jwt"), 401, "invalid_client", 50027)


async def test_subject_mismatch_50048(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    token = make_assertion(
        app.certificate, app.client_id, emu.token_endpoint, extra={"sub": "someone"}
    )
    await expect(emu, assertion_form(app.client_id, token), 401, "invalid_client", 50048)


async def test_replayed_jti_accepted_by_default_and_rejected_when_opted_in(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate
    token = make_assertion(app.certificate, app.client_id, emu.token_endpoint)
    for _ in range(2):
        status, _, _ = await post_token(emu, assertion_form(app.client_id, token))
        assert status == 200
    emu.state.reject_replayed_assertions = True
    fresh = make_assertion(app.certificate, app.client_id, emu.token_endpoint)
    status, _, _ = await post_token(emu, assertion_form(app.client_id, fresh))
    assert status == 200
    await expect(emu, assertion_form(app.client_id, fresh), 401, "invalid_client", 50012)


def _exchange_token(emu: Emulator, identity: App) -> str:
    token, _ = emu.issue_access_token(
        tenant_id=identity.tenant_id,
        client_id=identity.client_id,
        object_id=identity.object_id,
        resource="api://AzureADTokenExchange",
    )
    return token


async def test_federated_credential_with_emulator_issued_token(emu: Emulator) -> None:
    identity = emu.add_app("workload", secret=False)
    app = emu.add_app("federated", secret=False)
    emu.add_federated_credential(app, issuer=emu.issuer(), subject=identity.object_id)
    exchange = _exchange_token(emu, identity)
    status, body, _ = await post_token(emu, assertion_form(app.client_id, exchange))
    assert status == 200, body
    assert emu.verify_access_token(str(body["access_token"]))["azpacr"] == "2"
    assert emu.requests.records[-1].auth_method == "federated"
    # a subject the app does not trust
    other = _exchange_token(emu, emu.add_app("other", secret=False))
    await expect(emu, assertion_form(app.client_id, other), 400, "invalid_request", 70021)
