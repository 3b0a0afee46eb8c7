"""The emulator's token-signing key: RS256 signing, the JWKS document and signature verification.

Entra signs v2 access tokens with RS256 and names the key by ``kid`` in the header; resource servers
look the key up in ``/{tenant}/discovery/v2.0/keys``, whose entries carry ``kid``, ``x5t``, ``n``,
``e``, ``x5c`` and ``issuer`` (protocol-facts §3). One key serves every tenant of an emulator.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .._certs import b64url

__all__ = ["SigningKey"]


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """An RSA-2048 key with a self-signed certificate (for ``x5c``/``x5t``), ``kid = x5t``."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.timezone.utc)
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "aioentra emulator token signing")]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self._key, hashes.SHA256())
        )
        self._der = cert.public_bytes(serialization.Encoding.DER)
        self.kid = b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by definition
        self.public_key = self._key.public_key()

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact RS256 JWT with header ``{"typ": "JWT", "alg": "RS256", "kid": ...}``."""
        return jwt.encode(
            dict(claims), self._key, algorithm="RS256", headers={"typ": "JWT", "kid": self.kid}
        )

    def verify(self, token: str) -> dict[str, Any]:
        """Check the RS256 signature only (claims are the caller's business); raises PyJWT
        errors.
        """
        header = jwt.get_unverified_header(token)
        if header.get("kid") != self.kid:
            raise jwt.InvalidSignatureError(f"unknown signing key id {header.get('kid')!r}")
        claims: dict[str, Any] = jwt.decode(
            token,
            self.public_key,
            algorithms=["RS256"],
            options={
                "verify_signature": True,
                "verify_aud": False,
                "verify_iss": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
        return claims

    def jwk(self, issuer: str) -> dict[str, Any]:
        """The JWKS entry for this key, with the Entra ``issuer`` property."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "x5c": [base64.b64encode(self._der).decode("ascii")],
            "issuer": issuer,
        }
