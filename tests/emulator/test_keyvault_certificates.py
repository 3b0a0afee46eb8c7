"""Certificates and their keys: the unmodified azure-keyvault-certificates and -keys aio clients."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.certificates import CertificateContentType, KeyType
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.keys.crypto.aio import CryptographyClient
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12

from aioentra.emulator import App, Emulator

pytestmark = pytest.mark.anyio

DIGEST = hashlib.sha256(b"the assertion to sign").digest()


def _credential(emu: Emulator, app: App) -> ClientSecretCredential:
    return ClientSecretCredential(
        emu.tenant_id, app.client_id, str(app.secret), authority=emu.base_url,
        connection_verify=emu.ca_file,
    )  # fmt: skip


def _options(emu: Emulator) -> dict[str, Any]:
    return {"verify_challenge_resource": False, "connection_verify": emu.ca_file, "retry_total": 0}


@asynccontextmanager
async def _certificates(emu: Emulator, app: App) -> AsyncIterator[CertificateClient]:
    credential = _credential(emu, app)
    async with credential, CertificateClient(emu.vault.url, credential, **_options(emu)) as client:
        yield client


@asynccontextmanager
async def _crypto(emu: Emulator, app: App, key_id: str) -> AsyncIterator[CryptographyClient]:
    credential = _credential(emu, app)
    async with credential, CryptographyClient(key_id, credential, **_options(emu)) as client:
        yield client


def _rsa_public(cer: bytes) -> rsa.RSAPublicKey:
    key = x509.load_der_x509_certificate(cer).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


async def test_get_certificate_and_version(emu: Emulator) -> None:
    stored = emu.vault.set_certificate("tls", subject="CN=tls.example", tags={"env": "test"})
    app = emu.add_app("cert-reader")
    emu.vault.grant(app, certificates=["get"])
    async with _certificates(emu, app) as client:
        latest = await client.get_certificate("tls")
        versioned = await client.get_certificate_version("tls", stored.version)
    vault = emu.vault.url
    assert latest.id == f"{vault}/certificates/tls/{stored.version}"
    assert latest.key_id == f"{vault}/keys/tls/{stored.version}"
    assert latest.secret_id == f"{vault}/secrets/tls/{stored.version}"
    assert (latest.name, latest.properties.version) == ("tls", stored.version)
    assert latest.properties.tags == {"env": "test"}
    assert latest.properties.enabled is True
    assert latest.cer is not None
    certificate = x509.load_der_x509_certificate(bytes(latest.cer))
    assert certificate.subject.rfc4514_string() == "CN=tls.example"
    sha1 = certificate.fingerprint(hashes.SHA1())
    assert latest.properties.x509_thumbprint == sha1
    assert latest.properties.expires_on == certificate.not_valid_after_utc
    policy = latest.policy
    assert policy is not None
    assert (policy.issuer_name, policy.subject, policy.exportable) == (
        "Self",
        "CN=tls.example",
        True,
    )
    assert (policy.key_type, policy.key_size) == (KeyType.rsa, 2048)
    assert policy.content_type == CertificateContentType.pkcs12
    assert versioned.policy is None  # a versioned GET carries no policy, as documented
    assert versioned.cer == latest.cer
    paths = [r.path for r in emu.requests.filter("keyvault", status=200)]
    assert paths == ["/certificates/tls/", f"/certificates/tls/{stored.version}"]


async def test_certificate_permission_and_not_found(emu: Emulator) -> None:
    emu.vault.set_certificate("guarded")
    emu.vault.set_secret("plain", "not a certificate")
    app = emu.add_app("no-cert-permission")
    emu.vault.grant(app, ["get"])  # secrets only
    async with _certificates(emu, app) as client:
        with pytest.raises(HttpResponseError) as denied:
            await client.get_certificate("guarded")
        emu.vault.grant(app, certificates=["get", "list"])
        assert emu.vault.permissions(app, "certificates") == {"get", "list"}
        with pytest.raises(ResourceNotFoundError) as missing:
            await client.get_certificate("plain")
    assert denied.value.status_code == 403
    assert denied.value.error is not None
    assert denied.value.error.code == "Forbidden"
    assert "does not have certificates get permission on key vault" in denied.value.message
    assert missing.value.error is not None
    assert missing.value.error.code == "CertificateNotFound"
    assert missing.value.error.message is not None
    assert missing.value.error.message.startswith(
        "A certificate with (name/id) plain was not found in this key vault."
    )
    assert emu.requests.count("keyvault", status=403) == 1


@pytest.mark.parametrize(
    ("algorithm", "scheme"),
    [
        (SignatureAlgorithm.ps256, padding.PSS(padding.MGF1(hashes.SHA256()), 32)),
        (SignatureAlgorithm.rs256, padding.PKCS1v15()),
    ],
)
async def test_sign_verifies_with_the_certificate_key(
    emu: Emulator, algorithm: SignatureAlgorithm, scheme: padding.AsymmetricPadding
) -> None:
    stored = emu.vault.set_certificate("signer")
    app = emu.add_app("signer-app")
    emu.vault.grant(app, keys=["get", "sign"], certificates=["get"])
    assert emu.vault.permissions(app) == frozenset()  # keys/certificates only
    async with _certificates(emu, app) as certificates:
        certificate = await certificates.get_certificate("signer")
    assert certificate.key_id is not None
    async with _crypto(emu, app, certificate.key_id) as crypto:
        result = await crypto.sign(algorithm, DIGEST)
    assert result.key_id == f"{emu.vault.url}/keys/signer/{stored.version}"
    assert certificate.cer is not None
    _rsa_public(bytes(certificate.cer)).verify(
        result.signature, DIGEST, scheme, utils.Prehashed(hashes.SHA256())
    )
    signs = [r for r in emu.requests.filter("keyvault") if r.path.endswith("/sign")]
    assert [(r.method, r.status, r.client_id) for r in signs] == [("POST", 200, app.client_id)]


async def test_key_bundle_shape(emu: Emulator) -> None:
    stored = emu.vault.set_certificate("shown", exportable=False)
    app = emu.add_app("key-reader")
    emu.vault.grant(app, keys=["get"])
    credential = _credential(emu, app)
    async with credential, KeyClient(emu.vault.url, credential, **_options(emu)) as client:
        key = await client.get_key("shown")
        same = await client.get_key("shown", stored.version)
    assert key.id == same.id == f"{emu.vault.url}/keys/shown/{stored.version}"
    assert key.key_type == "RSA"
    assert set(key.key_operations) == {
        "sign",
        "verify",
        "wrapKey",
        "unwrapKey",
        "encrypt",
        "decrypt",
    }
    assert key.properties.managed is True
    assert key.properties.exportable is False
    assert key.key.d is None  # never the private half
    assert stored.certificate is not None
    public = stored.certificate.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert int.from_bytes(bytes(key.key.n or b""), "big") == public.public_numbers().n


async def test_sign_needs_the_sign_permission(emu: Emulator) -> None:
    stored = emu.vault.set_certificate("locked")
    app = emu.add_app("get-only")
    emu.vault.grant(app, keys=["get"])
    key_id = f"{emu.vault.url}/keys/locked/{stored.version}"
    async with _crypto(emu, app, key_id) as crypto:
        with pytest.raises(HttpResponseError) as excinfo:
            await crypto.sign(SignatureAlgorithm.ps256, DIGEST)
    assert excinfo.value.status_code == 403
    assert "does not have keys sign permission" in excinfo.value.message
    emu.vault.revoke(app, keys=["get"])
    assert emu.vault.permissions(app, "keys") == frozenset()


async def test_ec_certificate_signs_es256(emu: Emulator) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from aioentra.emulator.keyvault._material import VaultCertificate

    rsa_material = VaultCertificate.generate("CN=ec")
    builder = x509.CertificateBuilder().subject_name(rsa_material.certificate.subject)
    cert = (
        builder.issuer_name(rsa_material.certificate.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(rsa_material.not_before)
        .not_valid_after(rsa_material.not_after)
        .sign(key, hashes.SHA256())
    )
    stored = emu.vault.set_certificate(
        "ec-cert",
        key_pem=key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        cert_pem=cert.public_bytes(Encoding.PEM),
    )
    app = emu.add_app("ec-signer")
    emu.vault.grant(app, keys=["sign"])  # no keys/get: the client signs remotely without it
    async with _crypto(emu, app, f"{emu.vault.url}/keys/ec-cert/{stored.version}") as crypto:
        result = await crypto.sign(SignatureAlgorithm.es256, DIGEST)
    half = len(result.signature) // 2
    r, s = (int.from_bytes(result.signature[i : i + half], "big") for i in (0, half))
    key.public_key().verify(
        utils.encode_dss_signature(r, s), DIGEST, ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    )


async def test_non_exportable_certificate(emu: Emulator) -> None:
    """The secret holds the certificate only; the certificate and key views and sign work."""
    stored = emu.vault.set_certificate("hsm-like", exportable=False)
    app = emu.add_app("non-exportable")
    emu.vault.grant(app, ["get"], keys=["sign"], certificates=["get"])
    credential = _credential(emu, app)
    async with (
        credential,
        SecretClient(emu.vault.url, credential, **_options(emu)) as secrets,
        CertificateClient(emu.vault.url, credential, **_options(emu)) as certificates,
    ):
        secret = await secrets.get_secret("hsm-like")
        pem = await secrets.get_secret("hsm-like", out_content_type="application/x-pem-file")
        certificate = await certificates.get_certificate("hsm-like")
    assert secret.properties.managed is True
    assert secret.value is not None
    key, cert, others = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert key is None
    assert stored.certificate is not None
    assert [*([cert] if cert else []), *others] == [stored.certificate.certificate]
    assert pem.value is not None
    assert "PRIVATE KEY" not in pem.value
    assert pem.value.startswith("-----BEGIN CERTIFICATE-----")
    assert certificate.policy is not None
    assert certificate.policy.exportable is False
    assert certificate.key_id is not None
    async with _crypto(emu, app, certificate.key_id) as crypto:
        result = await crypto.sign(SignatureAlgorithm.ps256, DIGEST)
    assert result.key_id == f"{emu.vault.url}/keys/hsm-like/{stored.version}"
    _rsa_public(bytes(certificate.cer or b"")).verify(
        result.signature,
        DIGEST,
        padding.PSS(padding.MGF1(hashes.SHA256()), 32),
        utils.Prehashed(hashes.SHA256()),
    )
