"""Why a request never got an answer, in words a user can act on.

Everything here is pure: it turns what aiohttp or ssl raised into a typed error whose message
keeps the underlying reason (the TLS verification message, the socket error) and whose hint
fits that reason. Nothing from the request (its form, its headers) is ever part of it.

===============================================  ==========================================
what failed                                      hint
===============================================  ==========================================
certificate not yet valid / expired              check this machine's clock (or the server's
                                                 certificate)
hostname mismatch                                check the host name (and a proxy in between)
unknown issuer, self-signed chain                trust the CA (ca_file= / ssl_context=)
other TLS failure                                check the server speaks TLS on that port
name resolution                                  check the host name and DNS
connection refused / unreachable                 check the host, port, proxy and firewall
server closed the connection, resets             the server failed; retried
timeout                                          the server is slow; retried, within
                                                 total_timeout
===============================================  ==========================================
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TypeVar

import aiohttp

from ._errors import IdentityProviderUnavailableError

__all__ = ["connection_error"]

E = TypeVar("E", bound=BaseException)

_CLOCK_HINT = (
    "check this machine's clock (a clock far off makes valid certificates look "
    "expired or not yet valid), or the server's certificate dates."
)
_TRUST_HINT = (
    "the server's certificate is not trusted: trust its CA with ca_file= (or ssl_context=), "
    "AIOENTRA_CA_FILE or AzureAd.CaFile for a test server, or fix the proxy's certificate "
    "chain. Verification is never turned off."
)


def connection_error(
    what: str, exc: BaseException, *, timeout: float | None = None
) -> IdentityProviderUnavailableError:
    """The typed error for ``exc``, raised while doing ``what`` (e.g. ``"POST https://host"``)."""
    verify = _verification_failure(exc)
    if verify is not None:
        reason, hint = _tls_hint(verify)
        error = IdentityProviderUnavailableError(
            f"{what} failed: TLS verification failed: {reason}", hint=hint
        )
        error.retryable = False
        return error
    ssl_error = _find(exc, ssl.SSLError)
    if ssl_error is not None:
        reason = getattr(ssl_error, "reason", None) or type(ssl_error).__name__
        return IdentityProviderUnavailableError(
            f"{what} failed: TLS error: {reason}",
            hint="check that the server speaks TLS on this port and that no proxy breaks the "
            "connection.",
        )
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        after = f" after {timeout:.1f}s" if timeout is not None else ""
        return IdentityProviderUnavailableError(
            f"{what} timed out{after}",
            hint="the server is slow or unreachable; RetryPolicy.attempt_timeout bounds an "
            "attempt and total_timeout the whole request.",
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return IdentityProviderUnavailableError(
            f"{what} failed: the server closed the connection without an answer",
            hint="the server or a proxy in between failed; the request is retried.",
        )
    os_error = _find(exc, OSError)
    if isinstance(os_error, socket.gaierror):
        return IdentityProviderUnavailableError(
            f"{what} failed: the host name could not be resolved ({_strerror(os_error)})",
            hint="check the host name (the authority or AZURE_AUTHORITY_HOST) and DNS.",
        )
    if os_error is not None:
        return IdentityProviderUnavailableError(
            f"{what} failed: {_strerror(os_error)}",
            hint="check the host, port, proxy settings (HTTPS_PROXY) and firewall.",
        )
    return IdentityProviderUnavailableError(
        f"{what} failed: {type(exc).__name__}",
        hint="the server is unreachable or failed; check the network and proxy settings.",
    )


def _verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        inner = exc.certificate_error
        if isinstance(inner, ssl.SSLCertVerificationError):
            return inner
    return _find(exc, ssl.SSLCertVerificationError)


def _tls_hint(error: ssl.SSLCertVerificationError) -> tuple[str, str]:
    message = str(getattr(error, "verify_message", "") or error.reason or "").strip()
    lowered = message.lower()
    if "not yet valid" in lowered or "expired" in lowered:
        return message, _CLOCK_HINT
    if "hostname" in lowered or "ip address mismatch" in lowered:
        return message, (
            "the certificate is for another host: check the host name you configured, and "
            "whether a proxy answers in the server's place."
        )
    return message or "certificate verify failed", _TRUST_HINT


def _strerror(error: OSError) -> str:
    text = error.strerror or (str(error.args[-1]) if error.args else "") or type(error).__name__
    return str(text)[:200]


def _find(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` or the first exception of type ``kind`` in its cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        if isinstance(current, aiohttp.ClientOSError) and current.args:
            nested = current.args[-1]
            if isinstance(nested, kind):
                return nested
        current = current.__cause__ or current.__context__
    return None
