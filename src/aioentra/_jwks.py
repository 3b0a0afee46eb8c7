"""An authority's signing keys: OIDC discovery, then its JWKS, checked before they are kept.

``parse_discovery`` and ``parse_jwks`` are pure; :class:`KeyFetcher` does the two GETs over
a verifying aiohttp session. A malformed answer raises and is never cached: the validator's
cell keeps the last good keys and backs off instead.

When keys are fetched (the validator's cell decides, see :mod:`aioentra._validator`):

=================================================  ==========================================
event                                              fetch
=================================================  ==========================================
first token                                        discovery + JWKS; every caller waits for it
keys older than ``refresh_interval`` (12 h)        in the background; callers keep the keys
a token names a ``kid`` the keys lack              one fetch shared by every such caller, at
                                                   most once per ``unknown_key_interval``
                                                   (5 min): a forged ``kid`` costs one fetch
a fetch fails                                      none for a back-off (1 s doubling to 60 s);
                                                   the last good keys stay in use
=================================================  ==========================================
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from ._authority import is_loopback_host
from ._errors import AioEntraError, ConfigurationError, IdentityProviderUnavailableError
from ._netfail import connection_error

__all__ = ["KEY_TYPES", "KeyFetcher", "SigningKeys", "parse_discovery", "parse_jwks"]

logger = logging.getLogger("aioentra.validation")

MAX_DOCUMENT_BYTES = 1024 * 1024
"""Largest discovery or JWKS document read (Entra's are a few KB)."""
MAX_KEYS = 100
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
"""The JWK ``kty`` each algorithm family needs (by the algorithm's first two letters)."""


@dataclass(frozen=True)
class SigningKeys:
    """One authority's issuer and its public signing keys, by ``kid``."""

    issuer: str
    jwks_uri: str
    keys: Mapping[str, jwt.PyJWK] = field(repr=False)

    def __repr__(self) -> str:
        return f"SigningKeys(issuer={self.issuer!r}, kids={sorted(self.keys)!r})"


def parse_discovery(document: object, url: str) -> tuple[str, str]:
    """``(issuer, jwks_uri)`` of an OpenID configuration document fetched from ``url``."""
    if not isinstance(document, dict):
        raise _malformed(url, "is not a JSON object")
    issuer = document.get("issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise _malformed(url, "has no issuer URL")
    if not isinstance(jwks_uri, str) or not _secure(jwks_uri):
        raise _malformed(url, "has no https jwks_uri")
    return issuer, jwks_uri


def parse_jwks(document: object, url: str, algorithms: frozenset[str]) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by ``kid``: keys of a type the allowed
    algorithms need, for signatures (``use`` absent or ``sig``). None usable is an error."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _malformed(url, "is not a JWKS document (no 'keys' list)")
    wanted = {KEY_TYPES[alg[:2]] for alg in algorithms if alg[:2] in KEY_TYPES}
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"][:MAX_KEYS]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("kty") not in wanted:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[kid] = jwt.PyJWK(_without_alg(entry))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            logger.warning("skipping signing key %r from %s: it does not parse", kid, url)
    if not keys:
        raise _malformed(url, "holds no usable signing key")
    return keys


class KeyFetcher:
    """GETs discovery and the JWKS with one session; every failure is a typed error."""

    def __init__(self, metadata_url: str, *, algorithms: frozenset[str], timeout: float) -> None:
        self.metadata_url = metadata_url
        self._algorithms = algorithms
        self._timeout = timeout

    async def fetch(self, session: aiohttp.ClientSession) -> SigningKeys:
        issuer, jwks_uri = parse_discovery(
            await self._get_json(session, self.metadata_url), self.metadata_url
        )
        keys = parse_jwks(await self._get_json(session, jwks_uri), jwks_uri, self._algorithms)
        return SigningKeys(issuer=issuer, jwks_uri=jwks_uri, keys=keys)

    async def _get_json(self, session: aiohttp.ClientSession, url: str) -> Any:
        what = f"GET {url}"
        timeout = aiohttp.ClientTimeout(total=self._timeout)  # the body read included
        try:
            async with session.get(url, allow_redirects=False, timeout=timeout) as response:
                status = response.status
                body = await _bounded_body(response) if status == 200 else b""
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise connection_error(what, exc, timeout=self._timeout) from None
        if status != 200:
            raise _status_error(url, status)
        if body is None:
            raise _malformed(url, f"is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _malformed(url, "is not JSON") from None


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or ``None`` when it is larger than :data:`MAX_DOCUMENT_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _without_alg(entry: Mapping[str, Any]) -> dict[str, Any]:
    # The token's header names the algorithm (checked against the allow-list); a key's own
    # "alg" would only narrow PyJWK's default for its type.
    return {name: value for name, value in entry.items() if name != "alg"}


def _secure(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def _status_error(url: str, status: int) -> AioEntraError:
    if status in (404, 400, 401, 403, 410):
        return ConfigurationError(
            f"no OpenID configuration or signing keys at {url} (HTTP {status})",
            hint="check the authority and tenant of the API's settings; for an identity "
            "provider that is not Entra ID, pass oidc_authority= its issuer URL.",
            status=status,
        )
    return IdentityProviderUnavailableError(
        f"GET {url} answered HTTP {status}",
        hint="the identity provider failed; the fetch is retried after a back-off, and tokens "
        "are checked with the last good keys meanwhile, if there are any.",
        status=status,
    )


def _malformed(url: str, problem: str) -> IdentityProviderUnavailableError:
    return IdentityProviderUnavailableError(
        f"the document at {url} {problem}",
        hint="the identity provider (or a proxy) answered something else than its OpenID "
        "metadata; it is not used and the fetch is retried after a back-off.",
    )
