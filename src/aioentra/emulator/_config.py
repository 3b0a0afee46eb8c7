"""The emulator's registration file: tenants, APIs, apps, grants and token lifetimes.

JSON always; TOML too on Python 3.11+ (``tomllib``), chosen by the ``.toml`` suffix. Example::

    {
      "tenant_id": "11111111-1111-1111-1111-111111111111",
      "domain": "contoso.onmicrosoft.com",
      "token_lifetime": 3599, "refresh_in": null, "clock_skew": 300,
      "tenants": [{"tenant_id": "22222222-...", "domain": "fabrikam.onmicrosoft.com"}],
      "apis": [{"identifier_uri": "api://orders", "roles": ["Orders.Read"], "name": "orders",
                "access_token_version": 1}],
      "apps": [{"name": "daemon", "client_id": "33333333-...", "object_id": "44444444-...",
                "secrets": ["dev-secret", {"value": "old", "expires_at": "2020-01-01T00:00:00Z"}],
                "certificates": ["certs/daemon.pem"],
                "federated_credentials": [{"issuer": "https://...", "subject": "..."}]}],
      "grants": [{"app": "daemon", "api": "api://orders", "roles": ["Orders.Read"]}]
    }

``tenant`` on an API or app names a tenant by GUID or domain (default: the default tenant).
An API's ``access_token_version`` (1 or 2, default 2) is the manifest's
``accessTokenAcceptedVersion`` (see ``Emulator.add_api``); an app's ``object_id`` is its service
principal's object id, the ``oid``/``sub`` of its tokens (default: a new GUID).
Certificate paths are PEM public certificates, relative to the file. A grant names its app by
name or client id and its API by identifier URI, app id or name. Unknown keys are errors, so typos
do not silently register nothing.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ._model import TOKEN_EXCHANGE_AUDIENCE, FederatedCredential

__all__ = ["ApiSpec", "AppSpec", "EmulatorConfig", "GrantSpec", "SecretSpec", "TenantSpec"]


class _Reader:
    """Typed access to one mapping of the file, with error messages that name the location."""

    def __init__(self, data: object, where: str, allowed: Sequence[str]) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        self.data: Mapping[str, Any] = data
        self.where = where

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{self.where}.{key}: expected a string")
        return value

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if not value:
            raise ValueError(f"{self.where}.{key}: required")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{self.where}.{key}: expected an integer")
        return value

    def version(self, key: str) -> Literal[1, 2]:
        value = self.data.get(key, 2)
        if not isinstance(value, int) or isinstance(value, bool) or value not in (1, 2):
            raise ValueError(f"{self.where}.{key}: expected 1 or 2, got {value!r}")
        return 1 if value == 1 else 2

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f"{self.where}.{key}: expected true or false")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f"{self.where}.{key}: expected a list")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise ValueError(f"{self.where}.{key}: expected a list of strings")
        return tuple(values)


@dataclass(frozen=True)
class TenantSpec:
    tenant_id: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class ApiSpec:
    identifier_uri: str
    roles: tuple[str, ...] = ()
    name: str | None = None
    tenant: str | None = None
    app_id: str | None = None
    assignment_required: bool = False
    access_token_version: Literal[1, 2] = 2


@dataclass(frozen=True)
class SecretSpec:
    value: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AppSpec:
    name: str
    client_id: str | None = None
    tenant: str | None = None
    secrets: tuple[SecretSpec, ...] = ()
    certificates: tuple[Path, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()
    object_id: str | None = None


@dataclass(frozen=True)
class GrantSpec:
    app: str
    api: str
    roles: tuple[str, ...]


def _timestamp(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an ISO 8601 timestamp string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if when.tzinfo is None:
        raise ValueError(f"{where}: the timestamp needs a time zone (e.g. a trailing Z)")
    return when


def _secret(value: object, where: str) -> SecretSpec:
    if isinstance(value, str):
        return SecretSpec(value)
    reader = _Reader(value, where, ("value", "expires_at"))
    expires = reader.data.get("expires_at")
    return SecretSpec(
        reader.text("value"), _timestamp(expires, f"{where}.expires_at") if expires else None
    )


def _app(value: object, where: str, base: Path) -> AppSpec:
    r = _Reader(
        value,
        where,
        (
            "name",
            "client_id",
            "object_id",
            "tenant",
            "secrets",
            "certificates",
            "federated_credentials",
        ),
    )
    feds = []
    for i, item in enumerate(r.items("federated_credentials")):
        f = _Reader(item, f"{where}.federated_credentials[{i}]", ("issuer", "subject", "audience"))
        feds.append(
            FederatedCredential(
                f.text("issuer"),
                f.text("subject"),
                f.opt_text("audience") or TOKEN_EXCHANGE_AUDIENCE,
            )
        )
    return AppSpec(
        name=r.text("name"),
        client_id=r.opt_text("client_id"),
        tenant=r.opt_text("tenant"),
        secrets=tuple(
            _secret(s, f"{where}.secrets[{i}]") for i, s in enumerate(r.items("secrets"))
        ),
        certificates=tuple(base / p for p in r.texts("certificates")),
        federated_credentials=tuple(feds),
        object_id=r.opt_text("object_id"),
    )


@dataclass(frozen=True)
class EmulatorConfig:
    """A parsed registration file (see the module docstring); also buildable in code.

    ``Emulator(config=...)`` registers what it describes: tenants, then APIs, then apps with
    their credentials, then grants. Keyword arguments of ``Emulator`` win over the settings
    here.

    Attributes:
        tenant_id: The default tenant's GUID (default: a new one).
        domain: The default tenant's domain (default ``contoso.onmicrosoft.com``).
        token_lifetime: Access-token lifetime in seconds (default 3599; must be > 300).
        refresh_in: The ``refresh_in`` sent with tokens (default: none sent).
        clock_skew: Tolerance in seconds of the ``exp``/``nbf`` checks (default 300).
        port: The HTTPS port (default: an ephemeral one).
        tenants: More tenants.
        apis: The resource APIs to register.
        apps: The daemon apps, with their secrets, certificates and federated credentials.
        grants: App roles granted to apps.
    """

    tenant_id: str | None = None
    domain: str | None = None
    token_lifetime: int | None = None
    refresh_in: int | None = None
    clock_skew: int | None = None
    port: int | None = None
    tenants: tuple[TenantSpec, ...] = ()
    apis: tuple[ApiSpec, ...] = ()
    apps: tuple[AppSpec, ...] = ()
    grants: tuple[GrantSpec, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmulatorConfig:
        """Read a ``.json`` file (or ``.toml`` on Python 3.11+)."""
        file = Path(path)
        text = file.read_text(encoding="utf-8")
        if file.suffix.lower() == ".toml":
            if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
                raise ValueError("TOML configuration needs Python 3.11+ (tomllib); use JSON")
            tomllib = importlib.import_module("tomllib")
            data: object = tomllib.loads(text)
        else:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{file}: invalid JSON: {exc}") from None
        return cls.from_dict(data, base_dir=file.parent, where=str(file))

    @classmethod
    def from_dict(
        cls, data: object, *, base_dir: Path | None = None, where: str = "config"
    ) -> EmulatorConfig:
        """Build a configuration from a parsed document (the shape of the module docstring).

        Args:
            data: The document, e.g. the result of ``json.loads``.
            base_dir: The directory relative certificate paths start from (default: the
                current directory).
            where: How error messages name the document (``load`` passes the file name).

        Raises:
            ValueError: A key that is unknown, missing or of the wrong type, named with its
                location (``config.apps[0].secrets[1].expires_at: ...``).
        """
        base = base_dir or Path.cwd()
        r = _Reader(
            data,
            where,
            (
                "tenant_id",
                "domain",
                "token_lifetime",
                "refresh_in",
                "clock_skew",
                "port",
                "tenants",
                "apis",
                "apps",
                "grants",
            ),
        )
        tenants = []
        for i, item in enumerate(r.items("tenants")):
            t = _Reader(item, f"{where}.tenants[{i}]", ("tenant_id", "domain"))
            tenants.append(TenantSpec(t.opt_text("tenant_id"), t.opt_text("domain")))
        apis = []
        for i, item in enumerate(r.items("apis")):
            a = _Reader(
                item,
                f"{where}.apis[{i}]",
                (
                    "identifier_uri",
                    "roles",
                    "name",
                    "tenant",
                    "app_id",
                    "assignment_required",
                    "access_token_version",
                ),
            )
            apis.append(
                ApiSpec(
                    a.text("identifier_uri"),
                    a.texts("roles"),
                    a.opt_text("name"),
                    a.opt_text("tenant"),
                    a.opt_text("app_id"),
                    a.flag("assignment_required"),
                    a.version("access_token_version"),
                )
            )
        grants = []
        for i, item in enumerate(r.items("grants")):
            g = _Reader(item, f"{where}.grants[{i}]", ("app", "api", "roles"))
            grants.append(GrantSpec(g.text("app"), g.text("api"), g.texts("roles")))
        return cls(
            tenant_id=r.opt_text("tenant_id"),
            domain=r.opt_text("domain"),
            token_lifetime=r.opt_int("token_lifetime"),
            refresh_in=r.opt_int("refresh_in"),
            clock_skew=r.opt_int("clock_skew"),
            port=r.opt_int("port"),
            tenants=tuple(tenants),
            apis=tuple(apis),
            apps=tuple(
                _app(item, f"{where}.apps[{i}]", base) for i, item in enumerate(r.items("apps"))
            ),
            grants=tuple(grants),
        )
