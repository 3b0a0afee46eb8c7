"""Connection and TLS failures keep their reason, with a hint that fits it."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from aioentra import ClientSecret, IdentityProviderUnavailableError, RetryPolicy, TokenProvider
from aioentra._netfail import connection_error

pytestmark = pytest.mark.anyio


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_message = message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("certificate is not yet valid", "clock"),
        ("certificate has expired", "clock"),
        ("Hostname mismatch, certificate is not valid for 'x'.", "host name"),
        ("unable to get local issuer certificate", "ca_file"),
        ("self-signed certificate in certificate chain", "ca_file"),
    ],
)
def test_tls_verification_failures(message: str, hint: str) -> None:
    error = connection_error("GET https://login.example", _verify_error(message))
    assert message in error.message and hint in (error.hint or "")
    assert not error.retryable


def test_socket_failures() -> None:
    refused = aiohttp.ClientOSError(111, "Connect call failed ('127.0.0.1', 9)")
    error = connection_error("POST https://login.example", refused)
    assert "Connect call failed" in error.message and "port" in (error.hint or "")
    dns = socket.gaierror(-2, "Name or service not known")
    error = connection_error("GET https://nowhere.example", dns)
    assert "could not be resolved" in error.message and "DNS" in (error.hint or "")
    error = connection_error("POST https://login.example", TimeoutError(), timeout=2.5)
    assert "timed out after 2.5s" in error.message and error.retryable
    closed = aiohttp.ServerDisconnectedError()
    assert "closed the connection" in connection_error("POST x", closed).message


@pytest.fixture
def future_ca(tmp_path: Path) -> tuple[trustme.CA, trustme.LeafCert, str]:
    ca = trustme.CA()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    leaf = ca.issue_cert("127.0.0.1", not_before=later, not_after=later + dt.timedelta(days=30))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, leaf, str(ca_file)


@pytest.fixture
async def not_yet_valid_server(
    future_ca: tuple[trustme.CA, trustme.LeafCert, str],
) -> AsyncIterator[int]:
    _, leaf, _ = future_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server = site._server
    assert server is not None
    yield server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    await runner.cleanup()


async def test_a_skewed_clock_is_named_as_the_cause(
    not_yet_valid_server: int, future_ca: tuple[trustme.CA, trustme.LeafCert, str]
) -> None:
    provider = TokenProvider(
        ClientSecret("unused"),
        tenant_id="contoso.onmicrosoft.com",
        client_id="11111111-2222-3333-4444-555555555555",
        authority=f"https://127.0.0.1:{not_yet_valid_server}",
        ca_file=future_ca[2],
        retry=RetryPolicy(max_attempts=1),
    )
    async with provider:
        with pytest.raises(IdentityProviderUnavailableError) as info:
            await provider.get_token("api://x/.default")
    assert "certificate is not yet valid" in str(info.value)
    assert "clock" in (info.value.hint or "")
