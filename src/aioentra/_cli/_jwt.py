"""Reading a JWT's header and claims without checking its signature, and showing times.

Everything here is pure and offline. Nothing verifies the signature: what it shows is what
the token *says*, which is what a developer debugging a 401 wants to see, and never proof of
anything. The signature part is only measured, never returned.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "SUMMARY_CLAIMS",
    "TIME_CLAIMS",
    "Jwt",
    "NotAJwtError",
    "claims_or_empty",
    "human_duration",
    "parse_jwt",
    "strip_bearer",
    "times",
    "token_summary",
    "utc_time",
    "when",
]

TIME_CLAIMS = ("iat", "nbf", "exp")
"""NumericDate claims (RFC 7519 section 4.1), shown as UTC times too."""

_SHAPE_HINT = "a JWT is three base64url parts joined by dots: header.payload.signature"


class NotAJwtError(ValueError):
    """The text is not a compact JWS (or is an encrypted JWT); ``hint`` says what was expected."""

    def __init__(self, message: str, hint: str = _SHAPE_HINT) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)


class Jwt(NamedTuple):
    """A decoded compact JWS: the header and the claims, and the signature's size only."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signature_bytes: int


def strip_bearer(text: str) -> str:
    """The token in ``text``: surrounding white space and a leading ``Bearer `` (or a whole
    ``Authorization: Bearer ...`` header line) removed."""
    value = text.strip()
    if value.lower().startswith("authorization:"):
        value = value[len("authorization:") :].strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and (rest or value.lower() == "bearer"):
        value = rest.strip()
    return value


def parse_jwt(text: str) -> Jwt:
    """Decode a compact JWS (``header.payload.signature``); raises :class:`NotAJwtError`."""
    token = strip_bearer(text)
    if not token:
        raise NotAJwtError("no token given", hint="pass the token, or '-' to read it from stdin.")
    parts = token.split(".")
    if len(parts) == 5:
        raise NotAJwtError(
            "this is an encrypted token (JWE, five parts): its claims cannot be read without "
            "the recipient's key",
            hint="only the API it was issued for can decrypt it; decode reads signed JWTs.",
        )
    if len(parts) != 3:
        raise NotAJwtError(f"not a JWT: expected 3 parts separated by '.', found {len(parts)}")
    header = _json_part(parts[0], "header")
    claims = _json_part(parts[1], "payload")
    signature = _b64decode(parts[2], "signature")
    return Jwt(header=header, claims=claims, signature_bytes=len(signature))


def _b64decode(part: str, what: str) -> bytes:
    if any(c not in _B64URL for c in part):
        raise NotAJwtError(f"not a JWT: the {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise NotAJwtError(f"not a JWT: the {what} is not base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def _json_part(part: str, what: str) -> dict[str, Any]:
    raw = _b64decode(part, what)
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise NotAJwtError(f"not a JWT: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise NotAJwtError(f"not a JWT: the {what} is not a JSON object")
    return value


# -- times ----------------------------------------------------------------------------------------


def _number(value: object) -> float | None:
    """A NumericDate's seconds, or ``None`` for anything that is not a finite number (a
    boolean, a string, ``1e400``, ``NaN``, an integer too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def utc_time(seconds: float) -> str:
    """``2024-05-01T12:00:00Z`` for Unix ``seconds``."""
    try:
        moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def human_duration(seconds: float) -> str:
    """``1d 2h``, ``59m 59s``, ``12s``: the two largest units of ``abs(seconds)``."""
    left = int(abs(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size}{name}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def when(seconds: float, now: float) -> str:
    """``2024-05-01T12:00:00Z (in 59m 59s)`` / ``(... ago)``."""
    delta = seconds - now
    relative = f"in {human_duration(delta)}" if delta >= 0 else f"{human_duration(delta)} ago"
    return f"{utc_time(seconds)} ({relative})"


def times(claims: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """``{claim: {"utc": ..., "seconds_from_now": ...}}`` for the time claims present."""
    shown: dict[str, dict[str, Any]] = {}
    for name in TIME_CLAIMS:
        value = _number(claims.get(name))
        if value is not None:
            shown[name] = {"utc": utc_time(value), "seconds_from_now": int(value - now)}
    return shown


# -- what matters in an access token ---------------------------------------------------------------

SUMMARY_CLAIMS = ("aud", "iss", "tid", "appid", "azp", "oid", "roles")
"""The claims an API authorizes an app-only token by (``appid`` in v1 tokens, ``azp`` in v2)."""


def token_summary(claims: Mapping[str, Any], expires_on: float, now: float) -> dict[str, Any]:
    """The claims of interest of an access token, and its expiry (the ``exp`` claim when it
    has one, else ``expires_on``) in seconds and as a UTC time."""
    summary: dict[str, Any] = {name: claims[name] for name in SUMMARY_CLAIMS if name in claims}
    roles = claims.get("roles")
    summary["roles"] = [str(r) for r in roles] if isinstance(roles, list) else []
    exp = _number(claims.get("exp"))
    expiry = exp if exp is not None else expires_on
    summary["exp"] = int(expiry)
    summary["expires_at"] = utc_time(expiry)
    summary["expires_in"] = int(expiry - now)
    return summary


def claims_or_empty(token: str) -> dict[str, Any]:
    """The claims of ``token`` if it is a JWT, else ``{}`` (an opaque token)."""
    try:
        return parse_jwt(token).claims
    except NotAJwtError:
        return {}
