"""Who may call the emulated vault: the bearer challenge, token checks and access policies.

The checks of the real service, in the order the emulator applies them (protocol-facts
§4.3-4.4, [KVAUTH], [KVERR]; the relative order of 2-5 is not documented):

1. No ``Authorization: Bearer`` → 401 ``AKV10000`` with the challenge
   ``WWW-Authenticate: Bearer authorization="{authority}/{tenant}", resource="https://vault.azure.net"``.
   Every 401 carries that challenge; the SDK's first request is bodiless and unauthenticated
   on purpose, to learn it.
2. The token must be signed by a key of the identity platform (here: the emulator's own
   keys) → otherwise 401 ``AKV10046`` "Unable to resolve the key used for signature validation".
3. It must be within its lifetime → otherwise 401 ``[TokenExpired]`` (the service's
   ``S2S12086`` wording, Azure/azure-sdk-for-python#27266).
4. Its ``aud`` must be ``https://vault.azure.net`` (with or without trailing slash) →
   otherwise 401 ``AKV10022`` "Invalid audience".
5. It must come from the vault's tenant → otherwise 401 ``AKV10032`` "Invalid issuer".
6. The caller's ``oid`` must hold the operation's permission in an access policy →
   otherwise 403 ``Forbidden``/``AccessDenied`` naming ``appid``, ``oid`` and ``iss``
   (:mod:`._policies`). An identity with no access policy at all is denied everything.

Token values never reach logs or error messages; only the (public) JWT header is echoed
in the ``AKV10046`` message, as the service does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ._errors import KeyVaultError

__all__ = [
    "VAULT_AUDIENCES",
    "VAULT_RESOURCE",
    "Caller",
    "authenticate",
    "challenge_header",
]

VAULT_RESOURCE = "https://vault.azure.net"
"""The resource (v1 audience) of every Key Vault data-plane token."""

VAULT_AUDIENCES = frozenset({VAULT_RESOURCE, VAULT_RESOURCE + "/"})

TokenVerifier = Callable[[str], Mapping[str, Any]]
"""The emulator's full token check (signature, issuer, lifetime): the claims, or it raises."""


def challenge_header(authority: str, tenant_id: str, resource: str = VAULT_RESOURCE) -> str:
    """The ``WWW-Authenticate`` value: where to get a token, and for which resource.

    azure-keyvault's challenge policy takes the tenant from the first path segment of
    ``authorization`` and asks for ``{resource}/.default``; it ignores the host.
    """
    return f'Bearer authorization="{authority.rstrip("/")}/{tenant_id}", resource="{resource}"'


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request, from its access token's claims."""

    object_id: str
    app_id: str
    issuer: str
    tenant_id: str

    @property
    def display(self) -> str:
        """``appid=…;oid=…;iss=…``: how the service names a caller in a 403."""
        return f"appid={self.app_id};oid={self.object_id};iss={self.issuer}"


def _unauthorized(message: str) -> KeyVaultError:
    return KeyVaultError(401, "Unauthorized", message)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _unverified(token: str) -> tuple[str, Mapping[str, Any]] | None:
    """The raw header segment and the claims, without any check (for diagnostics only)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return token.split(".", 1)[0], claims


def authenticate(
    authorization: str | None,
    *,
    verify: TokenVerifier,
    signature_valid: Callable[[str], bool],
    tenant_id: str,
    clock_skew: float = 300,
    now: float | None = None,
) -> Caller:
    """Run steps 1-5 on an ``Authorization`` header; return the caller or raise a 401.

    ``verify`` is the emulator's full check (signature, issuer, lifetime);
    ``signature_valid`` checks the signature alone, so that a rejected token can be
    told apart as "not ours" (``AKV10046``) or "ours, but expired/foreign" below.
    """
    token = _bearer(authorization)
    parsed = _unverified(token) if token is not None else None
    if token is None or parsed is None:
        raise _unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
    encoded_header, unverified = parsed
    try:
        claims = verify(token)
    except Exception:
        if not signature_valid(token):
            raise _unauthorized(
                "AKV10046: Unable to resolve the key used for signature validation. "
                f"EncodedJwtHeader: '{encoded_header}'."
            ) from None
        current = time.time() if now is None else now
        exp, nbf = unverified.get("exp"), unverified.get("nbf")
        if isinstance(exp, (int, float)) and exp + clock_skew < current:
            raise _unauthorized("[TokenExpired] Error validating token: 'S2S12086'.") from None
        if isinstance(nbf, (int, float)) and nbf - clock_skew > current:
            raise _unauthorized("Token not yet valid.") from None
        claims = None
    audience = (claims or unverified).get("aud")
    if not isinstance(audience, str) or audience not in VAULT_AUDIENCES:
        raise _unauthorized(
            f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {audience}."
        )
    issuer = str(unverified.get("iss", ""))
    token_tenant = str(unverified.get("tid", ""))
    if claims is None or token_tenant.lower() != tenant_id.lower():
        expected = issuer.replace(token_tenant, tenant_id) if token_tenant else tenant_id
        raise _unauthorized(
            f"AKV10032: Invalid issuer. Expected one of {expected}, found {issuer}."
        )
    return Caller(
        object_id=str(claims.get("oid", "")),
        app_id=str(claims.get("appid") or claims.get("azp") or ""),
        issuer=issuer,
        tenant_id=token_tenant,
    )
