"""Key and certificate material behind a certificate-backed Key Vault secret.

A Key Vault certificate's secret (``GET /secrets/{certName}``) carries the private key
and the certificate in one of two forms (protocol-facts §4.2, ``about-certificates.md``):

* ``application/x-pkcs12`` — standard base64 of a **password-less** PFX;
* ``application/x-pem-file`` — a PKCS#8 ``PRIVATE KEY`` block followed by the
  ``CERTIFICATE`` block(s).

``outContentType=application/x-pem-file`` converts a PFX secret to PEM on the way out
("only PFX to PEM conversion is supported"). The secret's ``nbf``/``exp`` mirror the
X.509 validity window.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

__all__ = ["PEM", "PKCS12", "CertificateKey", "VaultCertificate"]

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"

CertificateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""Key types Key Vault certificates use (RSA and EC)."""


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _subject(subject: str) -> x509.Name:
    """Parse ``"CN=app,O=Org"`` (RFC 4514 string) into an X.509 name."""
    return x509.Name.from_rfc4514_string(subject)


@dataclass(frozen=True)
class VaultCertificate:
    """A private key with its certificate (and optional chain), convertible to PFX or PEM."""

    key: CertificateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def generate(
        cls,
        subject: str = "CN=aioentra-emulator",
        *,
        validity: timedelta = timedelta(days=365),
        key_size: int = 2048,
        now: datetime | None = None,
    ) -> VaultCertificate:
        """Create an RSA key and a self-signed certificate, like a ``Self``-issuer policy."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        start = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        name = _subject(subject)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(uuid.uuid4().int >> 1)
            .not_valid_before(start - timedelta(minutes=5))
            .not_valid_after(start + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=True,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, certificate=certificate)

    @classmethod
    def from_pem(cls, key_pem: bytes | str, cert_pem: bytes | str) -> VaultCertificate:
        """Load a PEM private key (unencrypted) and one or more PEM certificates, leaf first."""
        key = serialization.load_pem_private_key(_as_bytes(key_pem), password=None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("Key Vault certificates use RSA or EC keys.")
        certificates = x509.load_pem_x509_certificates(_as_bytes(cert_pem))
        return cls(key=key, certificate=certificates[0], chain=tuple(certificates[1:]))

    @classmethod
    def from_pfx(cls, pfx: bytes, password: bytes | None = None) -> VaultCertificate:
        """Load a PKCS#12 bundle; it must hold a private key and its certificate."""
        key, certificate, chain = pkcs12.load_key_and_certificates(pfx, password)
        if certificate is None or key is None:
            raise ValueError("The PFX must contain a private key and its certificate.")
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("Key Vault certificates use RSA or EC keys.")
        return cls(key=key, certificate=certificate, chain=tuple(chain))

    @property
    def not_before(self) -> datetime:
        """Start of the certificate's validity (the secret's ``nbf``)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """End of the certificate's validity (the secret's ``exp``)."""
        return self.certificate.not_valid_after_utc

    def pfx(self, *, with_key: bool = True) -> bytes:
        """The password-less PKCS#12 bundle Key Vault exports (no key unless ``with_key``)."""
        return pkcs12.serialize_key_and_certificates(
            name=None,
            key=self.key if with_key else None,
            cert=self.certificate,
            cas=list(self.chain) or None,
            encryption_algorithm=serialization.NoEncryption(),
        )

    def pem(self, *, with_key: bool = True) -> str:
        """PKCS#8 private key block (unless ``with_key`` is false), then the certificate and its
        chain, leaf first."""
        key = (
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            if with_key
            else ""
        )
        certificates = "".join(
            item.public_bytes(serialization.Encoding.PEM).decode()
            for item in (self.certificate, *self.chain)
        )
        return key + certificates

    def secret_value(self, content_type: str, *, with_key: bool = True) -> str:
        """The secret ``value`` for ``content_type``: base64 PFX or PEM text.

        ``with_key=False`` is a non-exportable certificate's secret: "the private key isn't a
        part of the value when it's retrieved as a secret" (``about-certificates.md``).
        """
        if content_type == PKCS12:
            return base64.b64encode(self.pfx(with_key=with_key)).decode()
        if content_type == PEM:
            return self.pem(with_key=with_key)
        raise ValueError(f"Certificate secrets are {PKCS12!r} or {PEM!r}, not {content_type!r}.")
