"""The emulator's token-signing keys: RS256 signing, the JWKS document and signature verification.

Entra signs access tokens with RS256 and names the key by ``kid`` in the header (v1.0 tokens also
by ``x5t``, the same value); resource servers look the key up in ``/{tenant}/discovery/v2.0/keys``
(or the v1 ``/{tenant}/discovery/keys``), whose entries carry ``kid``, ``x5t``, ``n``, ``e``,
``x5c`` and ``issuer`` (protocol-facts §3). One :class:`SigningKeys` ring serves every tenant of
an emulator: the current key signs, the published keys (the current one and, after a rotation
with ``keep_previous``, the one before it) verify and make up the JWKS.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .._certs import b64url

__all__ = ["SigningKey", "SigningKeys"]


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

    def sign(self, claims: Mapping[str, Any], *, x5t: bool = False) -> str:
        """A compact RS256 JWT with header ``{"typ": "JWT", "alg": "RS256", "kid": ...}``;
        ``x5t=True`` adds ``"x5t"`` (= ``kid``), as in Entra's v1.0 tokens."""
        headers = {"typ": "JWT", "kid": self.kid}
        if x5t:
            headers["x5t"] = self.kid
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers=headers)

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


class SigningKeys:
    """The emulator's signing key ring: one current key signs, the published keys verify.

    Thread-safe: :meth:`rotate` may run on another thread while the server signs and verifies.
    A rotation generates a new RSA key (outside the lock) and makes it current; with
    ``keep_previous`` the key it replaces stays published, so tokens it signed still verify and
    the JWKS lists both (newest first); without, only the new key is published. Only the one
    previous key is kept: a second rotation drops the key from before the first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current = SigningKey()
        self._previous: SigningKey | None = None

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._current

    @property
    def kid(self) -> str:
        """The ``kid`` of the key tokens are signed with now."""
        return self.current.kid

    @property
    def published(self) -> tuple[SigningKey, ...]:
        """The keys the JWKS lists and tokens verify with: the current one first."""
        with self._lock:
            if self._previous is None:
                return (self._current,)
            return (self._current, self._previous)

    def rotate(self, *, keep_previous: bool = True) -> str:
        """A new current key; returns its ``kid``."""
        new = SigningKey()
        with self._lock:
            self._previous = self._current if keep_previous else None
            self._current = new
        return new.kid

    def sign(self, claims: Mapping[str, Any], *, x5t: bool = False) -> str:
        """Sign with the current key (see :meth:`SigningKey.sign`)."""
        return self.current.sign(claims, x5t=x5t)

    def verify(self, token: str) -> dict[str, Any]:
        """Check the RS256 signature with the published key the header's ``kid`` names; raises
        PyJWT errors (``InvalidSignatureError`` for a key that is not, or no longer, published).
        """
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = next((k for k in self.published if k.kid == kid), None)
        if key is None:
            raise jwt.InvalidSignatureError(f"unknown signing key id {kid!r}")
        return key.verify(token)

    def jwk(self, issuer: str) -> dict[str, Any]:
        """The JWKS entry of the current key."""
        return self.current.jwk(issuer)

    def jwks(self, issuer: str) -> dict[str, Any]:
        """The JWKS document: every published key, the current one first."""
        return {"keys": [key.jwk(issuer) for key in self.published]}
