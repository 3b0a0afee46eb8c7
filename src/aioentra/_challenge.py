"""``WWW-Authenticate`` challenges and what a bearer client should do about a 401.

A protected API that rejects a token answers ``401`` with one or more challenges
(RFC 9110 section 11.6.1); a bearer resource uses the ``Bearer`` scheme and the
auth-params of RFC 6750 section 3::

    WWW-Authenticate: Bearer realm="api", error="invalid_token",
                      error_description="The access token expired"

Continuous Access Evaluation (CAE) adds a claims challenge: the API wants a token
that satisfies the JSON ``claims`` it sends, base64url-encoded::

    WWW-Authenticate: Bearer error="insufficient_claims",
                      claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ"

Everything here is pure: the middleware hands in the status and the header values
and gets back a decision.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "MAX_CHALLENGE_BYTES",
    "MAX_CLAIMS_BYTES",
    "Challenge",
    "Decision",
    "Retry",
    "decide",
    "decode_claims",
    "parse_bearer_challenge",
    "parse_challenges",
    "retry_decision",
]

MAX_CHALLENGE_BYTES = 8192
"""``WWW-Authenticate`` text read per response: values past this budget are not parsed (real
challenges, CAE claims included, are well under 2 KB; a hostile server must not cost CPU)."""
MAX_CLAIMS_BYTES = 4096
"""Longest ``claims`` value decoded."""

# RFC 9110 section 5.6.2 token, section 5.6.4 quoted-string, section 11.2 token68.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME = re.compile(_TOKEN)
_PARAM = re.compile(rf"({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*(?=,|$)")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*[ \t]*(?=,|$)")
_SEPARATORS = re.compile(r"[ \t,]*")
_SPACES = re.compile(r"[ \t]*")
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme and its auth-params.

    ``scheme`` and parameter names are lower-cased (both are case-insensitive);
    parameter values are unquoted and unescaped. ``token68`` holds the rare
    single-blob form (``Negotiate abc==``) instead of parameters.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    token68: str | None = None

    @property
    def error(self) -> str | None:
        """RFC 6750 ``error``: ``invalid_token``, ``insufficient_claims``, ..."""
        return self.params.get("error")

    @functools.cached_property
    def claims(self) -> str | None:
        """The decoded claims JSON of a claims challenge, or ``None``.

        ``None`` also when ``claims`` is present but is neither base64url JSON nor
        raw JSON: such a challenge cannot be answered.
        """
        raw = self.params.get("claims")
        return None if raw is None else decode_claims(raw)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` field value into its challenges.

    A field may hold several comma-separated challenges, and commas also separate
    the auth-params of one challenge; a ``name=value`` after a comma continues the
    current challenge, anything else starts the next one.

    Raises:
        ValueError: the value is not a list of challenges (the error says where).
    """
    challenges: list[Challenge] = []
    pos = _skip(_SEPARATORS, header, 0)
    while pos < len(header):
        scheme = _SCHEME.match(header, pos)
        if scheme is None:
            raise ValueError(f"expected an auth-scheme at offset {pos} of WWW-Authenticate")
        pos = _skip(_SPACES, header, scheme.end())
        params: dict[str, str] = {}
        token68: str | None = None
        if pos < len(header) and header[pos] != ",":
            if pos == scheme.end():
                raise ValueError(f"expected a space after the auth-scheme at offset {pos}")
            blob = _TOKEN68.match(header, pos)
            if _PARAM.match(header, pos) is None and blob is not None:
                token68 = blob.group().rstrip(" \t")
                pos = blob.end()
            else:
                pos = _parse_params(header, pos, params)
        challenges.append(
            Challenge(scheme.group().lower(), MappingProxyType(params), token68=token68)
        )
        pos = _skip(_SEPARATORS, header, pos)
    return challenges


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Position after ``pattern`` (which may match nothing) at ``pos``."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


