"""TLS rules for every connection that carries a credential or a token: verification stays on.

The checks do no I/O; token sources and Key Vault access call them on what a user hands them
(a session, an SSL context) before anything is sent. :func:`load_verify_context` reads a CA
file off the event loop, and :func:`load_aiohttp` imports aiohttp off it.
"""

from __future__ import annotations

import functools
import ssl
import sys
from typing import TYPE_CHECKING

from ._errors import ConfigurationError
from ._workers import WorkerPool

if TYPE_CHECKING:
    import aiohttp

__all__ = ["checked_session", "checked_ssl_context", "load_aiohttp", "load_verify_context"]


async def load_aiohttp(workers: WorkerPool) -> None:
    """Import aiohttp in one of ``workers``, unless it is imported already.

    A token source calls this when it starts, before it opens its session: importing aiohttp
    (about a hundred modules, and the default SSL contexts it makes) takes longer than a token
    request to a nearby server, and the event loop does not wait for it. A missing or broken
    aiohttp is a :class:`ConfigurationError`."""
    if "aiohttp" not in sys.modules:
        await workers.run(_import_aiohttp)


def _import_aiohttp() -> None:
    try:
        import aiohttp  # noqa: F401
    except Exception as exc:  # ImportError, or whatever a broken aiohttp raises
        raise ConfigurationError(
            f"aiohttp could not be imported: {type(exc).__name__}",
            hint="aioentra sends its requests with aiohttp (one of its dependencies): "
            "reinstall it, e.g. pip install --force-reinstall 'aiohttp>=3.12.1'.",
        ) from None


def checked_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    """Refuse a session that would send its own credentials to the identity provider, or send
    ours without verifying TLS."""
    if session is None:
        return None
    import aiohttp  # a session was made with it: loaded already

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


async def load_verify_context(ca_file: str | None, thread_name: str) -> ssl.SSLContext:
    """A verifying context with ``ca_file`` (or the system's trust store, ``SSL_CERT_FILE``
    included), read once in a worker thread of our own (ended before returning).

    The variables are read by this call, when a session is opened, not when aiohttp was
    imported (aiohttp's own default context is made then). A ``ca_file`` replaces the system's
    store: ``SSL_CERT_FILE`` is not read with it."""
    workers = WorkerPool(1, name=thread_name)
    try:
        return await workers.run(functools.partial(ssl.create_default_context, cafile=ca_file))
    except (OSError, ssl.SSLError):
        raise ConfigurationError(
            f"ca_file {ca_file!r} could not be loaded",
            hint="give a readable PEM file with the CA certificates to trust.",
        ) from None
    finally:
        await workers.close()
