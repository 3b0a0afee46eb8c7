"""The emulator's directory and token service: registrations, grants, token issue and verification.

:class:`EmulatorState` is the piece the identity endpoints build on (tokens are minted by
:class:`~.identity.TokenMinter`, which reads the registrations and the signing key here):

* :meth:`EmulatorState.verify_access_token` checks signature, issuer and lifetime of a bearer token
  (v2.0 or v1.0) and raises :class:`InvalidTokenError` otherwise;
* :meth:`EmulatorState.rotate_signing_key` replaces the token-signing key;
* :meth:`EmulatorState.find_identity` looks an app (or managed identity) up by client or object id.

All mutating methods take a lock, so tests may register apps from another thread while the server
runs (the pytest plugin does that).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import jwt

from ._certs import CertificateMaterial
from ._ledger import SecretLedger
from ._model import Api, App, FederatedCredential, SecretCredential, Tenant
from .identity._signing import SigningKeys

__all__ = ["BUILTIN_APIS", "V1_ISSUER_BASE", "EmulatorState", "InvalidTokenError"]

#: Resources pre-registered in every tenant (identifier URI, well-known app id, display name).
BUILTIN_APIS: tuple[tuple[str, str, str], ...] = (
    ("https://vault.azure.net", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093", "Azure Key Vault"),
    ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
)

#: The v1.0 token issuer's origin (``iss`` = ``{V1_ISSUER_BASE}/{tid}/``, trailing slash).
V1_ISSUER_BASE = "https://sts.windows.net"

#: msal treats a cached token with less than 5 minutes left as expired (protocol-facts §1.2).
MSAL_EXPIRY_MARGIN = 300


class InvalidTokenError(Exception):
    """A bearer token the emulator did not issue, or no longer accepts; ``reason`` says why.

    Attributes:
        reason: What failed, e.g. ``"the token is expired"`` or ``"unknown tenant ..."``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _new_guid() -> str:
    return str(uuid.uuid4())


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def secret_expiry(value: datetime | float | None, name: str = "expires_at") -> datetime | None:
    """A client secret's expiry as an aware datetime, from an aware datetime or Unix seconds.

    A naive datetime is refused rather than guessed at: read as local time or as UTC, the
    secret would expire hours early or late on some machines, and an expiry test would pass
    or fail by time zone.

    Raises:
        ValueError: A naive datetime, or a timestamp no datetime can hold.
        TypeError: Anything else (``bool`` included, though it is an ``int``).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                f"{name} must be timezone-aware, e.g. datetime.now(timezone.utc) + "
                f"timedelta(days=1), got {value.isoformat()}"
            )
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{name}: {value!r} is not a usable Unix timestamp ({exc})") from None
    raise TypeError(
        f"{name} must be an aware datetime or Unix seconds (int or float), "
        f"got {type(value).__name__}"
    )


def validate_token_lifetime(seconds: int) -> int:
    """Access-token lifetimes must exceed 300 s.

    msal treats a cached access token with less than five minutes left as already expired
    (``application.py``: ``if expires_in < 5*60``), so a shorter lifetime silently defeats every
    client-side cache and each call hits the token endpoint.
    """
    if int(seconds) <= MSAL_EXPIRY_MARGIN:
        raise ValueError(
            f"token_lifetime must be > {MSAL_EXPIRY_MARGIN} s (msal treats tokens with less than "
            f"5 minutes left as expired), got {seconds}"
        )
    return int(seconds)


class EmulatorState:
    """Registrations plus the signing key; knows nothing about HTTP."""

    def __init__(
        self,
        *,
        token_lifetime: int = 3599,
        refresh_in: int | None = None,
        clock_skew: int = 300,
        reject_replayed_assertions: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.apis: dict[tuple[str, str], Api] = {}  # by (tenant id, app id)
        self.apps: dict[str, App] = {}  # by client id
        # (client id, api tenant id, api app id) -> roles
        self.grants: dict[tuple[str, str, str], frozenset[str]] = {}
        #: Extra host names the server certificate covers (``subject_alt_names``): the only
        #: hosts besides loopback that a client assertion's ``aud`` may name.
        self.server_names: frozenset[str] = frozenset()
        self.token_lifetime = validate_token_lifetime(token_lifetime)
        self.refresh_in = refresh_in
        self.clock_skew = clock_skew
        self.reject_replayed_assertions = reject_replayed_assertions
        self._seen_jti: dict[tuple[str, str], float] = {}
        self.base_url: str | None = None
        self._signer: SigningKeys | None = None
        #: Secret values handed out or received, remembered past their registration (bounded)
        #: for leak checks: see :meth:`secret_values`.
        self.secret_ledger = SecretLedger()

    # -- keys and issuers -------------------------------------------------------------------
    @property
    def signer(self) -> SigningKeys:
        """The signing key ring (generated on first use): signs, verifies, makes the JWKS."""
        signer = self._signer
        if signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = SigningKeys()
                signer = self._signer
        return signer

    def rotate_signing_key(self, *, keep_previous: bool = True) -> str:
        """A new token-signing key from now on; returns its ``kid`` (see :class:`SigningKeys`)."""
        return self.signer.rotate(keep_previous=keep_previous)

    def _base(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the emulator is not started: its base URL is not known yet")
        return self.base_url

    @property
    def port(self) -> int:
        port = urllib.parse.urlsplit(self._base()).port
        return port if port is not None else 443

    def issuer(self, tenant_id: str) -> str:
        """``{base_url}/{tid}/v2.0``: the v2 issuer, as Entra's ``https://login.microsoftonline.com/{tid}/v2.0``."""
        return f"{self._base()}/{tenant_id}/v2.0"

    @staticmethod
    def issuer_v1(tenant_id: str) -> str:
        """``https://sts.windows.net/{tid}/``: the v1.0 issuer (and ``idp``), verbatim as Entra's.

        Unlike the v2 issuer it names no emulator URL: v1.0 tokens and the v1 discovery
        document carry exactly what a resource server configured for Entra expects.
        """
        return f"{V1_ISSUER_BASE}/{tenant_id}/"

    # -- registration ----------------------------------------------------------------------
    def add_tenant(self, tenant_id: str | None = None, domain: str | None = None) -> Tenant:
        with self._lock:
            tid = (tenant_id or _new_guid()).lower()
            if not _is_guid(tid):
                raise ValueError(f"tenant_id must be a GUID, got {tenant_id!r}")
            if tid in self.tenants:
                raise ValueError(f"tenant {tid} already exists")
            name = (domain or f"tenant{len(self.tenants) + 1}.onmicrosoft.com").lower()
            if self.resolve_tenant(name) is not None:
                raise ValueError(f"domain {name} already exists")
            tenant = Tenant(tenant_id=tid, domain=name)
            self.tenants[tid] = tenant
            for uri, app_id, display in BUILTIN_APIS:
                self._store_api(Api(app_id, uri, (), display, tid, builtin=True))
            return tenant

    def resolve_tenant(self, segment: str) -> Tenant | None:
        """The tenant a URL path segment names: its GUID or its domain (case-insensitive)."""
        key = segment.lower()
        with self._lock:
            if key in self.tenants:
                return self.tenants[key]
            return next((t for t in self.tenants.values() if t.domain == key), None)

    def tenant(self, name: str | None, default: str) -> Tenant:
        found = self.resolve_tenant(name or default)
        if found is None:
            raise ValueError(f"unknown tenant {name!r}")
        return found

    def _store_api(self, api: Api) -> None:
        self.apis[(api.tenant_id, api.app_id)] = api

    def add_api(
        self,
        identifier_uri: str,
        roles: Sequence[str],
        *,
        tenant_id: str,
        name: str,
        app_id: str | None = None,
        assignment_required: bool = False,
        access_token_version: Literal[1, 2] = 2,
    ) -> Api:
        if access_token_version not in (1, 2):
            raise ValueError(f"access_token_version must be 1 or 2, got {access_token_version!r}")
        with self._lock:
            if self.find_api(tenant_id, identifier_uri) is not None:
                raise ValueError(f"an API with identifier URI {identifier_uri} already exists")
            api = Api(
                app_id=(app_id or _new_guid()).lower(),
                identifier_uri=identifier_uri,
                roles=tuple(roles),
                name=name,
                tenant_id=tenant_id,
                assignment_required=assignment_required,
                access_token_version=access_token_version,
            )
            if self._id_taken(api.app_id):
                raise ValueError(f"app id {api.app_id} already exists")
            self._store_api(api)
            return api

    def find_api(self, tenant_id: str, resource: str) -> Api | None:
        """A resource by identifier URI or app id GUID, within one tenant (exact URI, any case)."""
        key = resource.lower()
        with self._lock:
            for api in self.apis.values():
                if api.tenant_id != tenant_id:
                    continue
                if api.identifier_uri.lower() == key or api.app_id == key:
                    return api
        return None

    def _id_taken(self, guid: str) -> bool:
        return guid in self.apps or any(key[1] == guid for key in self.apis)

    def add_app(
        self,
        name: str,
        *,
        tenant_id: str,
        client_id: str | None = None,
        object_id: str | None = None,
    ) -> App:
        """A new app; ``object_id`` (its service principal, lower-cased) must be a GUID no other
        app or identity has (default: a new one)."""
        with self._lock:
            cid = (client_id or _new_guid()).lower()
            if not _is_guid(cid):
                raise ValueError(f"client_id must be a GUID, got {client_id!r}")
            if self._id_taken(cid):
                raise ValueError(f"client id {cid} already exists")
            oid = (object_id or _new_guid()).lower()
            if not _is_guid(oid):
                raise ValueError(f"object_id must be a GUID, got {object_id!r}")
            if self.find_identity(object_id=oid) is not None:
                raise ValueError(f"object id {oid} already exists")
            app = App(client_id=cid, object_id=oid, name=name, tenant_id=tenant_id)
            self.apps[cid] = app
            return app

    def remove_app(self, app: App) -> None:
        with self._lock:
            self.apps.pop(app.client_id, None)
            for key in [k for k in self.grants if k[0] == app.client_id]:
                del self.grants[key]

    def remove_api(self, api: Api) -> None:
        with self._lock:
            self.apis.pop((api.tenant_id, api.app_id), None)
            for key in [k for k in self.grants if k[1:] == (api.tenant_id, api.app_id)]:
                del self.grants[key]

    def add_secret(self, app: App, value: str, expires_at: datetime | None) -> None:
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        with self._lock:
            app.secrets.append(SecretCredential(value, expires_at))
        self.secret_ledger.add_credential(value)

    def add_certificate(self, app: App, material: CertificateMaterial) -> None:
        with self._lock:
            app.certificates.append(material)
        self.secret_ledger.add_credential(material.private_key_pem)

    def replace_secrets(self, app: App, value: str) -> None:
        """``value`` becomes the app's only client secret (rotation)."""
        with self._lock:
            app.secrets[:] = [SecretCredential(value, None)]
        self.secret_ledger.add_credential(value)

    def remove_secret(self, app: App, value: str) -> None:
        with self._lock:
            kept = [c for c in app.secrets if c.value != value]
            if len(kept) == len(app.secrets):
                raise KeyError(f"app {app.client_id} has no such client secret")
            app.secrets[:] = kept

    def replace_certificates(self, app: App, material: CertificateMaterial) -> None:
        """``material`` becomes the app's only certificate credential (rotation)."""
        with self._lock:
            app.certificates[:] = [material]
        self.secret_ledger.add_credential(material.private_key_pem)

    def remove_certificate(self, app: App, material: CertificateMaterial) -> None:
        with self._lock:
            kept = [c for c in app.certificates if c.x5t_s256 != material.x5t_s256]
            if len(kept) == len(app.certificates):
                raise KeyError(f"app {app.client_id} has no certificate {material.x5t}")
            app.certificates[:] = kept

    def add_federated_credential(self, app: App, credential: FederatedCredential) -> None:
        with self._lock:
            app.federated_credentials.append(credential)

    def grant(self, app: App, api: Api, roles: Iterable[str]) -> None:
        wanted = frozenset(roles)
        unknown = wanted - set(api.roles)
        if unknown and not api.builtin:
            raise ValueError(f"API {api.identifier_uri} defines no app role(s) {sorted(unknown)}")
        with self._lock:
            key = (app.client_id, api.tenant_id, api.app_id)
            self.grants[key] = self.grants.get(key, frozenset()) | wanted

    def granted_roles(self, client_id: str, api: Api) -> frozenset[str] | None:
        """Roles the app holds on ``api``; ``None`` when it was never granted anything."""
        with self._lock:
            return self.grants.get((client_id, api.tenant_id, api.app_id))

    def find_identity(
        self, client_id: str | None = None, object_id: str | None = None
    ) -> App | None:
        """An app or managed identity by client id and/or service-principal object id."""
        with self._lock:
            for app in self.apps.values():
                if client_id is not None and app.client_id != client_id.lower():
                    continue
                if object_id is not None and app.object_id != object_id.lower():
                    continue
                if client_id is None and object_id is None:
                    return None
                return app
        return None

    def secret_values(self) -> frozenset[str]:
        """Every secret value the directory knows: each registered app's client secrets and
        generated certificate private keys (PEM), plus what :attr:`secret_ledger` remembers
        (credentials of apps since removed, recent tokens and received assertions)."""
        with self._lock:
            live = [c.value for app in self.apps.values() for c in app.secrets]
            keys = [
                cert.private_key_pem.decode("ascii", "replace")
                for app in self.apps.values()
                for cert in app.certificates
                if cert.private_key_pem is not None
            ]
        return self.secret_ledger.values().union(live, keys)

    def remember_jti(self, client_id: str, jti: str, expires: float) -> bool:
        """Record an assertion id; ``False`` when it was seen before and has not expired."""
        now = time.time()
        with self._lock:
            self._seen_jti = {k: v for k, v in self._seen_jti.items() if v > now}
            if (client_id, jti) in self._seen_jti:
                return False
            self._seen_jti[(client_id, jti)] = max(expires, now) + self.clock_skew
            return True

    # -- tokens ----------------------------------------------------------------------------
    def verify_access_token(self, token: str) -> dict[str, Any]:
        """Verify a token this emulator issued: RS256 signature by a published key (the current
        one, or the previous one kept by a rotation), a known tenant, the issuer of the token's
        version (``ver`` "1.0": ``https://sts.windows.net/{tid}/``, else ``{base_url}/{tid}/v2.0``),
        ``exp``/``nbf`` within ``clock_skew``. Returns the claims; the audience is the caller's
        check.
        """
        try:
            claims = self.signer.verify(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"signature validation failed: {exc}") from exc
        tid = claims.get("tid")
        if not isinstance(tid, str) or tid not in self.tenants:
            raise InvalidTokenError(f"unknown tenant {tid!r}")
        expected = self.issuer_v1(tid) if claims.get("ver") == "1.0" else self.issuer(tid)
        if claims.get("iss") != expected:
            raise InvalidTokenError(f"unexpected issuer {claims.get('iss')!r}")
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or exp + self.clock_skew < now:
            raise InvalidTokenError("the token is expired")
        if isinstance(nbf, int | float) and nbf - self.clock_skew > now:
            raise InvalidTokenError("the token is not yet valid")
        return claims


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
