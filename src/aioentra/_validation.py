"""What an API checks in a signed access token's header and claims: the pure decisions.

Everything here is pure: no I/O, no clock of its own (``now`` is an argument), no keys. The
signature is checked in :mod:`aioentra._validator` against the authority's published keys;
this module decides whether a token whose signature is good is one the API accepts.

``check_header`` and ``check_claims`` reject, in this order:

=============================  ===========================================  ==================
check                          rejected when                                answer
=============================  ===========================================  ==================
``alg``                        not in the allow-list (``none`` and ``HS*``  401 invalid_token
                               are never accepted: their "key" is public)
``kid``                        missing                                      401 invalid_token
``exp``                        missing, or ``now >= exp + leeway``          401 invalid_token
``nbf``                        ``now < nbf - leeway``                       401 invalid_token
``iss``                        not the discovered issuer (its ``{tenantid}``  401 invalid_token
                               filled in with ``tid``), nor, for Entra ID,
                               the v1 form ``https://sts.windows.net/{tid}/``
                               of the same tenant
``tid``                        not in the tenant allow-list (when given)    401 invalid_token
``aud``                        none of the API's audiences                  401 invalid_token
app-only (when required)       not an app token (``idtyp`` is not ``app``;  403
                               without it: ``scp``, no app id, or ``sub``   insufficient_scope
                               is not ``oid``; see ``Claims.is_app_only``)
``roles`` (per route)          none of the required roles                   403
                               (:func:`missing_roles`)                      insufficient_scope
=============================  ===========================================  ==================

A 401 tells the client its token is not acceptable (our client middleware renews it, at most
once per 30 s); a 403 tells it the token is fine but the app lacks a permission, which a new
token does not fix (an administrator must grant it: "forgot admin consent").

The error descriptions name the claim that failed and never echo a claim's value from the
token: they go back to an unauthenticated caller.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from ._errors import ConfigurationError, InsufficientPermissionsError, InvalidTokenError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "ClaimRules",
    "Claims",
    "check_claims",
    "check_header",
    "jose_header",
    "missing_roles",
]

DEFAULT_ALGORITHMS = ("RS256",)
"""What Entra ID signs access tokens with."""
_SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_V1_ISSUER = "https://sts.windows.net/{tid}/"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
TENANT_PLACEHOLDER = "{tenantid}"


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID_RE.match(value))


@dataclass(frozen=True)
class ClaimRules:
    """What the API accepts, from its configuration (the issuer comes from discovery)."""

    audiences: frozenset[str]
    """``aud`` values accepted: the App ID URI and/or the API's client id."""
    tenants: frozenset[str] | None = None
    """Tenant ids (lower case) accepted in ``tid``; ``None``: the issuer's tenant only."""
    algorithms: frozenset[str] = frozenset(DEFAULT_ALGORITHMS)
    leeway: float = 60.0
    """Seconds of clock skew allowed on ``exp`` and ``nbf``."""
    app_only: bool = False
    """Accept app-only tokens only (the client-credentials grant's), no user tokens."""
    entra: bool = True
    """Entra ID tokens: ``tid`` is required and the v1 issuer form is accepted."""

    @classmethod
    def build(
        cls,
        *,
        audience: str | Iterable[str],
        tenants: Iterable[str] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60.0,
        app_only: bool = False,
        entra: bool = True,
    ) -> ClaimRules:
        """Validate the configuration (before any request) and build the rules.

        A client id (a GUID) in ``audience`` also accepts ``api://{client id}``, the App ID
        URI the portal proposes, as Microsoft.Identity.Web does.
        """
        wanted = [audience] if isinstance(audience, str) else list(audience)
        if not wanted or not all(isinstance(a, str) and a.strip() for a in wanted):
            raise ConfigurationError(
                "audience must be the API's App ID URI or client id (or several)",
                hint="e.g. audience='api://orders' or the API registration's client id.",
            )
        audiences = {a.strip() for a in wanted}
        audiences |= {f"api://{a}" for a in audiences if is_guid(a)}
        chosen = [algorithms] if isinstance(algorithms, str) else list(algorithms)
        refused = [a for a in chosen if a not in _SIGNING_ALGORITHMS]
        if refused or not chosen:
            raise ConfigurationError(
                f"algorithms {refused or chosen!r} are not accepted",
                hint="use asymmetric signing algorithms such as RS256 (Entra ID's); 'none' and "
                "HMAC (HS256) are refused because anyone who knows the key can sign.",
            )
        allowed: frozenset[str] | None = None
        if tenants is not None:
            listed = [tenants] if isinstance(tenants, str) else list(tenants)
            if not listed or not all(isinstance(t, str) and t.strip() for t in listed):
                raise ConfigurationError(
                    "tenants must name at least one tenant id",
                    hint="list the tenant GUIDs whose apps may call this API.",
                )
            allowed = frozenset(t.strip().lower() for t in listed)
            named = sorted(t for t in allowed if not is_guid(t))
            if entra and named:
                raise ConfigurationError(
                    f"tenants must be tenant ids (GUIDs), not {named!r}",
                    hint="tokens name their tenant by id (tid): list the directory (tenant) ids.",
                )
        if not isinstance(leeway, (int, float)) or not 0 <= leeway <= 600:
            raise ConfigurationError("leeway must be between 0 and 600 seconds")
        return cls(
            audiences=frozenset(audiences),
            tenants=allowed,
            algorithms=frozenset(chosen),
            leeway=float(leeway),
            app_only=app_only,
            entra=entra,
        )


