"""TLS rules for every connection that carries a credential or a token: verification stays on.

Nothing here does I/O; token sources and Key Vault access call these checks on what a user
hands them (a session, an SSL context) before anything is sent.
"""

from __future__ import annotations

import ssl

import aiohttp

from ._errors import ConfigurationError

__all__ = ["checked_session", "checked_ssl_context"]


def checked_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    """Refuse a session that would send its own credentials to the identity provider, or send
    ours without verifying TLS."""
    if session is None:
        return None
    if not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError("session must be an aiohttp.ClientSession")
    if session.auth is not None or any(name.lower() == "authorization" for name in session.headers):
        raise ConfigurationError(
            "the session passed to TokenProvider has default credentials",
            hint="its Authorization header or auth would go to the token endpoint: pass a "
            "session without them (or none, and the provider makes its own).",
        )
    # aiohttp keeps the connector's TLS setting private; read it defensively.
    verify = getattr(session.connector, "_ssl", True)
    if verify is False:  # (an aiohttp.Fingerprint pins the certificate: that verifies too)
        raise ConfigurationError(
            "the session passed to TokenProvider does not verify TLS certificates",
            hint="the client secret or assertion would go to an unverified server: use a "
            "session whose connector verifies (ssl=True or a verifying SSLContext).",
        )
    if isinstance(verify, ssl.SSLContext):
        checked_ssl_context(verify, "the session's SSL context")
    return session


def checked_ssl_context(context: object, what: str) -> ssl.SSLContext:
    """``context``, if it verifies certificates and host names."""
    if not isinstance(context, ssl.SSLContext):
        raise ConfigurationError(f"{what} must be an ssl.SSLContext")
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ConfigurationError(
            f"{what} does not verify certificates and host names",
            hint="TLS verification is never turned off for token requests: trust a test "
            "server's CA with ca_file= (or load_verify_locations) instead.",
        )
    return context
