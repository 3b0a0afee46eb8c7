"""The unmodified msal ConfidentialClientApplication against the emulator, over real HTTPS."""

from __future__ import annotations

import jwt
import msal
import pytest

from aioentra.emulator import Emulator

from .helpers import make_assertion, requests_session

SCOPE = "api://msal-orders/.default"


@pytest.fixture
def api_id(threaded_emu: Emulator) -> str:
    return threaded_emu.add_api("api://msal-orders", ["Orders.Read"]).app_id


def _acquire(emu: Emulator, client_id: str, credential: object) -> dict[str, object]:
    with requests_session(emu) as session:
        cca = msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=emu.authority,
            instance_discovery=False,
            http_client=session,
        )
        first = cca.acquire_token_for_client([SCOPE])
        second = cca.acquire_token_for_client([SCOPE])
    assert "access_token" in first, first
    assert second.get("token_source") == "cache"  # 3599 s tokens are cached by msal
    return first


def test_secret(threaded_emu: Emulator, api_id: str) -> None:
    app = threaded_emu.add_app("msal-secret")
    threaded_emu.grant(app, api_id, ["Orders.Read"])
    result = _acquire(threaded_emu, app.client_id, app.secret)
    claims = jwt.decode(str(result["access_token"]), options={"verify_signature": False})
    assert claims["aud"] == api_id
    assert claims["roles"] == ["Orders.Read"]
    assert claims["azpacr"] == "1"
    assert result["token_type"] == "Bearer"
    assert threaded_emu.requests.count("token", client_id=app.client_id, status=200) == 1


def test_pfx_certificate_ps256(threaded_emu: Emulator, api_id: str, tmp_path: object) -> None:
    from pathlib import Path

    app = threaded_emu.add_app("msal-pfx", secret=False, certificate=True)
    assert app.certificate is not None
    pfx = Path(str(tmp_path)) / "app.pfx"
    pfx.write_bytes(app.certificate.pfx())
    result = _acquire(threaded_emu, app.client_id, {"private_key_pfx_path": str(pfx)})
    claims = jwt.decode(str(result["access_token"]), options={"verify_signature": False})
    assert claims["azpacr"] == "2"
    record = threaded_emu.requests.filter("token", client_id=app.client_id)[-1]
    assert record.auth_method == "private_key_jwt"


def test_private_key_and_sha1_thumbprint_rs256(threaded_emu: Emulator, api_id: str) -> None:
    app = threaded_emu.add_app("msal-thumbprint", secret=False, certificate=True)
    cert = app.certificate
    assert cert is not None
    assert cert.private_key_pem is not None
    credential = {"private_key": cert.private_key_pem.decode(), "thumbprint": cert.sha1_thumbprint}
    _acquire(threaded_emu, app.client_id, credential)


def test_assertion_callable(threaded_emu: Emulator, api_id: str) -> None:
    app = threaded_emu.add_app("msal-assertion", secret=False, certificate=True)
    assert app.certificate is not None
    cert = app.certificate

    def assertion() -> str:
        return make_assertion(cert, app.client_id, threaded_emu.token_endpoint)

    _acquire(threaded_emu, app.client_id, {"client_assertion": assertion})


def test_wrong_secret_is_invalid_client(threaded_emu: Emulator, api_id: str) -> None:
    app = threaded_emu.add_app("msal-wrong")
    with requests_session(threaded_emu) as session:
        cca = msal.ConfidentialClientApplication(
            app.client_id,
            client_credential="not-the-secret",
            authority=threaded_emu.authority,
            instance_discovery=False,
            http_client=session,
        )
        result = cca.acquire_token_for_client([SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
