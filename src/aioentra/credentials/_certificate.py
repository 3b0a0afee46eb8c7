"""A certificate credential: a client assertion signed with the app's private key.

Implements the Microsoft identity platform's certificate credential rules: the
JWT header names the certificate by its SHA-256 thumbprint (``x5t#S256``) and is
signed with PS256 (the legacy form, RS256 with the SHA-1 ``x5t``, is an option);
``aud`` is the token endpoint, ``iss`` = ``sub`` = the client id, with a fresh
``jti`` and a short lifetime. ``x5c`` (the chain) is sent for subject name +
issuer authentication when asked for.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
import uuid
from collections.abc import Sequence
from typing import Literal

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .._errors import ConfigurationError, raises_cleanly
from ._base import AssertionContext, Proof, ProofKind

__all__ = ["Certificate", "KeyWithThumbprint"]

Algorithm = Literal["PS256", "RS256"]
_ASSERTION_LIFETIME = 600  # seconds; Entra advises 5-10 minutes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _password_bytes(password: str | bytes | None) -> bytes | None:
    if password is None or password == "" or password == b"":
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, bytes):
        return password
    raise ConfigurationError(
        f"the certificate password must be a string, not {type(password).__name__}",
        hint='quote it in JSON ("CertificatePassword": "1234"), or pass a str.',
    )


def _pem_bytes(data: bytes | str, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        try:
            return data.encode("ascii")
        except UnicodeEncodeError:
            raise ConfigurationError(f"the {what} PEM holds non-ASCII characters") from None
    raise ConfigurationError(f"the {what} PEM must be bytes or str, not {type(data).__name__}")


class Certificate:
    """An RSA private key and its X.509 certificate (plus an optional chain).

    Build one with :meth:`from_pem`, :meth:`from_pfx` or :meth:`from_file`. The key
    and certificate are checked when the object is built: the key must be RSA and
    match the certificate, and the certificate must be within its validity period.

    >>> cert = Certificate.from_file("app.pfx", password="...")  # doctest: +SKIP
    >>> cert.thumbprint_sha256  # doctest: +SKIP
    'q8YwKp...'
    """

    proof_kinds: frozenset[ProofKind] = frozenset({"client_assertion"})

    @raises_cleanly
    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        send_certificate_chain: bool = False,
        algorithm: Algorithm = "PS256",
        now: dt.datetime | None = None,
    ) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                "the certificate's private key is not an RSA key",
                hint="Entra client assertions are signed with RSA (PS256/RS256): use an RSA key.",
            )
        if not isinstance(certificate, x509.Certificate) or not all(
            isinstance(c, x509.Certificate) for c in chain
        ):
            raise ConfigurationError(
                "Certificate() takes cryptography x509.Certificate objects",
                hint="use Certificate.from_file(), from_pem() or from_pfx() to load files.",
            )
        if algorithm not in ("PS256", "RS256"):
            raise ConfigurationError(f"unsupported signing algorithm {algorithm!r}")
        if private_key.public_key().public_numbers() != _rsa_numbers(certificate):
            raise ConfigurationError(
                "the private key does not match the certificate",
                hint="use the key the certificate was issued for (check the files' pairing).",
            )
        _check_validity(certificate, now or dt.datetime.now(dt.timezone.utc))
        self._key = private_key
        self._certificate = certificate
        self._chain = tuple(chain)
        self._algorithm: Algorithm = algorithm
        self._send_chain = send_certificate_chain
        der = certificate.public_bytes(serialization.Encoding.DER)
        self.thumbprint_sha256 = _b64url(_digest(hashes.SHA256(), der))
        """Base64url SHA-256 thumbprint (the ``x5t#S256`` header)."""
        self.thumbprint_sha1 = _digest(hashes.SHA1(), der).hex().upper()  # noqa: S303
        """Hex SHA-1 thumbprint, as the Azure portal shows it."""
        self._x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in (certificate, *self._chain)
        ]

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    @raises_cleanly
    def from_pem(
        cls,
        data: bytes | str,
        *,
        key: bytes | str | None = None,
        password: str | bytes | None = None,
        send_certificate_chain: bool = False,
        algorithm: Algorithm = "PS256",
    ) -> Certificate:
        """From PEM text with the certificate (and chain) and, unless ``key`` is given, the key."""
        raw = _pem_bytes(data, "certificate")
        key_raw = raw if key is None else _pem_bytes(key, "private key")
        secret = _password_bytes(password)
        try:
            certs = x509.load_pem_x509_certificates(raw)
        except ValueError:
            raise ConfigurationError(
                "no PEM certificate found",
                hint="the PEM must contain a '-----BEGIN CERTIFICATE-----' block.",
            ) from None
        try:
            private_key = serialization.load_pem_private_key(key_raw, secret)
        except TypeError:
            raise ConfigurationError(
                "the private key is encrypted and needs a password (or got one it does not need)",
                hint="pass password= (AZURE_CLIENT_CERTIFICATE_PASSWORD).",
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise ConfigurationError(
                "the private key could not be read (no PEM key block, or a wrong password)",
                hint="give the PEM private key and the right password.",
            ) from None
        return cls._assemble(private_key, certs, send_certificate_chain, algorithm)

    @classmethod
    @raises_cleanly
    def from_pfx(
        cls,
        data: bytes,
        *,
        password: str | bytes | None = None,
        send_certificate_chain: bool = False,
        algorithm: Algorithm = "PS256",
    ) -> Certificate:
        """From PKCS#12 (PFX) bytes."""
        if not isinstance(data, bytes):
            raise ConfigurationError(f"the PFX must be bytes, not {type(data).__name__}")
        secret = _password_bytes(password)
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(
                "the PFX could not be read: wrong password or not a PKCS#12 file",
                hint="check the password (AZURE_CLIENT_CERTIFICATE_PASSWORD) and the file.",
            ) from None
        if key is None or cert is None:
            raise ConfigurationError(
                "the PFX holds no private key and certificate pair",
                hint="export the certificate with its private key.",
            )
        return cls._assemble(key, [cert, *extra], send_certificate_chain, algorithm)

    @classmethod
    @raises_cleanly
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        password: str | bytes | None = None,
        key_path: str | os.PathLike[str] | None = None,
        send_certificate_chain: bool = False,
        algorithm: Algorithm = "PS256",
    ) -> Certificate:
        """From a PEM or PFX file (detected by content); ``key_path`` for a separate PEM key."""
        data = _read(path, "certificate")
        if b"-----BEGIN" in data:
            key = _read(key_path, "private key") if key_path is not None else None
            return cls.from_pem(
                data,
                key=key,
                password=password,
                send_certificate_chain=send_certificate_chain,
                algorithm=algorithm,
            )
        return cls.from_pfx(
            data,
            password=password,
            send_certificate_chain=send_certificate_chain,
            algorithm=algorithm,
        )

    @classmethod
    def _assemble(
        cls,
        key: object,
        certs: Sequence[x509.Certificate],
        send_chain: bool,
        algorithm: Algorithm,
    ) -> Certificate:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                "the certificate's private key is not an RSA key",
                hint="Entra client assertions are signed with RSA (PS256/RS256): use an RSA key.",
            )
        numbers = key.public_key().public_numbers()
        leaf = next((c for c in certs if _rsa_numbers(c) == numbers), None)
        if leaf is None:
            raise ConfigurationError(
                "the private key does not match any certificate in the file",
                hint="use the key the certificate was issued for (check the files' pairing).",
            )
        chain = [c for c in certs if c is not leaf]
        return cls(key, leaf, chain, send_certificate_chain=send_chain, algorithm=algorithm)

    # -- properties ---------------------------------------------------------------------------

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def not_valid_after(self) -> dt.datetime:
        return self._certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self._certificate.subject.rfc4514_string()

    def __repr__(self) -> str:
        certificate = getattr(self, "_certificate", None)
        if certificate is None:
            return "Certificate(<not loaded>)"
        return (
            f"Certificate(subject={self.subject!r}, x5t#S256={self.thumbprint_sha256!r}, "
            f"algorithm={self._algorithm!r}, not_valid_after="
            f"{self.not_valid_after.isoformat()!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Certificate cannot be pickled: it would copy the private key")

    # -- the credential -----------------------------------------------------------------------

    def get_proof(self, context: AssertionContext) -> Proof:
        """A client assertion for ``context`` (CPU only; runs in a worker thread)."""
        return Proof.assertion(self.get_assertion(context))

    def get_assertion(self, context: AssertionContext) -> str:
        """Sign a client assertion for ``context``: also usable with other libraries'
        assertion credentials."""
        claims = _assertion_claims(context)
        headers: dict[str, object] = {"typ": "JWT"}
        if self._algorithm == "PS256":
            headers["x5t#S256"] = self.thumbprint_sha256
        else:
            sha1 = bytes.fromhex(self.thumbprint_sha1)
            headers["x5t"] = _b64url(sha1)
        if self._send_chain:
            headers["x5c"] = self._x5c
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers=headers)


