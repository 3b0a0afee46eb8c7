"""JSON shapes of a certificate and of its key: ``CertificateBundle`` and ``KeyBundle``.

Both are views of one certificate-backed secret version (a certificate, its key and its
secret share name and version, ``about-certificates.md``):

* ``CertificateBundle`` (azure-rest-api-specs ``GetCertificate``; protocol-facts §4.2):
  ``id`` = ``{vault}/certificates/{name}/{version}``, ``kid`` = ``{vault}/keys/{name}/{version}``,
  ``sid`` = ``{vault}/secrets/{name}/{version}``, ``x5t`` (unpadded base64url SHA-1 of the DER),
  ``cer`` (standard base64 DER), ``attributes`` (``enabled``, ``nbf``/``exp`` = the X.509
  validity, ``created``, ``updated``, ``recoveryLevel``, ``recoverableDays``), ``tags`` and —
  only for the latest-version request — ``policy`` with ``key_props``, ``secret_props``,
  ``x509_props``, ``issuer`` and ``attributes``, which is what ``CertificatePolicy`` reads;
* ``KeyBundle`` (``GetKey``): ``key`` (the JWK with ``kid``), ``attributes`` plus
  ``exportable``, ``managed: true`` (the key belongs to a certificate) and ``tags``.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ._keys import b64url, public_jwk
from ._material import VaultCertificate
from ._store import SecretVersion
from ._wire import unix_time, version_attributes

__all__ = ["certificate_bundle", "key_bundle", "key_id"]

_KEY_USAGE = ("digitalSignature", "keyEncipherment")
_EKUS = ("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2")  # server and client authentication


def key_id(vault_url: str, secret: SecretVersion) -> str:
    """``{vault}/keys/{name}/{version}``: the certificate's key, versioned."""
    return f"{vault_url.rstrip('/')}/keys/{secret.name}/{secret.version}"


def _material(secret: SecretVersion) -> VaultCertificate:
    if secret.certificate is None:  # pragma: no cover - callers check first
        raise ValueError(f"{secret.name} does not back a certificate")
    return secret.certificate


def _key_properties(material: VaultCertificate, exportable: bool) -> dict[str, Any]:
    key = material.key
    if isinstance(key, rsa.RSAPrivateKey):
        return {
            "exportable": exportable,
            "kty": "RSA",
            "key_size": key.key_size,
            "reuse_key": False,
        }
    curve = public_jwk(key, "")["crv"] if isinstance(key, ec.EllipticCurvePrivateKey) else None
    return {"exportable": exportable, "kty": "EC", "crv": curve, "reuse_key": False}


def _policy(secret: SecretVersion, base: str, material: VaultCertificate) -> dict[str, Any]:
    validity = material.not_after - material.not_before
    return {
        "id": f"{base}/certificates/{secret.name}/policy",
        "key_props": _key_properties(material, secret.exportable),
        "secret_props": {"contentType": secret.content_type},
        "x509_props": {
            "subject": material.certificate.subject.rfc4514_string(),
            "ekus": list(_EKUS),
            "key_usage": list(_KEY_USAGE),
            "validity_months": max(1, round(validity.days / 30.44)),
            "basic_constraints": {"ca": False},
        },
        "lifetime_actions": [
            {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
        ],
        "issuer": {"name": "Self"},
        "attributes": {
            "enabled": True,
            "created": unix_time(secret.created_on),
            "updated": unix_time(secret.updated_on),
        },
    }


def certificate_bundle(
    secret: SecretVersion, vault_url: str, *, with_policy: bool
) -> dict[str, Any]:
    """The ``CertificateBundle`` of a certificate version (``policy`` only when asked for)."""
    base = vault_url.rstrip("/")
    material = _material(secret)
    der = material.certificate.public_bytes(serialization.Encoding.DER)
    body: dict[str, Any] = {
        "id": f"{base}/certificates/{secret.name}/{secret.version}",
        "kid": key_id(base, secret),
        "sid": secret.id(base),
        "x5t": b64url(material.certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1
        "cer": base64.b64encode(der).decode("ascii"),
        "attributes": version_attributes(secret),
    }
    if secret.tags is not None:
        body["tags"] = dict(secret.tags)
    if with_policy:
        body["policy"] = _policy(secret, base, material)
    return body


def key_bundle(secret: SecretVersion, vault_url: str) -> dict[str, Any]:
    """The ``KeyBundle`` of a certificate version's key: its public JWK and attributes."""
    material = _material(secret)
    attributes = version_attributes(secret)
    attributes["exportable"] = secret.exportable
    body: dict[str, Any] = {
        "key": public_jwk(material.key, key_id(vault_url, secret)),
        "attributes": attributes,
        "managed": True,
    }
    if secret.tags is not None:
        body["tags"] = dict(secret.tags)
    return body
