"""Credential rotation: the token endpoint refuses revoked secrets and certificates like Entra."""

from __future__ import annotations

import pytest

from aioentra.emulator import CertificateMaterial, Emulator

from .helpers import make_assertion, post_token, secret_form
from .test_token_errors import assertion_form, expect

pytestmark = pytest.mark.anyio


async def test_rotate_secret_revokes_the_old_value(emu: Emulator) -> None:
    app = emu.add_app("rotating")
    extra = emu.add_secret(app, "second-secret")
    old = str(app.secret)
    new = emu.rotate_secret(app)
    assert new not in (old, extra)
    assert [s.value for s in app.secrets] == [new]
    status, _, _ = await post_token(emu, secret_form(app.client_id, new))
    assert status == 200
    for stale in (old, extra):
        body = await expect(emu, secret_form(app.client_id, stale), 401, "invalid_client", 7000215)
        assert app.client_id in str(body["error_description"])
    assert emu.requests.count("token", status=401, client_id=app.client_id) == 2


async def test_revoke_secret(emu: Emulator) -> None:
    app = emu.add_app("revoking")
    kept = emu.add_secret(app)
    emu.revoke_secret(app.client_id, str(app.secret))
    status, _, _ = await post_token(emu, secret_form(app.client_id, kept))
    assert status == 200
    assert [s.value for s in app.secrets] == [kept]
    with pytest.raises(KeyError):
        emu.revoke_secret(app, "never-registered")
    emu.revoke_secret(app, kept)
    body = await expect(emu, secret_form(app.client_id, kept), 401, "invalid_client", 7000215)
    assert body["error_codes"] == [7000215]


async def test_rotate_certificate_revokes_the_old_one(emu: Emulator) -> None:
    app = emu.add_app("cert-rotating", secret=False, certificate=True)
    old = app.certificate
    assert old is not None
    new = emu.rotate_certificate(app)
    assert app.certificates == [new]
    assert new.x5t_s256 != old.x5t_s256
    fresh = make_assertion(new, app.client_id, emu.token_endpoint)
    status, _, _ = await post_token(emu, assertion_form(app.client_id, fresh))
    assert status == 200
    stale = make_assertion(old, app.client_id, emu.token_endpoint)
    body = await expect(emu, assertion_form(app.client_id, stale), 401, "invalid_client", 700027)
    assert "The key was not found." in str(body["error_description"])


async def test_revoke_certificate(emu: Emulator) -> None:
    app = emu.add_app("cert-revoking", secret=False, certificate=True)
    second = emu.add_certificate(app)
    first = app.certificates[0]
    emu.revoke_certificate(app, first)
    assert app.certificates == [second]
    with pytest.raises(KeyError):
        emu.revoke_certificate(app, CertificateMaterial.generate("stranger"))
    stale = make_assertion(first, app.client_id, emu.token_endpoint)
    await expect(emu, assertion_form(app.client_id, stale), 401, "invalid_client", 700027)
    status, _, _ = await post_token(
        emu,
        assertion_form(app.client_id, make_assertion(second, app.client_id, emu.token_endpoint)),
    )
    assert status == 200
