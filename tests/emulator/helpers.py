"""Helpers shared by the emulator tests: trusted HTTP sessions, assertions and error checks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import jwt
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from aioentra.emulator import CertificateMaterial, Emulator


@contextmanager
def requests_session(emu: Emulator) -> Iterator[requests.Session]:
    """A requests session trusting only the emulator CA.

    ``trust_env=False`` matters: this machine exports REQUESTS_CA_BUNDLE, which would override
    ``verify`` (protocol-facts §2.2).
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = emu.ca_file
    try:
        yield session
    finally:
        session.close()


def http(emu: Emulator) -> aiohttp.ClientSession:
    """An aiohttp session trusting the emulator CA (use as ``async with``)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=emu.ssl_context()))


def _b64(data: bytes, *, pad: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


def make_assertion(
    cert: CertificateMaterial,
    client_id: str,
    audience: str,
    *,
    alg: str = "PS256",
    lifetime: float = 600,
    not_before: float | None = None,
    thumbprint: str | None = "auto",
    extra: dict[str, Any] | None = None,
) -> str:
    """A client assertion signed with ``cert`` (PS256 + x5t#S256, or RS256 + x5t)."""
    now = time.time()
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "exp": now + lifetime,
    }
    if not_before is not None:
        claims["nbf"] = not_before
    claims.update(extra or {})
    headers: dict[str, Any] = {}
    if thumbprint == "auto":
        headers["x5t#S256" if alg.startswith("PS") else "x5t"] = (
            cert.x5t_s256 if alg.startswith("PS") else cert.x5t
        )
    assert cert.private_key_pem is not None
    return jwt.encode(claims, cert.private_key_pem, algorithm=alg, headers=headers)


def padded_rs256_assertion(cert: CertificateMaterial, client_id: str, audience: str) -> str:
    """An RS256 assertion whose segments keep '=' padding and whose signature covers the padded
    bytes, exactly as azure-identity aio builds them (``base64.urlsafe_b64encode`` unstripped)."""
    assert cert.private_key_pem is not None
    key = serialization.load_pem_private_key(cert.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5t": cert.x5t + "="}
    claims = {
        "jti": str(uuid.uuid4()),
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "nbf": now,
        "exp": now + 1800,
    }
    signing_input = ".".join(_b64(json.dumps(part).encode(), pad=True) for part in (header, claims))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature, pad=True)}"


async def post_token(
    emu: Emulator,
    data: dict[str, str],
    *,
    tenant: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    """POST a form to a token endpoint; returns (status, JSON body, headers)."""
    url = f"{emu.base_url}/{tenant or emu.tenant_id}/oauth2/v2.0/token"
    async with http(emu) as session, session.post(url, data=data, headers=headers) as response:
        body = json.loads(await response.text())
        return response.status, body, response.headers


def secret_form(
    client_id: str, secret: str, scope: str = "https://vault.azure.net/.default"
) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
    }
