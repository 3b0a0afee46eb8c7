"""A certificate's key as the keys API shows and uses it: its JWK and the sign operation.

Key Vault creates an addressable key with every certificate version, of the same name and
version (``about-certificates.md``); ``GET /keys/{name}/{version}`` shows its public half as
a JSON Web Key and ``POST /keys/{name}/{version}/sign`` signs a digest with the private half,
which never leaves the vault — the point of a non-exportable certificate.

Sign takes ``{"alg", "value": base64url(digest)}`` and answers ``{"kid", "value":
base64url(signature)}`` (azure-rest-api-specs ``Sign`` example). Algorithms
(``JsonWebKeySignatureAlgorithm``): ``RS256/384/512`` (PKCS#1 v1.5), ``PS256/384/512`` (PSS,
salt length = digest length, as RFC 7518 requires) on RSA keys, ``ES256/384/512`` on EC keys
(the raw ``r || s`` signature JWS uses). The digest must be the algorithm's hash length.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ._errors import KeyVaultError
from ._material import CertificateKey

__all__ = ["RSA_KEY_OPS", "b64url", "b64url_decode", "public_jwk", "sign_digest"]

RSA_KEY_OPS = ("sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt")
"""The ``key_ops`` of a certificate's RSA key (the service's recorded certificate keys)."""
_EC_KEY_OPS = ("sign", "verify")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of every binary field of the keys API."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; 400 ``BadParameter`` when it is not."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyVaultError.bad_parameter("The value is not valid base64url.") from None


def _int(value: int, length: int | None = None) -> str:
    size = length or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(size, "big"))


def public_jwk(key: CertificateKey, kid: str) -> dict[str, object]:
    """The ``JsonWebKey`` of ``key``'s public half, named ``kid``."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kid": kid,
            "kty": "RSA",
            "key_ops": list(RSA_KEY_OPS),
            "n": _int(numbers.n),
            "e": _int(numbers.e),
        }
    point = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    return {
        "kid": kid,
        "kty": "EC",
        "key_ops": list(_EC_KEY_OPS),
        "crv": _CURVES.get(key.curve.name, key.curve.name),
        "x": _int(point.x, size),
        "y": _int(point.y, size),
    }


def sign_digest(key: CertificateKey, algorithm: str, digest: bytes) -> bytes:
    """Sign a precomputed ``digest`` the way the service's sign operation does."""
    family, bits = algorithm[:2].upper(), algorithm[2:]
    hash_type = _HASHES.get(bits)
    if hash_type is None or family not in ("RS", "PS", "ES"):
        raise KeyVaultError.bad_parameter(f"Unsupported signature algorithm: {algorithm}.")
    chosen = hash_type()
    if len(digest) != chosen.digest_size:
        raise KeyVaultError.bad_parameter(
            f"Invalid digest length {len(digest)} for algorithm {algorithm}: "
            f"expected {chosen.digest_size} bytes."
        )
    prehashed = utils.Prehashed(chosen)
    if isinstance(key, rsa.RSAPrivateKey) and family in ("RS", "PS"):
        scheme: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if family == "RS"
            else padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=chosen.digest_size)
        )
        return key.sign(digest, scheme, prehashed)
    if isinstance(key, ec.EllipticCurvePrivateKey) and family == "ES":
        r, s = utils.decode_dss_signature(key.sign(digest, ec.ECDSA(prehashed)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise KeyVaultError.bad_parameter(
        f"The signature algorithm {algorithm} does not fit this key's type."
    )
