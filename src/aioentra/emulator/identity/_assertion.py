"""Client-assertion authentication (``private_key_jwt`` and federated credentials).

Certificate assertions (protocol-facts §1.5):

* header ``alg`` RS256 with ``x5t`` (SHA-1 thumbprint) or PS256 with ``x5t#S256`` (SHA-256); the
  thumbprint may arrive padded or unpadded; none at all -> AADSTS50027;
* the thumbprint must name a certificate registered on the app -> else AADSTS700027 ("The key
  was not found"), and the signature must verify with it -> else AADSTS700027 ("Key was found,
  but ...");
* ``iss`` = ``sub`` = client id (-> AADSTS50048 otherwise);
* ``aud`` = the token endpoint URL (-> AADSTS700023 otherwise);
* ``exp``/``nbf`` within the clock skew (-> AADSTS700024); ``exp`` may be a float, ``nbf``/``iat``
  may be missing, and the lifetime is not limited (msal uses 10 min, azure-identity aio 30 min);
* a repeated ``jti`` is accepted (msal reuses one assertion for 540 s) unless replay checks are on.

The JWT segments may carry base64 ``=`` padding (azure-identity aio): the signature is verified over
the segments exactly as received, which PyJWT does.

Federated credentials: an assertion whose ``iss``/``sub`` are not the client id is matched against
the app's federated identity credentials (issuer, subject, audience -> AADSTS70021 when none
match). The emulator trusts exactly one signer for such assertions: its own token-signing key. So
a token the emulator itself issued for ``api://AzureADTokenExchange`` (for example to a managed
identity) can be presented as ``client_assertion`` by an app that registered
``(issuer=emu.issuer(), subject=<the identity's object id>)`` -- the
managed-identity-as-federated-credential flow.
"""

from __future__ import annotations

import base64
import binascii
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import jwt

from .._certs import thumbprint_key
from .._errors import EntraError
from .._model import App, Tenant
from .._state import EmulatorState

__all__ = ["JWT_BEARER", "audience_matches", "verify_client_assertion"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ALGORITHMS = ("RS256", "PS256", "RS384", "PS384", "RS512", "PS512")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_TOKEN_PATHS = (("oauth2", "v2.0", "token"), ("oauth2", "token"))


def audience_matches(
    aud: str,
    *,
    state: EmulatorState,
    tenant: Tenant,
    port: int,
    hosts: frozenset[str] = frozenset(),
) -> bool:
    """Whether ``aud`` names this tenant's token endpoint on this emulator.

    Accepted: ``https://{localhost|127.0.0.1|[::1]|<subject alt name>}:{port}/{tenant id
    or domain}/oauth2/v2.0/token``
    (and the v1 ``/oauth2/token`` path), with or without a trailing slash.
    """
    try:
        url = urllib.parse.urlsplit(aud)
        url_port = url.port
    except ValueError:
        return False
    if url.scheme != "https" or (url.hostname or "") not in (_LOOPBACK_HOSTS | hosts):
        return False
    if url_port != port:
        return False
    parts = tuple(p for p in url.path.split("/") if p)
    if len(parts) < 2 or parts[1:] not in _TOKEN_PATHS:
        return False
    return state.resolve_tenant(parts[0]) == tenant


def _claim_time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _format_time(value: float | None) -> str:
    when = datetime.fromtimestamp(value or 0, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _check_time_window(claims: dict[str, Any], clock_skew: int) -> None:
    now = time.time()
    exp, nbf = _claim_time(claims.get("exp")), _claim_time(claims.get("nbf"))
    if exp is None or exp + clock_skew < now or (nbf is not None and nbf - clock_skew > now):
        raise EntraError(
            700024, now=_format_time(now), nbf=_format_time(nbf), exp=_format_time(exp)
        )


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _thumbprint_hex(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(
            thumbprint_key(value) + "=" * (-len(thumbprint_key(value)) % 4)
        )
    except (binascii.Error, ValueError):
        return value
    return raw.hex().upper()


def verify_client_assertion(
    assertion: str,
    app: App,
    *,
    state: EmulatorState,
    audience_ok: Callable[[str], bool],
) -> str:
    """Authenticate ``app`` by ``assertion``; returns ``"certificate"`` or ``"federated"``."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise EntraError(50027, detail="JWT token is invalid or malformed.") from exc
    iss, sub = claims.get("iss"), claims.get("sub")
    if iss == app.client_id or sub == app.client_id:
        _verify_certificate_assertion(assertion, header, claims, app, state=state)
        if not any(audience_ok(a) for a in _audiences(claims)):
            raise EntraError(700023)
        _check_time_window(claims, state.clock_skew)
        _check_replay(claims, app, state)
        return "certificate"
    _verify_federated_assertion(assertion, claims, app, state=state)
    return "federated"


def _verify_certificate_assertion(
    assertion: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    app: App,
    *,
    state: EmulatorState,
) -> None:
    if claims.get("iss") != claims.get("sub"):
        raise EntraError(50048, sub=claims.get("sub"), iss=claims.get("iss"))
    s256, sha1 = header.get("x5t#S256"), header.get("x5t")
    if not isinstance(s256, str) and not isinstance(sha1, str):
        raise EntraError(50027, detail="No certificate thumbprint specified in token header.")
    received = s256 if isinstance(s256, str) else str(sha1)
    wanted = thumbprint_key(received)
    match = next(
        (
            cert
            for cert in app.certificates
            if (cert.x5t_s256 if isinstance(s256, str) else cert.x5t) == wanted
        ),
        None,
    )
    thumbprint = _thumbprint_hex(received)
    if match is None:
        raise EntraError(
            700027, reason="The key was not found.", thumbprint=thumbprint, app_id=app.client_id
        )
    alg = header.get("alg")
    try:
        if alg not in _ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"unsupported alg {alg!r}")
        jwt.decode(
            assertion,
            match.certificate.public_key(),  # type: ignore[arg-type]
            algorithms=[str(alg)],
            options={
                "verify_aud": False,
                "verify_iss": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise EntraError(
            700027,
            reason="Key was found, but use of the key to verify the signature failed.",
            thumbprint=thumbprint,
            app_id=app.client_id,
        ) from exc


def _check_replay(claims: dict[str, Any], app: App, state: EmulatorState) -> None:
    if not state.reject_replayed_assertions:
        return
    jti = claims.get("jti")
    exp = _claim_time(claims.get("exp")) or time.time()
    if not isinstance(jti, str) or not state.remember_jti(app.client_id, jti, exp):
        raise EntraError(50012, detail="The client assertion was already used (jti replay).")


def _verify_federated_assertion(
    assertion: str, claims: dict[str, Any], app: App, *, state: EmulatorState
) -> None:
    iss, sub, audiences = claims.get("iss"), claims.get("sub"), _audiences(claims)
    trusted = any(
        fic.issuer == iss and fic.subject == sub and fic.audience in audiences
        for fic in app.federated_credentials
    )
    if not trusted:
        raise EntraError(70021, iss=iss, sub=sub, aud=" ".join(audiences))
    try:
        state.signer.verify(assertion)
    except jwt.PyJWTError as exc:
        raise EntraError(
            700027,
            reason="The key was not found.",
            thumbprint=str(jwt.get_unverified_header(assertion).get("kid")),
            app_id=app.client_id,
        ) from exc
    _check_time_window(claims, state.clock_skew)
    _check_replay(claims, app, state)
