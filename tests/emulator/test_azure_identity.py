"""Unmodified azure-identity credentials (aio, and sync via msal) against the emulator."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential as SyncCertificateCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
)

from aioentra.emulator import Emulator

from .helpers import padded_rs256_assertion

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net/.default"


async def test_client_secret_credential(emu: Emulator) -> None:
    app = emu.add_app()
    async with ClientSecretCredential(
        emu.tenant_id,
        app.client_id,
        str(app.secret),
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    ) as credential:
        token = await credential.get_token(VAULT)
    claims = emu.verify_access_token(token.token)
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["azp"] == app.client_id


async def test_certificate_credential_ps256(emu: Emulator, tmp_path: Path) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate is not None
    pem = tmp_path / "app.pem"
    pem.write_bytes(app.certificate.pem_bundle())
    async with CertificateCredential(
        emu.tenant_id,
        app.client_id,
        str(pem),
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    ) as credential:
        token = await credential.get_token(VAULT)
    assert jwt.decode(token.token, options={"verify_signature": False})["azpacr"] == "2"
    assert (
        emu.requests.filter("token", client_id=app.client_id)[-1].auth_method == "private_key_jwt"
    )


async def test_client_assertion_credential_with_padded_segments(emu: Emulator) -> None:
    app = emu.add_app(secret=False, certificate=True)
    assert app.certificate is not None
    cert = app.certificate

    def assertion() -> str:
        token = padded_rs256_assertion(cert, app.client_id, emu.token_endpoint)
        assert token.endswith("==")  # RSA-2048 signature: 256 bytes, two pad characters
        return token

    async with ClientAssertionCredential(
        emu.tenant_id,
        app.client_id,
        assertion,
        authority=emu.base_url,
        connection_verify=emu.ca_file,
    ) as credential:
        token = await credential.get_token(VAULT)
    assert token.token


async def test_wrong_secret_raises_client_authentication_error(emu: Emulator) -> None:
    app = emu.add_app()
    async with ClientSecretCredential(
        emu.tenant_id, app.client_id, "wrong", authority=emu.base_url, connection_verify=emu.ca_file
    ) as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await credential.get_token(VAULT)


def test_sync_certificate_credential_rs256_with_chain(
    threaded_emu: Emulator, tmp_path: Path
) -> None:
    app = threaded_emu.add_app(secret=False, certificate=True)
    assert app.certificate is not None
    pem = tmp_path / "app.pem"
    pem.write_bytes(app.certificate.pem_bundle())
    credential = SyncCertificateCredential(
        threaded_emu.tenant_id,
        app.client_id,
        str(pem),
        authority=threaded_emu.base_url,
        disable_instance_discovery=True,
        connection_verify=threaded_emu.ca_file,
        send_certificate_chain=True,
    )
    with credential:
        token = credential.get_token(VAULT)
    assert threaded_emu.verify_access_token(token.token)["azp"] == app.client_id
