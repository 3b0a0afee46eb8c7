"""The managed identities one host offers: a system-assigned one and any user-assigned ones.

Both managed-identity endpoints (App Service and IMDS) serve the same identities; they
differ only in how a request names one (``client_id``, ``object_id``, a resource id) and in
their error shapes. The registry knows nothing of HTTP or of the emulator: it is given one
collaborator, ``register``, which creates the identity's service principal in the directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._model import App

__all__ = ["IdentityRegistry", "ManagedIdentity", "RegisterApp", "Selector"]

_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

RegisterApp = Callable[[str, "str | None", "str | None"], App]
"""``register(name, client_id, object_id)``: a new directory app for an identity (new GUIDs
for the ids that are ``None``); raises ``ValueError`` when an id is taken."""

Selector = Literal["client_id", "object_id", "resource_id"]
"""How a request names a user-assigned identity."""


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity: a service principal without credentials of its own.

    ``app`` is its registration in the emulator's directory (grant it API roles with
    the emulator's ``grant`` like any app); ``resource_id`` is what ``mi_res_id`` (App
    Service) and ``msi_res_id`` (IMDS) name.

    Attributes:
        app: The identity's app in the emulator's directory (its client id and object id).
        resource_id: The identity's Azure resource id
            (``/subscriptions/.../userAssignedIdentities/{name}``, or a site's for the
            system-assigned one), also the ``xms_mirid`` claim of its tokens.
        system_assigned: ``True`` for the host's system-assigned identity.
    """

    app: App
    resource_id: str
    system_assigned: bool = False

    @property
    def client_id(self) -> str:
        """The identity's client (application) id: the ``azp`` of its tokens."""
        return self.app.client_id

    @property
    def object_id(self) -> str:
        """The service principal's object id: the ``oid``/``sub`` of its tokens."""
        return self.app.object_id

    @property
    def name(self) -> str:
        """The identity's name, the last segment of its ``resource_id``."""
        return self.app.name

    @property
    def tenant_id(self) -> str:
        """The tenant it belongs to: the emulator's default tenant."""
        return self.app.tenant_id

    def named_by(self, selector: Selector, value: str) -> bool:
        """Whether ``value`` names this identity (ids compare case-insensitively)."""
        mine = {
            "client_id": self.client_id,
            "object_id": self.object_id,
            "resource_id": self.resource_id,
        }[selector]
        return mine.lower() == value.lower()


class IdentityRegistry:
    """The identities of one host; thread-safe (tests register from their own thread)."""

    def __init__(self, register: RegisterApp) -> None:
        self._register_app = register
        self._identities: list[ManagedIdentity] = []
        self._lock = threading.RLock()

    @property
    def system_assigned(self) -> ManagedIdentity:
        """The system-assigned identity (registered on first use)."""
        with self._lock:
            for identity in self._identities:
                if identity.system_assigned:
                    return identity
            return self._add("system-assigned", None, None, system_assigned=True)

    @property
    def identities(self) -> tuple[ManagedIdentity, ...]:
        """Every identity, system-assigned first once it exists."""
        with self._lock:
            return tuple(sorted(self._identities, key=lambda item: not item.system_assigned))

    def add(
        self, client_id: str | None = None, *, object_id: str | None = None, name: str | None = None
    ) -> ManagedIdentity:
        """Register a user-assigned identity (new GUIDs unless given)."""
        with self._lock:
            label = name or f"user-assigned-{len(self._identities) + 1}"
            return self._add(label, client_id, object_id, system_assigned=False)

    def _add(
        self, name: str, client_id: str | None, object_id: str | None, *, system_assigned: bool
    ) -> ManagedIdentity:
        app = self._register_app(name, client_id, object_id)
        provider = (
            f"Microsoft.Web/sites/{name}"
            if system_assigned
            else f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )
        identity = ManagedIdentity(
            app=app,
            resource_id=f"/subscriptions/{_SUBSCRIPTION}/resourceGroups/emulator/providers/{provider}",
            system_assigned=system_assigned,
        )
        self._identities.append(identity)
        return identity

    def select(self, selector: Selector | None, value: str = "") -> ManagedIdentity | None:
        """The identity a request names; the system-assigned one when it names none."""
        if selector is None:
            return self.system_assigned
        return next((i for i in self.identities if i.named_by(selector, value)), None)
