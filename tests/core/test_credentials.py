"""Credential forms: loading, validation, and the assertions they produce."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aioentra import (
    AssertionContext,
    Certificate,
    ClientAssertion,
    ClientSecret,
    ConfigurationError,
    Credential,
    KeyWithThumbprint,
    Proof,
)

from .certs import cert_pem, key_pem, make_certificate, pfx

CONTEXT = AssertionContext(
    client_id="11111111-2222-3333-4444-555555555555",
    token_endpoint="https://login.example/tenant/oauth2/v2.0/token",
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _verify(
    assertion: str, cert_der: bytes, public_key: object, algorithm: str
) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        assertion,
        public_key,
        algorithms=[algorithm],
        audience=CONTEXT.token_endpoint,  # type: ignore[arg-type]
    )
    assert claims["iss"] == claims["sub"] == CONTEXT.client_id
    assert isinstance(claims["exp"], int) and 0 < claims["exp"] - time.time() <= 600
    assert claims["jti"]
    return claims


def test_client_secret_is_a_secret_credential() -> None:
    secret = ClientSecret("value")
    assert isinstance(secret, Credential)
    assert secret.get_proof(CONTEXT) == Proof.secret("value")
    assert secret.proof_kinds == {"client_secret"}
    with pytest.raises(ConfigurationError, match="empty"):
        ClientSecret("  ")


def test_certificate_from_pem_signs_ps256_with_sha256_thumbprint() -> None:
    key, cert = make_certificate()
    credential = Certificate.from_pem(key_pem(key) + cert_pem(cert))
    assert isinstance(credential, Credential)
    assert credential.get_proof(CONTEXT).kind == "client_assertion"
    der = cert.public_bytes(serialization.Encoding.DER)
    assertion = credential.get_assertion(CONTEXT)
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "PS256"
    assert header["x5t#S256"] == _b64url(hashlib.sha256(der).digest())
    assert "x5c" not in header and "x5t" not in header
    _verify(assertion, der, cert.public_key(), "PS256")
    assert credential.get_assertion(CONTEXT) != assertion  # a fresh jti every time


def test_certificate_rs256_uses_sha1_x5t() -> None:
    key, cert = make_certificate()
    credential = Certificate.from_pem(cert_pem(cert), key=key_pem(key), algorithm="RS256")
    assertion = credential.get_assertion(CONTEXT)
    der = cert.public_bytes(serialization.Encoding.DER)
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    assert header["x5t"] == _b64url(hashlib.sha1(der).digest())
    _verify(assertion, der, cert.public_key(), "RS256")


def test_pfx_with_password_and_chain_sends_x5c(tmp_path: Path) -> None:
    ca_key, ca_cert = make_certificate(name="test-ca")
    key, cert = make_certificate(issuer=(ca_cert, ca_key))  # type: ignore[arg-type]
    path = tmp_path / "app.pfx"
    path.write_bytes(pfx(key, cert, [ca_cert], password=b"pw"))  # type: ignore[arg-type]
    credential = Certificate.from_file(path, password="pw", send_certificate_chain=True)
    header = jwt.get_unverified_header(credential.get_assertion(CONTEXT))
    assert header["x5c"] == [
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
        for c in (cert, ca_cert)
    ]
    assert credential.subject == "CN=aioentra-test"
    with pytest.raises(ConfigurationError, match="wrong password"):
        Certificate.from_file(path, password="nope")


def test_encrypted_pem_key_needs_its_password(tmp_path: Path) -> None:
    key, cert = make_certificate()
    path = tmp_path / "app.pem"
    path.write_bytes(key_pem(key, password=b"pw") + cert_pem(cert))
    with pytest.raises(ConfigurationError, match="password"):
        Certificate.from_file(path)
    assert Certificate.from_file(path, password="pw").thumbprint_sha256


def test_separate_key_file(tmp_path: Path) -> None:
    key, cert = make_certificate()
    (tmp_path / "c.pem").write_bytes(cert_pem(cert))
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    assert Certificate.from_file(tmp_path / "c.pem", key_path=tmp_path / "k.pem")


def test_key_not_matching_certificate_is_refused() -> None:
    key, _ = make_certificate()
    _, other_cert = make_certificate()
    with pytest.raises(ConfigurationError, match="does not match") as info:
        Certificate.from_pem(key_pem(key) + cert_pem(other_cert))
    assert "pairing" in (info.value.hint or "")


def test_expired_and_not_yet_valid_certificates_are_reported() -> None:
    key, cert = make_certificate(days_valid=(-30, -1))
    with pytest.raises(ConfigurationError, match="expired on"):
        Certificate.from_pem(key_pem(key) + cert_pem(cert))
    key, cert = make_certificate(days_valid=(2, 30))
    with pytest.raises(ConfigurationError, match="not valid before"):
        Certificate.from_pem(key_pem(key) + cert_pem(cert))


def test_non_rsa_keys_are_refused() -> None:
    key, cert = make_certificate(key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ConfigurationError, match="not an RSA key"):
        Certificate.from_pem(key_pem(key) + cert_pem(cert))


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        Certificate.from_file(tmp_path / "missing.pfx")
    assert "AZURE_CLIENT_CERTIFICATE_PATH" in (info.value.hint or "")
    with pytest.raises(ConfigurationError, match="no PEM certificate"):
        Certificate.from_pem(b"-----BEGIN NOTHING-----\n")
    (tmp_path / "garbage.pfx").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigurationError, match="PKCS#12"):
        Certificate.from_file(tmp_path / "garbage.pfx")


def test_private_keys_do_not_leak() -> None:
    key, cert = make_certificate()
    credential = Certificate.from_pem(key_pem(key) + cert_pem(cert))
    assert "PRIVATE" not in repr(credential)
    assert credential.thumbprint_sha256 in repr(credential)
    with pytest.raises(TypeError):
        pickle.dumps(credential)


def test_key_with_thumbprint_is_msal_legacy_form() -> None:
    key, cert = make_certificate()
    der = cert.public_bytes(serialization.Encoding.DER)
    thumbprint = hashlib.sha1(der).hexdigest()
    credential = KeyWithThumbprint(key_pem(key), thumbprint)
    assertion = credential.get_assertion(CONTEXT)
    assert jwt.get_unverified_header(assertion)["x5t"] == _b64url(bytes.fromhex(thumbprint))
    _verify(assertion, der, cert.public_key(), "RS256")
    with pytest.raises(ConfigurationError, match="SHA-1"):
        KeyWithThumbprint(key_pem(key), "abc")


def test_client_assertion_from_sync_callable_with_and_without_context() -> None:
    seen: list[AssertionContext] = []

    def with_context(context: AssertionContext) -> str:
        seen.append(context)
        return "a.b.c"

    assert ClientAssertion(with_context).get_proof(CONTEXT) == Proof.assertion("a.b.c")
    assert seen == [CONTEXT]
    assert ClientAssertion(lambda: " x.y.z\n").get_proof(CONTEXT) == Proof.assertion("x.y.z")
    with pytest.raises(ConfigurationError, match="did not return a JWT"):
        ClientAssertion(lambda: "not-a-jwt").get_proof(CONTEXT)
    with pytest.raises(ConfigurationError, match="callable"):
        ClientAssertion("a.b.c")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_client_assertion_from_async_callable() -> None:
    async def source(context: AssertionContext) -> str:
        return f"h.{context.client_id}.s"

    result = ClientAssertion(source).get_proof(CONTEXT)
    assert not isinstance(result, Proof)
    assert await result == Proof.assertion(f"h.{CONTEXT.client_id}.s")


def test_client_assertion_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one.two.three\n")
    credential = ClientAssertion.from_file(path)
    assert credential.get_proof(CONTEXT) == Proof.assertion("one.two.three")
    path.write_text("four.five.six-longer\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert credential.get_proof(CONTEXT) == Proof.assertion("four.five.six-longer")
    assert str(path) in repr(credential)
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        ClientAssertion.from_file(tmp_path / "missing")
    assert "AZURE_FEDERATED_TOKEN_FILE" in (info.value.hint or "")
