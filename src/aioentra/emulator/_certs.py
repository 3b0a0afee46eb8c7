"""X.509 material: the emulator's private CA and TLS certificate, and app credential certificates.

The real clients only talk HTTPS (msal refuses ``http://`` authorities, azure-identity refuses
non-TLS authority hosts, protocol-facts §2.2/§2.3), so the emulator mints a throw-away CA per
instance and a server certificate whose subjectAltName covers ``localhost``, ``127.0.0.1`` and
``::1``. App certificates are registered by their SHA-1 (``x5t``) and SHA-256 (``x5t#S256``)
thumbprints, which is how Entra finds the key that signed a client assertion (protocol-facts §1.5).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "CertificateMaterial", "b64url", "thumbprint_key"]


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\s*", re.DOTALL)


def b64url(data: bytes) -> str:
    """Unpadded base64url, the JOSE encoding of thumbprints and key parameters."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint_key(value: str) -> str:
    """Normalise a received ``x5t``/``x5t#S256`` header: clients send it padded or unpadded."""
    return value.strip().rstrip("=")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class CertificateMaterial:
    """A certificate credential: the public certificate and, when generated here, its private key.

    ``private_key_pem`` is ``None`` for a certificate registered from a public PEM only. The
    thumbprints are the values a client assertion names in its ``x5t`` (SHA-1) or ``x5t#S256``
    (SHA-256) header, unpadded base64url.

    Attributes:
        certificate_pem: The public X.509 certificate, PEM.
        private_key_pem: Its private key (PKCS#8 PEM, unencrypted), or ``None`` when only the
            certificate is known; never shown by ``repr``.
    """

    certificate_pem: bytes
    private_key_pem: bytes | None = field(default=None, repr=False)

    @classmethod
    def generate(
        cls, common_name: str = "aioentra-emulator-app", *, days: int = 365
    ) -> CertificateMaterial:
        """Generate an RSA-2048 key and a self-signed certificate for it.

        Entra accepts self-signed app certificates: what it checks is that a client assertion's
        ``x5t``/``x5t#S256`` names a registered certificate and that its key signed the
        assertion. The certificate is valid from five minutes ago (some clock skew) for
        ``days`` days, signed with SHA-256.

        Args:
            common_name: The subject (and issuer) common name.
            days: Validity from now, in days.

        Returns:
            The certificate with its private key.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        return cls(
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            private_key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    @classmethod
    def from_pem(
        cls, certificate_pem: bytes, private_key_pem: bytes | None = None
    ) -> CertificateMaterial:
        """Wrap an existing PEM certificate (and optional PEM private key); validates both parse."""
        x509.load_pem_x509_certificate(certificate_pem)
        if private_key_pem is not None:
            serialization.load_pem_private_key(private_key_pem, password=None)
        return cls(certificate_pem=certificate_pem, private_key_pem=private_key_pem)

    @classmethod
    def from_pem_bundle(cls, data: bytes) -> CertificateMaterial:
        """A PEM public certificate, optionally bundled with its (unencrypted) private key."""
        blocks = {m.group(1).decode(): m.group(0) for m in _PEM_BLOCK.finditer(data)}
        cert = blocks.get("CERTIFICATE")
        if cert is None:
            raise ValueError("no PEM CERTIFICATE block found")
        key = next((v for k, v in blocks.items() if k.endswith("PRIVATE KEY")), None)
        return cls.from_pem(cert, key)

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate (``cryptography``'s ``x509.Certificate``)."""
        return x509.load_pem_x509_certificate(self.certificate_pem)

    @property
    def der(self) -> bytes:
        """The certificate in DER, the bytes the thumbprints hash (and ``x5c`` carries)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def sha1_thumbprint(self) -> str:
        """Hex SHA-1 thumbprint, the form msal's ``{"thumbprint": ...}`` credential takes."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1

    @property
    def x5t(self) -> str:
        """The SHA-1 thumbprint as unpadded base64url, an RS256 assertion's ``x5t`` header."""
        return b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1

    @property
    def x5t_s256(self) -> str:
        """The SHA-256 thumbprint as unpadded base64url, a PS256 assertion's ``x5t#S256``."""
        return b64url(self.certificate.fingerprint(hashes.SHA256()))

    def pem_bundle(self) -> bytes:
        """Private key followed by the certificate: what ``CertificateCredential`` reads from a
        file.
        """
        if self.private_key_pem is None:
            raise ValueError("this certificate has no private key")
        return self.private_key_pem + self.certificate_pem

    def pfx(self, password: bytes | None = None) -> bytes:
        """PKCS#12 bytes (``private_key_pfx_path`` for msal, ``.pfx`` for azure-identity)."""
        if self.private_key_pem is None:
            raise ValueError("this certificate has no private key")
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise TypeError("unsupported private key type")
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            b"aioentra", key, self.certificate, None, encryption
        )


class CertificateAuthority:
    """A per-emulator CA (EC P-256: fast to generate) and the loopback server certificate it
    signs.
    """

    def __init__(self, extra_names: Sequence[str] = ()) -> None:
        now = _now()
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("aioentra emulator CA"))
            .issuer_name(_name("aioentra emulator CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.server_cert_pem, self.server_key_pem = self._issue_server(extra_names)

    def _issue_server(self, extra_names: Sequence[str]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.DNSName(n) for n in extra_names if n != "localhost"]
        names += [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def write_files(self, directory: str) -> ssl.SSLContext:
        """Write ``ca.pem`` into ``directory`` and return the server's TLS context.

        The server key is written only long enough for ``load_cert_chain`` (which needs a file) and
        is deleted again.
        """
        folder = Path(directory)
        (folder / "ca.pem").write_bytes(self.ca_pem)
        cert, key = folder / "server.pem", folder / "server-key.pem"
        cert.write_bytes(self.server_cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.server_key_pem)
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        finally:
            key.unlink()
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client :class:`ssl.SSLContext` trusting only this CA."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
