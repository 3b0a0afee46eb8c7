"""The certificates and keys data plane over HTTP: read a certificate, read and use its key.

========  ======================================  ==========================  ==================
method    path                                    operation                   permission
========  ======================================  ==========================  ==================
GET       ``/certificates/{name}[/]``             GetCertificate (+policy)    certificates/get
GET       ``/certificates/{name}/{version}``      GetCertificate              certificates/get
GET       ``/keys/{name}[/]``                     GetKey (latest)             keys/get
GET       ``/keys/{name}/{version}``              GetKey                      keys/get
POST      ``/keys/{name}/{version}/sign``         Sign                        keys/sign
========  ======================================  ==========================  ==================

The certificates are those stored with ``KeyVault.set_certificate``: each version's key is
its certificate's key. A name whose version is a plain secret is not a certificate (404
``CertificateNotFound``/``KeyNotFound``). The latest-version ``GET /certificates`` carries
the ``policy``; a versioned one does not, as ``get_certificate_version`` documents. Sign
works for non-exportable certificates too: that is what their keys are for.
"""

from __future__ import annotations

from aiohttp import web

from ._errors import KeyVaultError
from ._gate import Gate, Handler, json_body, read_json, vault_url
from ._keys import b64url, b64url_decode, sign_digest
from ._objects_wire import certificate_bundle, key_bundle, key_id
from ._store import SecretNotFoundError, SecretStore, SecretVersion

__all__ = ["CertificatesApi"]


class CertificatesApi:
    """The ``/certificates`` and ``/keys`` routes of one vault."""

    def __init__(self, store: SecretStore, gate: Gate) -> None:
        self._store = store
        self._gate = gate

    def routes(self) -> list[web.RouteDef]:
        table: list[tuple[str, str, Handler, str]] = [
            ("GET", "/certificates/{name}", self.get_certificate, "get_certificate"),
            ("GET", "/certificates/{name}/", self.get_certificate, "get_certificate_latest"),
            (
                "GET",
                "/certificates/{name}/{version}",
                self.get_certificate,
                "get_certificate_version",
            ),
            ("GET", "/keys/{name}", self.get_key, "get_key"),
            ("GET", "/keys/{name}/", self.get_key, "get_key_latest"),
            ("GET", "/keys/{name}/{version}", self.get_key, "get_key_version"),
            ("POST", "/keys/{name}/{version}/sign", self.sign, "sign"),
        ]
        return self._gate.routes(table)

    def _find(self, request: web.Request, not_found: KeyVaultError) -> SecretVersion:
        """The certificate version the path names (latest when it names none)."""
        try:
            secret = self._store.get(request.match_info["name"], request.match_info.get("version"))
        except SecretNotFoundError:
            raise not_found from None
        if secret.certificate is None:
            raise not_found
        return secret

    async def get_certificate(self, request: web.Request) -> web.StreamResponse:
        """GetCertificate: the CertificateBundle; the policy only for the latest version."""
        self._gate.authorize(request, "certificates", "get")
        name = request.match_info["name"]
        secret = self._find(request, KeyVaultError.certificate_not_found(name))
        latest = not request.match_info.get("version")
        return json_body(certificate_bundle(secret, vault_url(request), with_policy=latest))

    async def get_key(self, request: web.Request) -> web.StreamResponse:
        """GetKey: the certificate key's public JWK and attributes (never private parts)."""
        self._gate.authorize(request, "keys", "get")
        secret = self._find(request, KeyVaultError.key_not_found(request.match_info["name"]))
        return json_body(key_bundle(secret, vault_url(request)))

    async def sign(self, request: web.Request) -> web.StreamResponse:
        """Sign: ``{"alg", "value": base64url(digest)}`` → ``{"kid", "value": signature}``."""
        self._gate.authorize(request, "keys", "sign")
        secret = self._find(request, KeyVaultError.key_not_found(request.match_info["name"]))
        body = await read_json(request)
        algorithm, value = body.get("alg"), body.get("value")
        if not isinstance(algorithm, str) or not algorithm:
            raise KeyVaultError.bad_parameter("Property 'alg' is required and must be a string.")
        if not isinstance(value, str):
            raise KeyVaultError.bad_parameter("Property 'value' is required and must be a string.")
        if not secret.enabled:
            raise KeyVaultError.key_disabled("sign")
        assert secret.certificate is not None  # _find checked it
        signature = sign_digest(secret.certificate.key, algorithm, b64url_decode(value))
        vault = vault_url(request)
        return json_body({"kid": key_id(vault, secret), "value": b64url(signature)})
