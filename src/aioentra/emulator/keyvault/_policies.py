"""The vault's access policies: secret, key and certificate permissions per principal.

A Key Vault access policy names an object id and three independent permission lists
(``permissions.secrets``, ``permissions.keys``, ``permissions.certificates``); an operation
needs one permission of its own kind — reading a certificate needs ``certificates/get``,
signing with its key ``keys/sign``, reading its backing secret ``secrets/get``. A missing
permission is 403 ``Forbidden``/``AccessDenied`` with the service's message
("… does not have keys sign permission on key vault '…'", protocol-facts §4.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ._auth import Caller
from ._errors import KeyVaultError

__all__ = ["PERMISSIONS", "AccessPolicies", "Kind"]

Kind = Literal["secrets", "keys", "certificates"]
"""The permission lists of an access policy."""

PERMISSIONS: dict[str, frozenset[str]] = {
    "secrets": frozenset({"get", "list", "set", "delete", "recover", "backup", "restore", "purge"}),
    "keys": frozenset(
        {
            "get",
            "list",
            "update",
            "create",
            "import",
            "delete",
            "recover",
            "backup",
            "restore",
            "decrypt",
            "encrypt",
            "unwrapkey",
            "wrapkey",
            "verify",
            "sign",
            "purge",
            "release",
            "rotate",
            "getrotationpolicy",
            "setrotationpolicy",
        }
    ),
    "certificates": frozenset(
        {
            "get",
            "list",
            "update",
            "create",
            "import",
            "delete",
            "recover",
            "backup",
            "restore",
            "managecontacts",
            "manageissuers",
            "getissuers",
            "listissuers",
            "setissuers",
            "deleteissuers",
            "purge",
        }
    ),
}
"""Every permission of each kind, lower-cased (the service compares them case-insensitively;
``about-keys``/``about-secrets``/``about-certificates`` access-control sections)."""


def _normalise(kind: Kind, permissions: Iterable[str]) -> set[str]:
    if isinstance(permissions, str):
        raise TypeError(f"Pass {kind} permissions as a list, e.g. [{permissions!r}].")
    wanted = {item.lower() for item in permissions}
    if "all" in wanted:
        return set(PERMISSIONS[kind])
    unknown = wanted - PERMISSIONS[kind]
    if unknown:
        raise ValueError(
            f"Unknown {kind} permission(s) {sorted(unknown)}; use {sorted(PERMISSIONS[kind])}."
        )
    return wanted


class AccessPolicies:
    """Permissions per principal object id, one set for each kind."""

    def __init__(self) -> None:
        self._grants: dict[str, dict[str, set[str]]] = {}

    def grant(self, object_id: str, kind: Kind, permissions: Iterable[str]) -> frozenset[str]:
        """Add ``permissions`` of ``kind`` (``"all"`` means every one); return the new set."""
        wanted = _normalise(kind, permissions)
        policy = self._grants.setdefault(object_id.lower(), {})
        held = policy.setdefault(kind, set())
        held |= wanted
        return frozenset(held)

    def revoke(self, object_id: str, kind: Kind, permissions: Iterable[str]) -> None:
        """Remove some permissions of ``kind``."""
        held = self._grants.get(object_id.lower(), {}).get(kind)
        if held is not None:
            held -= {item.lower() for item in permissions}

    def remove(self, object_id: str) -> None:
        """Drop the principal's whole access policy."""
        self._grants.pop(object_id.lower(), None)

    def permissions(self, object_id: str, kind: Kind = "secrets") -> frozenset[str]:
        """The ``kind`` permissions ``object_id`` holds (empty when it has no policy)."""
        return frozenset(self._grants.get(object_id.lower(), {}).get(kind, ()))

    def check(
        self,
        caller: Caller,
        kind: Kind,
        permission: str,
        *,
        vault_name: str,
        location: str,
    ) -> None:
        """Raise 403 ``AccessDenied`` unless ``caller`` holds ``kind``/``permission``."""
        if permission.lower() in self.permissions(caller.object_id, kind):
            return
        raise KeyVaultError(
            403,
            "Forbidden",
            f"The user, group or application '{caller.display}' does not have {kind} "
            f"{permission} permission on key vault '{vault_name};location={location}'. "
            "For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125287",
            "AccessDenied",
        )