def _parse_params(header: str, pos: int, params: dict[str, str]) -> int:
    """Read ``name=value`` auth-params separated by commas; stop before the next challenge."""
    while True:
        param = _PARAM.match(header, pos)
        if param is None:
            raise ValueError(f"expected an auth-param (name=value) at offset {pos}")
        name, value = param.group(1).lower(), param.group(2)
        if value.startswith('"'):
            value = _ESCAPE.sub(r"\1", value[1:-1])
        params.setdefault(name, value)  # a repeated name is invalid; the first one counts
        pos = param.end()
        after_comma = _skip(_SEPARATORS, header, pos)
        if after_comma >= len(header) or _PARAM.match(header, after_comma) is None:
            return pos
        pos = after_comma


def parse_bearer_challenge(header: str | Iterable[str]) -> Challenge | None:
    """The first ``Bearer`` challenge in one or several ``WWW-Authenticate`` values.

    Malformed values are skipped rather than raised: a 401 we cannot read is a
    401 we do not retry, and the caller still gets the response.
    """
    values = (header,) if isinstance(header, str) else header
    for value in _within_budget(values):
        try:
            challenges = parse_challenges(value)
        except ValueError:
            continue
        for challenge in challenges:
            if challenge.scheme == "bearer":
                return challenge
    return None


def _within_budget(values: Iterable[str]) -> Iterable[str]:
    """The values, in order, while their total length fits :data:`MAX_CHALLENGE_BYTES`."""
    budget = MAX_CHALLENGE_BYTES
    for value in values:
        budget -= len(value)
        if budget < 0:
            return
        yield value


def decode_claims(raw: str) -> str | None:
    """The claims JSON carried by a claims challenge.

    The value is base64url (padding usually stripped, as Entra and Graph send it);
    raw JSON is tolerated. Returns the JSON text to send as the ``claims`` token
    request parameter, or ``None`` if the value is not a JSON object.
    """
    text = raw.strip()
    if len(text) > MAX_CLAIMS_BYTES:
        return None
    if not text.startswith("{"):
        try:
            text = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return None
    return text if isinstance(parsed, dict) else None


class Retry(enum.Enum):
    """What to do about a 401 before sending the request once more."""

    CLAIMS = "claims"
    """Acquire a token that satisfies the challenge's claims."""
    REFRESH = "refresh"
    """Replace the rejected token with a newly issued one."""


@dataclass(frozen=True)
class Decision:
    """What to do about a response, and the ``Bearer`` challenge it was decided from."""

    retry: Retry | None
    challenge: Challenge | None = None


def decide(status: int, www_authenticate: Iterable[str]) -> Decision:
    """Decide whether a fresh token could turn this response into a success.

    ============================================================  ===========
    response                                                      decision
    ============================================================  ===========
    not 401                                                       ``None``
    401 without any ``WWW-Authenticate``                          ``REFRESH``
    401 ``Bearer`` with ``error="insufficient_claims"`` + claims  ``CLAIMS``
    401 ``Bearer`` with ``claims`` and no ``error``               ``CLAIMS``
    401 ``Bearer`` with ``error="invalid_token"`` or no error     ``REFRESH``
    401 ``Bearer`` with any other error (``invalid_request`` ...)  ``None``
    401 ``insufficient_claims`` whose claims cannot be decoded    ``None``
    401 whose challenges are not ``Bearer`` (``Basic``, ...)       ``None``
    401 whose challenges exceed :data:`MAX_CHALLENGE_BYTES`        ``None``
    ============================================================  ===========

    A 401 with no challenge at all breaks RFC 9110 but is common; one refresh is cheap and
    bounded, so it is treated like ``invalid_token``. The header values are parsed once.
    """
    if status != 401:
        return Decision(None)
    values = list(www_authenticate)
    if not values:
        return Decision(Retry.REFRESH)
    challenge = parse_bearer_challenge(values)
    if challenge is None:
        return Decision(None)
    error = challenge.error
    if "claims" in challenge.params and error in (None, "insufficient_claims"):
        return Decision(Retry.CLAIMS if challenge.claims is not None else None, challenge)
    if error in (None, "invalid_token"):
        return Decision(Retry.REFRESH, challenge)
    return Decision(None, challenge)


def retry_decision(status: int, www_authenticate: Iterable[str]) -> Retry | None:
    """:func:`decide`'s verdict alone."""
    return decide(status, www_authenticate).retry
