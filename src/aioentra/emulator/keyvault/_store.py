"""The emulated Key Vault's secret store: names, versions, attributes, soft delete.

Pure state, no HTTP. The rules follow the Key Vault secrets data plane
(protocol-facts §4.1-4.2, MicrosoftDocs ``about-secrets.md``):

* a secret name is 1-127 characters of ``0-9a-zA-Z-`` and is case-insensitive;
* every ``set`` creates a new version whose id is a 32-hex GUID; the newest version
  is the one ``GET /secrets/{name}`` returns;
* ``enabled``/``nbf``/``exp``/``contentType``/``tags`` are per version and can be
  changed by an update; ``value`` cannot;
* a deleted secret stays in a recoverable state until purged and its name cannot be
  reused meanwhile (the ``Recoverable+Purgeable`` recovery level we advertise).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from ._material import VaultCertificate

__all__ = [
    "RECOVERABLE_DAYS",
    "RECOVERY_LEVEL",
    "DeletedSecret",
    "SecretConflictError",
    "SecretNameError",
    "SecretNotFoundError",
    "SecretStore",
    "SecretVersion",
]

RECOVERY_LEVEL = "Recoverable+Purgeable"
"""The recovery level a soft-delete-enabled vault reports in every attributes object."""

RECOVERABLE_DAYS = 90
"""Retention of deleted secrets (the default of a real vault)."""

P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")


class SecretNotFoundError(LookupError):
    """No secret (or no such version) under this name: the service's ``SecretNotFound``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class SecretNameError(ValueError):
    """The name breaks the ``^[0-9a-zA-Z-]{1,127}$`` rule."""


