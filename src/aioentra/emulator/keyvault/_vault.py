"""The emulated Azure Key Vault: secrets, certificates and their keys behind real vault auth.

The vault's data plane is served at the root paths (``/secrets/...``, ``/certificates/...``,
``/keys/...``) of the emulator's HTTPS server, so ``emu.vault.url == emu.base_url``; its
resource is ``https://vault.azure.net`` like every public-cloud vault. The unmodified
``azure.keyvault.secrets``/``.certificates``/``.keys`` clients work against it with
``verify_challenge_resource=False`` (the challenge names ``vault.azure.net``, which is not
a parent domain of ``localhost``, protocol-facts §4.4).

:class:`KeyVault` is the Python face tests use to arrange state — secrets, certificate
secrets, access policies — and to inspect it; :mod:`._endpoint` is the HTTP face;
:func:`add_routes` joins the two to an emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ._auth import VAULT_RESOURCE, TokenVerifier
from ._errors import KeyVaultError
from ._gate import ENDPOINT, Gate
from ._material import PEM, PKCS12, VaultCertificate
from ._objects_http import CertificatesApi
from ._policies import AccessPolicies, Kind
from ._secrets_http import SecretsApi
from ._store import SecretStore, SecretVersion

if TYPE_CHECKING:
    from .._emulator import Emulator

__all__ = ["ENDPOINT", "KeyVault", "vault_for"]


class _HasObjectId(Protocol):
    """An app or a managed identity: anything with a service-principal ``object_id``."""

    @property
    def object_id(self) -> str: ...


def _object_id(principal: _HasObjectId | str) -> str:
    object_id = principal if isinstance(principal, str) else principal.object_id
    if not object_id:
        raise ValueError("The principal has no object id.")
    return object_id


class KeyVault:
    """One vault: its secrets, its access policies and the HTTP endpoint serving them.

    Access follows the vault-access-policy model: an identity may do only what
    :meth:`grant` allowed its object id (the token's ``oid``); with no policy at all it
    gets 403 for everything.

    >>> emu.vault.set_secret("db-password", "s3cr3t")          # doctest: +SKIP
    >>> emu.vault.grant(app, ["get", "list"])                  # doctest: +SKIP
    """

    resource = VAULT_RESOURCE
    """The resource (audience) of vault tokens: ``https://vault.azure.net``."""

    def __init__(
        self,
        *,
        base_url: Callable[[], str],
        tenant_id: Callable[[], str],
        verify: TokenVerifier,
        signature_valid: Callable[[str], bool],
        clock_skew: Callable[[], float] = lambda: 300,
        location: str = "local",
    ) -> None:
        self._base_url = base_url
        self._store = SecretStore()
        self._policies = AccessPolicies()
        self._gate = Gate(
            self._policies,
            tenant_id=tenant_id,
            authority=base_url,
            verify=verify,
            signature_valid=signature_valid,
            clock_skew=clock_skew,
            location=location,
        )
        self._apis = (SecretsApi(self._store, self._gate), CertificatesApi(self._store, self._gate))

    @property
    def url(self) -> str:
        """The vault URL for ``SecretClient(vault_url=...)``: the emulator's HTTPS base URL."""
        return self._base_url()

    # -- inspection ------------------------------------------------------------------------

    @property
    def secrets(self) -> Mapping[str, SecretVersion]:
        """A snapshot of every live secret's latest version, by name."""
        return {secret.name: secret for secret in self._store.latest_all()}

    def get_secret(self, name: str, version: str | None = None) -> SecretVersion:
        """One version (default: the latest) of a live secret; raises ``KeyError`` if absent."""
        try:
            return self._store.get(name, version)
        except LookupError:
            raise KeyError(name) from None

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of ``name``, oldest first."""
        return self._store.versions(name)

    # -- arranging secrets -----------------------------------------------------------------

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        enabled: bool = True,
        expires_on: datetime | None = None,
        not_before: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SecretVersion:
        """Add a new version of ``name`` (as ``PUT /secrets/{name}`` would) and return it.

        Naive datetimes are taken as UTC.
        """
        return self._store.set(
            name,
            value,
            content_type=content_type,
            enabled=enabled,
            not_before=not_before,
            expires_on=expires_on,
            tags=tags,
        )

    def set_certificate(
        self,
        name: str,
        *,
        pfx: bytes | None = None,
        pfx_password: bytes | None = None,
        key_pem: bytes | str | None = None,
        cert_pem: bytes | str | None = None,
        generate: bool = True,
        subject: str | None = None,
        content_type: str = PKCS12,
        enabled: bool = True,
        tags: Mapping[str, str] | None = None,
        exportable: bool = True,
    ) -> SecretVersion:
        """Store a certificate version: its secret, and the certificate and key views of it.

        The material comes from ``pfx`` (bytes, optionally password-protected), from
        ``key_pem`` + ``cert_pem`` (e.g. an app's registered certificate), or — when
        neither is given and ``generate`` is true — a new RSA-2048 self-signed
        certificate for ``subject`` (default ``CN={name}``). The secret is ``managed``,
        has a ``kid``, mirrors the certificate's validity in ``nbf``/``exp``, and its
        value is a password-less base64 PFX (``application/x-pkcs12``) or PKCS#8 key +
        certificate PEM (``application/x-pem-file``).

        The same version is served as ``GET /certificates/{name}[/{version}]`` and its key as
        ``GET /keys/{name}[/{version}]`` and ``POST /keys/{name}/{version}/sign``. With
        ``exportable=False`` the private key stays in the vault: the secret's value holds the
        certificate(s) only, as the service documents for a non-exportable key policy.
        """
        if content_type not in (PKCS12, PEM):
            raise ValueError(f"content_type must be {PKCS12!r} or {PEM!r}, not {content_type!r}.")
        if pfx is not None:
            material = VaultCertificate.from_pfx(pfx, pfx_password)
        elif key_pem is not None and cert_pem is not None:
            material = VaultCertificate.from_pem(key_pem, cert_pem)
        elif key_pem is not None or cert_pem is not None:
            raise ValueError("Pass both key_pem and cert_pem.")
        elif generate:
            material = VaultCertificate.generate(subject or f"CN={name}")
        else:
            raise ValueError("Pass pfx, key_pem and cert_pem, or generate=True.")
        return self._store.set(
            name,
            material.secret_value(content_type, with_key=exportable),
            content_type=content_type,
            enabled=enabled,
            not_before=material.not_before,
            expires_on=material.not_after,
            tags=tags,
            managed=True,
            certificate=material,
            exportable=exportable,
        )

    def update_secret(
        self,
        name: str,
        version: str | None = None,
        *,
        enabled: bool | None = None,
        content_type: str | None = None,
        expires_on: datetime | None = None,
        not_before: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SecretVersion:
        """Change attributes of one version (default: the latest); ``None`` keeps a field."""
        return self._store.update(
            name,
            version,
            enabled=enabled,
            content_type=content_type,
            expires_on=expires_on,
            not_before=not_before,
            tags=tags,
        )

    def disable_secret(self, name: str, version: str | None = None) -> SecretVersion:
        """Disable one version (default: the latest): reading it answers 403 ``SecretDisabled``."""
        return self.update_secret(name, version, enabled=False)

    def enable_secret(self, name: str, version: str | None = None) -> SecretVersion:
        """Re-enable one version (default: the latest)."""
        return self.update_secret(name, version, enabled=True)

    def delete_secret(self, name: str) -> None:
        """Soft-delete ``name`` (recoverable, and its name is taken until purged)."""
        self._store.delete(name)

    def purge_deleted_secret(self, name: str) -> None:
        """Remove a soft-deleted secret for good."""
        self._store.purge(name)

    # -- access policies -------------------------------------------------------------------

    def grant(
        self,
        principal: _HasObjectId | str,
        permissions: Iterable[str] | None = None,
        *,
        keys: Iterable[str] = (),
        certificates: Iterable[str] = (),
    ) -> frozenset[str]:
        """Give ``principal`` permissions; returns the secret permissions it now holds.

        ``permissions`` are secret permissions (``get list set delete recover backup restore
        purge`` or ``all``); ``keys`` (e.g. ``["get", "sign"]``) and ``certificates`` (e.g.
        ``["get", "list"]``) are the policy's other two lists, ``"all"`` allowed in each.
        ``permissions`` defaults to ``get list set`` unless ``keys`` or ``certificates`` are
        given, so ``grant(app, keys=["sign"])`` grants no secret permission.
        """
        object_id = _object_id(principal)
        keys, certificates = list(keys), list(certificates)
        if permissions is None:
            permissions = () if keys or certificates else ("get", "list", "set")
        held = self._policies.grant(object_id, "secrets", permissions)
        self._policies.grant(object_id, "keys", keys)
        self._policies.grant(object_id, "certificates", certificates)
        return held

    def revoke(
        self,
        principal: _HasObjectId | str,
        permissions: Iterable[str] | None = None,
        *,
        keys: Iterable[str] | None = None,
        certificates: Iterable[str] | None = None,
    ) -> None:
        """Take permissions away: secret ones (``permissions``), ``keys`` and/or
        ``certificates``; with none of the three given, the whole access policy."""
        object_id = _object_id(principal)
        if permissions is None and keys is None and certificates is None:
            self._policies.remove(object_id)
            return
        for kind, items in (
            ("secrets", permissions),
            ("keys", keys),
            ("certificates", certificates),
        ):
            if items is not None:
                self._policies.revoke(object_id, kind, items)  # type: ignore[arg-type]

    def permissions(self, principal: _HasObjectId | str, kind: Kind = "secrets") -> frozenset[str]:
        """The permissions ``principal`` holds of ``kind`` (``secrets``, ``keys`` or
        ``certificates``), lower-cased."""
        return self._policies.permissions(_object_id(principal), kind)

    def secret_values(self) -> frozenset[str]:
        """Every secret value the vault holds: each version of each live or soft-deleted
        secret, certificate secrets (base64 PFX or PEM) included; purged ones are forgotten.
        For leak checks (see :meth:`~aioentra.emulator.Emulator.known_secrets`)."""
        return frozenset(self._store.values())

    def routes(self) -> list[web.RouteDef]:
        """The data-plane routes (``keyvault:*``) to add to the emulator's HTTPS app."""
        return [route for api in self._apis for route in api.routes()]

    def error_response(self, status: int, method: str, path: str) -> web.Response:
        """The vault's JSON answer to a path (404) or method (405) it does not serve."""
        return self._gate.error_response(KeyVaultError.not_served(method, path, status))


def _signature_valid(emulator: Emulator) -> Callable[[str], bool]:
    def check(token: str) -> bool:
        try:
            emulator.state.signer.verify(token)
        except Exception:
            return False
        return True

    return check


def vault_for(emulator: Emulator) -> KeyVault:
    """A vault bound to ``emulator``: its base URL, default tenant and token keys.

    Usable before the emulator starts (everything is read lazily), so secrets and access
    policies can be arranged first.
    """
    return KeyVault(
        base_url=lambda: emulator.base_url,
        tenant_id=lambda: emulator.tenant_id,
        verify=emulator.state.verify_access_token,
        signature_valid=_signature_valid(emulator),
        clock_skew=lambda: emulator.state.clock_skew,
    )