def _assertion_claims(context: AssertionContext) -> dict[str, object]:
    """RFC 7523 client-assertion claims as Entra requires them: ``aud`` = the token
    endpoint, ``iss`` = ``sub`` = the client id, a fresh ``jti``, a short lifetime."""
    now = int(time.time())
    return {
        "aud": context.token_endpoint,
        "iss": context.client_id,
        "sub": context.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + _ASSERTION_LIFETIME,
    }


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _rsa_numbers(certificate: x509.Certificate) -> object:
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_numbers()
    return None


def _check_validity(certificate: x509.Certificate, now: dt.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise ConfigurationError(
            f"the certificate is not valid before {certificate.not_valid_before_utc.isoformat()}",
            hint="check this machine's clock or use a certificate that is valid now.",
        )
    if now > certificate.not_valid_after_utc:
        raise ConfigurationError(
            f"the certificate expired on {certificate.not_valid_after_utc.isoformat()}",
            hint="create a new certificate and register its public part on the app.",
        )


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(f"the {what} file path must be a str or a path")
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigurationError(
            f"{what} file {name!r} does not exist",
            hint="check the path (AZURE_CLIENT_CERTIFICATE_PATH).",
        ) from None
    except IsADirectoryError:
        raise ConfigurationError(
            f"{what} file {name!r} is a directory", hint="give the file's path."
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(
            f"{what} file {name!r} cannot be read: {reason}",
            hint="check the file's permissions.",
        ) from None
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} file path {name!r} is not a valid path") from None


class KeyWithThumbprint:
    """A private key plus the SHA-1 thumbprint of its certificate (msal's legacy form).

    This is what msal's ``parameters.json`` samples configure (``thumbprint`` +
    ``private_key_file``): without the certificate nothing can be checked but the
    key, and the assertion uses RS256 with the SHA-1 ``x5t`` header. Prefer
    :class:`Certificate`, which reads the certificate and uses SHA-256.
    """

    proof_kinds: frozenset[ProofKind] = frozenset({"client_assertion"})

    @raises_cleanly
    def __init__(
        self, private_key: bytes | str, thumbprint: str, *, password: str | bytes | None = None
    ) -> None:
        raw = _pem_bytes(private_key, "private key")
        secret = _password_bytes(password)
        try:
            key = serialization.load_pem_private_key(raw, secret)
        except (TypeError, ValueError, UnsupportedAlgorithm):
            raise ConfigurationError(
                "the private key could not be read (no PEM key block, or a wrong password)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError("the private key is not an RSA key")
        if not isinstance(thumbprint, str):
            raise ConfigurationError("the thumbprint must be a string of 40 hex digits")
        cleaned = thumbprint.replace(":", "").replace(" ", "")
        try:
            digest = bytes.fromhex(cleaned)
        except ValueError:
            digest = b""
        if len(digest) != 20:
            raise ConfigurationError(
                "the thumbprint is not a SHA-1 hex thumbprint (40 hex digits)",
                hint="copy the certificate's thumbprint from the app registration.",
            )
        self._key = key
        self._x5t = _b64url(digest)
        self.thumbprint_sha1 = cleaned.upper()

    def get_proof(self, context: AssertionContext) -> Proof:
        """A client assertion for ``context`` (RS256, SHA-1 ``x5t``)."""
        return Proof.assertion(self.get_assertion(context))

    def get_assertion(self, context: AssertionContext) -> str:
        claims = _assertion_claims(context)
        headers = {"typ": "JWT", "x5t": self._x5t}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    def __repr__(self) -> str:
        return f"KeyWithThumbprint(x5t={getattr(self, 'thumbprint_sha1', '<not loaded>')!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("KeyWithThumbprint cannot be pickled: it would copy the private key")