class Claims(Mapping[str, Any]):
    """The validated claims of an access token (read-only), with the ones APIs use named.

    It is a mapping of the token's claims (``claims["aud"]``); the properties read the
    v1 and v2 names alike (``app_id`` is v2's ``azp`` or v1's ``appid``).
    """

    __slots__ = ("_claims", "roles", "scopes")

    def __init__(self, claims: Mapping[str, Any]) -> None:
        self._claims = dict(claims)
        roles = claims.get("roles")
        self.roles: frozenset[str] = frozenset(
            role for role in (roles if isinstance(roles, list) else ()) if isinstance(role, str)
        )
        """The app roles granted to the caller (``roles``)."""
        scp = claims.get("scp")
        self.scopes: frozenset[str] = frozenset(scp.split() if isinstance(scp, str) else ())
        """The delegated scopes (``scp``) of a user token; empty for app tokens."""

    def __getitem__(self, name: str) -> Any:
        return self._claims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    @property
    def tenant_id(self) -> str | None:
        return _text(self._claims.get("tid"))

    @property
    def app_id(self) -> str | None:
        """The calling application's client id (``azp`` in v2 tokens, ``appid`` in v1)."""
        return _text(self._claims.get("azp")) or _text(self._claims.get("appid"))

    @property
    def object_id(self) -> str | None:
        """The caller's object id (``oid``): for an app token, its service principal's."""
        return _text(self._claims.get("oid"))

    @property
    def subject(self) -> str | None:
        return _text(self._claims.get("sub"))

    @property
    def version(self) -> str | None:
        """``"1.0"`` or ``"2.0"`` for Entra ID tokens."""
        return _text(self._claims.get("ver"))

    @property
    def expires_on(self) -> float:
        exp = self._claims.get("exp")
        return float(exp) if _is_number(exp) else 0.0

    @property
    def is_app_only(self) -> bool:
        """An application's own token (client credentials), not a user's.

        ``idtyp`` decides when the token carries it (``app``). Without it, an app token has no
        ``scp``, names the calling app (``azp`` or ``appid``) and its ``sub`` is its own
        service principal (``oid``); a user token, or an ID token, fails one of these.
        """
        idtyp = self._claims.get("idtyp")
        if idtyp is not None:
            return bool(idtyp == "app")
        if "scp" in self._claims or self.app_id is None:
            return False
        oid, sub = self.object_id, self.subject
        return oid is None or sub is None or oid == sub

    def __repr__(self) -> str:  # claims are not secrets, but keep logs short
        return (
            f"Claims(app_id={self.app_id!r}, tenant_id={self.tenant_id!r}, "
            f"roles={sorted(self.roles)!r}, version={self.version!r})"
        )


