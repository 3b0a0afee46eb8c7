"""The emulated Azure Key Vault: secrets and certificate secrets behind real vault auth.

The vault's data plane is served at the root paths (``/secrets/...``) of the emulator's
HTTPS server, so ``emu.vault.url == emu.base_url``; its resource is
``https://vault.azure.net`` like every public-cloud vault. The unmodified
``azure.keyvault.secrets`` clients work against it with ``verify_challenge_resource=False``
(the challenge names ``vault.azure.net``, which is not a parent domain of ``localhost``,
protocol-facts §4.4).

:class:`KeyVault` is the Python face tests use to arrange state — secrets, certificate
secrets, access policies — and to inspect it; :mod:`._kv_http` is the HTTP face;
:func:`add_routes` joins the two to an emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ._kv_auth import VAULT_RESOURCE, AccessPolicies, TokenVerifier
from ._kv_cert import PEM, PKCS12, VaultCertificate
from ._kv_http import ENDPOINT, VaultEndpoint
from ._kv_store import SecretStore, SecretVersion

if TYPE_CHECKING:
    from . import Emulator

__all__ = ["ENDPOINT", "KeyVault", "add_routes", "vault_for"]


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
        self.endpoint = VaultEndpoint(
            self._store,
            self._policies,
            tenant_id=tenant_id,
            authority=base_url,
            verify=verify,
            signature_valid=signature_valid,
            clock_skew=clock_skew,
            location=location,
        )

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
    ) -> SecretVersion:
        """Store a certificate-backed secret, as Key Vault exposes a certificate's secret.

        The material comes from ``pfx`` (bytes, optionally password-protected), from
        ``key_pem`` + ``cert_pem`` (e.g. an app's registered certificate), or — when
        neither is given and ``generate`` is true — a new RSA-2048 self-signed
        certificate for ``subject`` (default ``CN={name}``). The secret is ``managed``,
        has a ``kid``, mirrors the certificate's validity in ``nbf``/``exp``, and its
        value is a password-less base64 PFX (``application/x-pkcs12``) or PKCS#8 key +
        certificate PEM (``application/x-pem-file``).
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
            material.secret_value(content_type),
            content_type=content_type,
            enabled=enabled,
            not_before=material.not_before,
            expires_on=material.not_after,
            tags=tags,
            managed=True,
            certificate=material,
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
        permissions: Iterable[str] = ("get", "list", "set"),
    ) -> frozenset[str]:
        """Give ``principal`` secret permissions (``get list set delete recover backup
        restore purge`` or ``all``); returns everything it now holds."""
        return self._policies.grant(_object_id(principal), permissions)

    def revoke(
        self, principal: _HasObjectId | str, permissions: Iterable[str] | None = None
    ) -> None:
        """Take some permissions away, or the whole access policy when ``permissions`` is None."""
        self._policies.revoke(_object_id(principal), permissions)

    def permissions(self, principal: _HasObjectId | str) -> frozenset[str]:
        """The secret permissions ``principal`` holds."""
        return self._policies.permissions(_object_id(principal))

    def routes(self) -> list[web.RouteDef]:
        """The data-plane routes (``keyvault:*``) to add to the emulator's HTTPS app."""
        return self.endpoint.routes()


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


def add_routes(app: web.Application, emulator: Emulator) -> None:
    """Serve ``emulator.vault``'s data plane on ``app``.

    Called by :class:`~aioentra.emulator.Emulator` while it builds its HTTPS application; the
    vault object lives as long as the emulator, so its secrets survive a restart. Tokens are
    checked with the emulator's own keys (only tokens it issued are accepted).
    """
    app.router.add_routes(emulator.vault.routes())