class SecretConflictError(Exception):
    """The name belongs to a deleted-but-recoverable secret and cannot be reused yet."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _utc(value: datetime | None) -> datetime | None:
    """Normalise to an aware UTC datetime with whole seconds (the wire carries Unix seconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret, as the vault holds it.

    The field names follow ``azure.keyvault.secrets.SecretProperties``. ``value`` is
    kept out of ``repr()``. ``managed`` marks a secret that backs a certificate
    (its ``certificate`` holds the key and certificate, for ``outContentType``, the
    certificate and key views and the sign operation).

    Attributes:
        name: The secret's name as first set (names compare case-insensitively).
        version: The version id, 32 lower-case hex digits.
        value: The secret value.
        content_type: The ``contentType`` attribute (``application/x-pem-file`` or
            ``application/x-pkcs12`` for a certificate's secret).
        enabled: A disabled version answers 403 ``Forbidden`` to a read of its value.
        not_before: The ``nbf`` attribute (aware, UTC, whole seconds), or ``None``.
        expires_on: The ``exp`` attribute, or ``None``.
        created_on: When the version was created.
        updated_on: When its attributes last changed.
        tags: The version's tags, or ``None``.
        managed: ``True`` for the secret behind a certificate (read-only through the secrets
            API).
        certificate: For a managed secret, the certificate and key it holds.
    """

    name: str
    version: str
    value: str = field(repr=False)
    content_type: str | None = None
    enabled: bool = True
    not_before: datetime | None = None
    expires_on: datetime | None = None
    created_on: datetime = field(default_factory=_now)
    updated_on: datetime = field(default_factory=_now)
    tags: Mapping[str, str] | None = None
    managed: bool = False
    certificate: VaultCertificate | None = field(default=None, repr=False, compare=False)
    exportable: bool = True
    """Whether a certificate's private key leaves the vault in the secret's value."""

    def id(self, vault_url: str) -> str:
        """The versioned secret identifier ``{vault}/secrets/{name}/{version}``."""
        return f"{vault_url.rstrip('/')}/secrets/{self.name}/{self.version}"


@dataclass(frozen=True)
class DeletedSecret:
    """A soft-deleted secret: its last version and the deletion timestamps."""

    latest: SecretVersion
    deleted_on: datetime
    scheduled_purge_date: datetime


def _locked(
    method: Callable[Concatenate[SecretStore, P], R],
) -> Callable[Concatenate[SecretStore, P], R]:
    """Run a store method under the store's lock."""

    def locked(store: SecretStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with store._lock:
            return method(store, *args, **kwargs)

    locked.__name__, locked.__doc__ = method.__name__, method.__doc__
    return locked


class SecretStore:
    """All secrets of one vault, keyed case-insensitively by name."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # tests arrange secrets from another thread
        self._versions: dict[str, list[SecretVersion]] = {}
        self._deleted: dict[str, tuple[DeletedSecret, list[SecretVersion]]] = {}

    @staticmethod
    def validate_name(name: str) -> str:
        """Return ``name`` if it is a legal secret name, else raise :class:`SecretNameError`."""
        if not _NAME.fullmatch(name):
            raise SecretNameError(
                f"Secret name {name!r} is invalid: use 1-127 characters of 0-9, a-z, A-Z and '-'."
            )
        return name

    @_locked
    def set(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        enabled: bool = True,
        not_before: datetime | None = None,
        expires_on: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        managed: bool = False,
        certificate: VaultCertificate | None = None,
        exportable: bool = True,
        now: datetime | None = None,
    ) -> SecretVersion:
        """Add a new version (the new latest) and return it."""
        self.validate_name(name)
        key = name.lower()
        if key in self._deleted:
            raise SecretConflictError(self._deleted[key][0].latest.name)
        history = self._versions.setdefault(key, [])
        created = _utc(now) or _now()
        version = SecretVersion(
            # The first spelling of a name is the one ids carry, as in the service.
            name=history[0].name if history else name,
            version=uuid.uuid4().hex,
            value=value,
            content_type=content_type,
            enabled=enabled,
            not_before=_utc(not_before),
            expires_on=_utc(expires_on),
            created_on=created,
            updated_on=created,
            tags=dict(tags) if tags is not None else None,
            managed=managed,
            certificate=certificate,
            exportable=exportable,
        )
        history.append(version)
        return version

    @_locked
    def get(self, name: str, version: str | None = None) -> SecretVersion:
        """The given version, or the latest when ``version`` is ``None`` or empty."""
        history = self._versions.get(name.lower())
        if not history:
            raise SecretNotFoundError(name)
        if not version:
            return history[-1]
        for item in history:
            if item.version == version.lower():
                return item
        raise SecretNotFoundError(name)

    @_locked
    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of ``name``, oldest first (empty if there is no such secret)."""
        return list(self._versions.get(name.lower(), ()))

    @_locked
    def latest_all(self) -> list[SecretVersion]:
        """The latest version of every live secret, ordered by lower-cased name."""
        return [self._versions[key][-1] for key in sorted(self._versions)]

    @_locked
    def update(
        self,
        name: str,
        version: str | None = None,
        *,
        content_type: str | None = None,
        enabled: bool | None = None,
        not_before: datetime | None = None,
        expires_on: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> SecretVersion:
        """Change the attributes of one version; ``None`` leaves a field as it is."""
        current = self.get(name, version)
        updated = replace(
            current,
            content_type=current.content_type if content_type is None else content_type,
            enabled=current.enabled if enabled is None else enabled,
            not_before=current.not_before if not_before is None else _utc(not_before),
            expires_on=current.expires_on if expires_on is None else _utc(expires_on),
            tags=current.tags if tags is None else dict(tags),
            updated_on=_utc(now) or _now(),
        )
        history = self._versions[name.lower()]
        history[history.index(current)] = updated
        return updated

    @_locked
    def delete(self, name: str, *, now: datetime | None = None) -> DeletedSecret:
        """Soft-delete every version of ``name``."""
        key = name.lower()
        history = self._versions.pop(key, None)
        if not history:
            raise SecretNotFoundError(name)
        deleted_on = _utc(now) or _now()
        record = DeletedSecret(
            latest=history[-1],
            deleted_on=deleted_on,
            scheduled_purge_date=deleted_on + timedelta(days=RECOVERABLE_DAYS),
        )
        self._deleted[key] = (record, history)
        return record

    @_locked
    def get_deleted(self, name: str) -> DeletedSecret:
        """The soft-deleted secret ``name``."""
        entry = self._deleted.get(name.lower())
        if entry is None:
            raise SecretNotFoundError(name)
        return entry[0]

    @_locked
    def deleted_all(self) -> list[DeletedSecret]:
        """Every soft-deleted secret, ordered by lower-cased name."""
        return [self._deleted[key][0] for key in sorted(self._deleted)]

    @_locked
    def purge(self, name: str) -> None:
        """Remove a soft-deleted secret for good."""
        if self._deleted.pop(name.lower(), None) is None:
            raise SecretNotFoundError(name)

    @_locked
    def recover(self, name: str) -> SecretVersion:
        """Bring a soft-deleted secret back with all its versions; return the latest."""
        entry = self._deleted.pop(name.lower(), None)
        if entry is None:
            raise SecretNotFoundError(name)
        self._versions[name.lower()] = entry[1]
        return entry[1][-1]

    @_locked
    def values(self) -> list[str]:
        """Every version's value, of live and of soft-deleted secrets (for leak checks)."""
        histories = [*self._versions.values(), *(entry[1] for entry in self._deleted.values())]
        return [version.value for history in histories for version in history]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._versions

    def __len__(self) -> int:
        return len(self._versions)