def jose_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS (``header.payload.signature``), not yet trusted.

    Only the first segment is decoded: PyJWT's own header reader checks every segment's
    characters in Python, which doubled the cost of a validation.
    """
    head, dot, rest = token.partition(".")
    if not dot or rest.count(".") != 1 or not _B64URL.fullmatch(head):
        raise InvalidTokenError("the token is not a JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, RecursionError):
        raise InvalidTokenError("the token is not a JWT") from None
    if not isinstance(header, dict):
        raise InvalidTokenError("the token is not a JWT")
    return header


def check_header(header: Mapping[str, Any], rules: ClaimRules) -> tuple[str, str]:
    """The token's ``(alg, kid)``, or :class:`InvalidTokenError` (before any key lookup)."""
    if "crit" in header:  # RFC 7515 4.1.11: extensions we do not implement must be refused
        raise InvalidTokenError("the token's header names critical extensions")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in rules.algorithms:
        raise InvalidTokenError("the token's signing algorithm is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise InvalidTokenError("the token names no signing key (kid)")
    return alg, kid


def check_claims(
    claims: Mapping[str, Any], rules: ClaimRules, *, issuer: str, now: float
) -> Claims:
    """The :class:`Claims` of a token whose signature verified, by the module's table."""
    check_lifetime(claims, rules, now=now)
    tid = claims.get("tid")
    if rules.entra and not is_guid(tid):
        raise InvalidTokenError("the token has no tenant id (tid)")
    if not _issuer_accepted(claims.get("iss"), tid, issuer, entra=rules.entra):
        raise InvalidTokenError("the token's issuer is not accepted")
    if rules.tenants is not None:
        if not isinstance(tid, str) or tid.lower() not in rules.tenants:
            raise InvalidTokenError("the token's tenant is not accepted")
    elif TENANT_PLACEHOLDER in issuer:
        raise InvalidTokenError("the token's tenant is not accepted")
    elif rules.entra and issuer_tenant(issuer) not in (None, str(tid).lower()):
        raise InvalidTokenError("the token's issuer is not accepted (another tenant)")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in rules.audiences for a in audiences):
        raise InvalidTokenError("the token is not meant for this API (audience)")
    result = Claims(claims)
    if rules.app_only and not result.is_app_only:
        raise InsufficientPermissionsError(
            "this API accepts application tokens only, not a user's token",
            hint="call it with a token from the client-credentials grant.",
        )
    return result


def check_lifetime(claims: Mapping[str, Any], rules: ClaimRules, *, now: float) -> None:
    """``exp`` and ``nbf`` against ``now`` (Unix seconds), with the rules' leeway."""
    exp = claims.get("exp")
    if not _is_number(exp):
        raise InvalidTokenError("the token has no expiry (exp)")
    if now >= exp + rules.leeway:
        raise InvalidTokenError("the token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or now < nbf - rules.leeway):
        raise InvalidTokenError("the token is not valid yet (nbf)")


def missing_roles(claims: Claims, required: Collection[str], *, require_all: bool) -> list[str]:
    """The required roles the token lacks: all that are missing with ``require_all``, else
    every one of them when the token holds none (any one suffices)."""
    missing = [role for role in required if role not in claims.roles]
    if require_all:
        return missing
    return missing if len(missing) == len(required) else []


def issuer_tenant(issuer: str) -> str | None:
    """The tenant segment of an Entra issuer URL (a GUID or ``{tenantid}``), if any."""
    try:
        segments = urlsplit(issuer).path.split("/")
    except ValueError:
        return None
    for segment in segments:
        if segment == TENANT_PLACEHOLDER or is_guid(segment):
            return segment.lower()
    return None


def _issuer_accepted(iss: object, tid: object, issuer: str, *, entra: bool) -> bool:
    if not isinstance(iss, str):
        return False
    expected = issuer
    if TENANT_PLACEHOLDER in issuer:
        if not is_guid(tid):
            return False
        expected = issuer.replace(TENANT_PLACEHOLDER, str(tid).lower())
    if iss == expected:
        return True
    if not entra or not is_guid(tid):
        return False
    # v1 tokens (the API's manifest leaves accessTokenAcceptedVersion unset) come from the
    # same tenant's v1 issuer; the v2 issuer from discovery names that tenant.
    tenant = issuer_tenant(issuer)
    same_tenant = tenant == TENANT_PLACEHOLDER or tenant == str(tid).lower()
    return same_tenant and iss == _V1_ISSUER.format(tid=str(tid).lower())


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
