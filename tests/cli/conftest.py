"""The command line against the session's emulator: ``main([...])`` in-process, its output
captured, and a small HTTPS API (served with the emulator's certificate) for ``call``.

Every run through the ``cli`` fixture checks that the output holds neither the app's secret
nor anything that looks like a JWT ("eyJ"), unless the test asked for ``--raw``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from aioentra._cli import main
from aioentra.emulator import Api, App, Emulator, InvalidTokenError
from aioentra.emulator._net import run_in_thread

AZURE_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_ADDITIONALLY_ALLOWED_TENANTS",
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def emu(aioentra_isolated: Emulator) -> Emulator:
    return aioentra_isolated


@pytest.fixture
def api(aioentra_api: Api) -> Api:
    return aioentra_api


@pytest.fixture
def scope(api: Api) -> str:
    return f"{api.identifier_uri}/.default"


@pytest.fixture
def app(emu: Emulator, api: Api, aioentra_app: App) -> App:
    """An app granted ``Test.Read`` on the API."""
    emu.grant(aioentra_app, api, ["Test.Read"])
    return aioentra_app


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch, emu: Emulator, app: App) -> dict[str, str]:
    """azure-identity's variables for ``app``, the authority host being the emulator."""
    values = {
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": app.client_id,
        "AZURE_CLIENT_SECRET": str(app.secret),
        "AZURE_AUTHORITY_HOST": emu.base_url,
    }
    for name, value in values.items():
        clean_env.setenv(name, value)
    return values


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], aioentra_app: App) -> Callable[..., Result]:
    """``cli(*argv, raw=False) -> Result``: run ``main`` and check nothing secret came out."""

    def run(*argv: str, raw: bool = False, secrets: tuple[str, ...] = ()) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        for secret in (str(aioentra_app.secret), *secrets):
            assert secret not in shown, "a secret was printed"
        if not raw:
            assert "eyJ" not in shown, "something like a JWT was printed"
        return Result(code, captured.out, captured.err)

    return run


# -- a certificate credential whose expiry the test chooses ------------------------------------


def certificate_bundle(path: Path, *, days_left: int) -> bytes:
    """Write an RSA key + self-signed certificate PEM to ``path``; return the certificate PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aioentra-cli-test")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(key_pem + cert_pem)
    return cert_pem


# -- the API that `call` talks to ----------------------------------------------------------------


@dataclass
class LocalApi:
    """An HTTPS API on 127.0.0.1 that accepts the emulator's tokens for one audience.

    ``GET /things`` answers 200 with a token that has the ``Test.Read`` role, 403 without it,
    401 without a valid token; ``POST /echo`` returns what it got; ``/boom`` is a 500 and
    ``/reject`` always a 401 ``invalid_token`` challenge. ``GET /headers`` echoes the request's
    headers as JSON (httpbin's ``/headers``), ``GET /raw`` as text lines, and ``/headers-401``
    echoes them in a 401 whose challenge holds the token too (a careless API); ``received``
    holds every ``Authorization`` value these three got.
    """

    origin: str = ""
    audiences: set[str] = field(default_factory=set)
    seen_authorization: list[bool] = field(default_factory=list)
    received: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


def _api_app(emu: Emulator, state: LocalApi) -> web.Application:
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}

    def claims_of(request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        state.seen_authorization.append(bool(header))
        if not header.startswith("Bearer "):
            return None
        try:
            claims = emu.verify_access_token(header.removeprefix("Bearer "))
        except InvalidTokenError:
            return None
        return claims if claims.get("aud") in state.audiences else None

    async def things(request: web.Request) -> web.Response:
        claims = claims_of(request)
        if claims is None:
            return web.json_response({"error": "invalid_token"}, status=401, headers=challenge)
        if "Test.Read" not in claims.get("roles", []):
            return web.json_response({"error": "forbidden", "need": "Test.Read"}, status=403)
        return web.json_response({"things": ["a", "b"], "azp": claims.get("azp")})

    async def echo(request: web.Request) -> web.Response:
        if claims_of(request) is None:
            return web.json_response({"error": "invalid_token"}, status=401, headers=challenge)
        return web.json_response(
            {
                "body": (await request.read()).decode(),
                "content_type": request.headers.get("Content-Type"),
                "x_test": request.headers.get("X-Test"),
            }
        )

    async def boom(request: web.Request) -> web.Response:
        return web.json_response({"error": "server_error"}, status=500)

    async def reject(request: web.Request) -> web.Response:
        claims_of(request)
        return web.Response(status=401, text="no", headers=challenge)

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="plain text\n")

    def echoed(request: web.Request) -> dict[str, str]:
        state.received.append(request.headers.get("Authorization", ""))
        return dict(request.headers)

    async def headers(request: web.Request) -> web.Response:
        return web.json_response({"headers": echoed(request), "url": str(request.url)})

    async def raw(request: web.Request) -> web.Response:
        lines = [f"{name}: {value}" for name, value in echoed(request).items()]
        return web.Response(text="\n".join([f"GET {request.path_qs} HTTP/1.1", *lines]) + "\n")

    async def headers_401(request: web.Request) -> web.Response:
        sent = echoed(request)
        token = sent.get("Authorization", "").removeprefix("Bearer ")
        challenge = f'Bearer error="invalid_token", error_description="rejected {token}"'
        return web.json_response(
            {"error": "invalid_token", "you_sent": sent},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    app = web.Application()
    app.router.add_get("/things", things)
    app.router.add_post("/echo", echo)
    app.router.add_get("/boom", boom)
    app.router.add_get("/reject", reject)
    app.router.add_get("/plain", plain)
    app.router.add_get("/headers", headers)
    app.router.add_get("/raw", raw)
    app.router.add_get("/headers-401", headers_401)
    return app


@contextlib.contextmanager
def _serving(emu: Emulator, api: Api, *, tls: bool) -> Iterator[LocalApi]:
    """The API, served on its own loop in a thread (``main`` runs its own ``asyncio.run``)."""
    state = LocalApi(audiences={api.identifier_uri, api.app_id})
    runner = web.AppRunner(_api_app(emu, state), handle_signals=False, access_log=None)
    scheme = "https" if tls else "http"

    async def start() -> None:
        await runner.setup()
        context = emu.server_ssl_context() if tls else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        state.origin = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def stop() -> None:
        # As Emulator.close(): a connection still open after cleanup would outlive the loop.
        server = runner.server
        transports = [c.transport for c in server.connections] if server else []
        await runner.cleanup()
        for transport in transports:
            if transport is not None:
                transport.abort()

    with run_in_thread(start, stop, name=f"aioentra-cli-test-api-{scheme}"):
        yield state


@pytest.fixture
def test_api(emu: Emulator, api: Api) -> Iterator[LocalApi]:
    """The API over HTTPS, with the emulator's server certificate."""
    with _serving(emu, api, tls=True) as state:
        yield state


@pytest.fixture
def http_api(emu: Emulator, api: Api) -> Iterator[LocalApi]:
    """The same API over plain http on 127.0.0.1 (a local test server)."""
    with _serving(emu, api, tls=False) as state:
        yield state


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
