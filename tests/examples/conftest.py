"""Run the programs in ``examples/`` against the session emulator, as a user would run them.

Each example runs in a fresh interpreter (``sys.executable -W error script``) configured only
through its environment, as a real deployment would be: ``SSL_CERT_FILE`` names a bundle that
also trusts the emulator's CA, ``AZURE_AUTHORITY_HOST`` points at the emulator, and the managed
identity variables at its managed-identity host. The examples hold no emulator-specific code.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
from aiohttp import web

from aioentra.emulator import MANAGED_IDENTITY_VARIABLES, App, Emulator, InvalidTokenError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Settings of the machine running the tests that would change how an example connects.
_MACHINE_SETTINGS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    *MANAGED_IDENTITY_VARIABLES,
)


@dataclass(frozen=True)
class Run:
    """One finished run of an example."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def error(self) -> str:
        """The ``error: ...`` line an example prints on failure (without the prefix)."""
        return self._stderr_line("error: ")

    @property
    def hint(self) -> str:
        """The ``hint: ...`` line that follows it."""
        return self._stderr_line("hint: ")

    def _stderr_line(self, prefix: str) -> str:
        found = [line for line in self.stderr.splitlines() if line.startswith(prefix)]
        assert len(found) == 1, self.stderr
        return found[0].removeprefix(prefix)

    def assert_nothing_leaked(self, *secrets: str) -> None:
        """No token (a JWT starts with ``eyJ``) and none of ``secrets`` in either stream."""
        output = self.stdout + self.stderr
        assert "eyJ" not in output
        for secret in secrets:
            assert secret not in output


async def run_example(
    script: Path, *args: str, env: Mapping[str, str], timeout: float = 60.0
) -> Run:
    """Run ``script`` to completion in a new interpreter, with warnings as errors."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(script),
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="session")
def trust_bundle(aioentra_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public CAs plus the emulator's: ``SSL_CERT_FILE`` replaces the default bundle."""
    bundle = tmp_path_factory.mktemp("tls") / "ca-bundle.pem"
    public = Path(certifi.where()).read_text()
    bundle.write_text(public + "\n" + Path(aioentra_emulator.ca_file).read_text())
    return bundle


@pytest.fixture
def base_env(aioentra_isolated: Emulator, trust_bundle: Path) -> dict[str, str]:
    """The environment of a deployment in the emulator's tenant, without an app identity."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in _MACHINE_SETTINGS and not name.startswith("AZURE_")
    }
    env["SSL_CERT_FILE"] = str(trust_bundle)
    env["AZURE_AUTHORITY_HOST"] = aioentra_isolated.base_url
    env["AZURE_TENANT_ID"] = aioentra_isolated.tenant_id
    return env


@pytest.fixture
def app_env(base_env: dict[str, str], aioentra_app: App) -> dict[str, str]:
    """``base_env`` with the app's azure-identity variables (``AZURE_CLIENT_ID``/``_SECRET``)."""
    assert aioentra_app.secret is not None
    return base_env | {
        "AZURE_CLIENT_ID": aioentra_app.client_id,
        "AZURE_CLIENT_SECRET": aioentra_app.secret,
    }


def bearer_claims(emu: Emulator, request: web.Request, audience: str) -> dict[str, object]:
    """The claims of the request's bearer token, if the emulator issued it for ``audience``;
    otherwise answers 401 as a protected API does."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = emu.verify_access_token(token)
    except InvalidTokenError:
        claims = {}
    if claims.get("aud") != audience:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return claims


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def https_api(emu: Emulator, routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """Serve GET ``routes`` over HTTPS on 127.0.0.1 with the emulator's server certificate (so
    clients that trust its CA trust this API); yields the origin, ``https://127.0.0.1:{port}``."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=emu.server_ssl_context())
        await site.start()
        port = runner.addresses[0][1]
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
