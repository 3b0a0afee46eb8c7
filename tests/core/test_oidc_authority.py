"""``TokenProvider(oidc_authority=issuer)``: an OpenID provider that is not Entra's own authority.

msal reads ``{issuer}/.well-known/openid-configuration``, checks its issuer and sends token
requests to its ``token_endpoint``. Three peers serve it here: the emulator (whose issuer
``{base}/{tenant}/v2.0`` is also a valid OpenID issuer), a plain-http loopback server, and
axa-group's ``oauth2-mock-server`` (Node.js, ``tests/core/oidc_peer``), an OpenID provider of
nobody's making here. The last is skipped when Node.js or the package is missing, unless
``AIOENTRA_REQUIRE_OIDC_PEER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import jwt
import pytest
import trustme
from aiohttp import web

from aioentra import (
    Certificate,
    ClientSecret,
    ConfigurationError,
    RetryPolicy,
    TokenProvider,
)
from aioentra.emulator import App, Emulator, Fault

from .certs import cert_pem, key_pem, make_certificate
from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

PEER_DIR = Path(__file__).parent / "oidc_peer"
REQUIRE_PEER = "AIOENTRA_REQUIRE_OIDC_PEER"
ISSUER = "https://login.contoso.com/11111111-2222-3333-4444-555555555555/v2.0"


def discoveries(emulator: Emulator, path: str) -> int:
    """GET requests the emulator received for ``path`` (an OpenID configuration)."""
    return sum(1 for r in emulator.requests.records if r.method == "GET" and r.path == path)


def issuer_path(emulator: Emulator) -> str:
    return f"/{emulator.tenant_id}/v2.0/.well-known/openid-configuration"


# -- validated before any request --------------------------------------------------------------


def test_the_issuer_is_the_authority() -> None:
    provider = TokenProvider(ClientSecret("s3cret-value"), client_id="c", oidc_authority=ISSUER)
    assert provider.authority == ISSUER
    assert provider.tenant_id == "11111111-2222-3333-4444-555555555555"
    assert repr(provider) == (
        f"TokenProvider(client_id='c', oidc_authority={ISSUER!r}, credential=ClientSecret(***))"
    )
    slash = TokenProvider(ClientSecret("s"), client_id="c", oidc_authority=f" {ISSUER}/ ")
    assert slash.authority == ISSUER  # msal appends /.well-known/... itself


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"authority": "https://login.microsoftonline.com"}, "not both"),
        ({"tenant_id": "contoso.com"}, "not both"),
        ({"additionally_allowed_tenants": ["*"]}, "additionally_allowed_tenants"),
    ],
)
def test_oidc_authority_excludes_the_entra_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        TokenProvider(ClientSecret("s"), client_id="c", oidc_authority=ISSUER, **kwargs)
    assert info.value.hint


@pytest.mark.parametrize(
    ("issuer", "match"),
    [
        ("https://idp.example.com", "has no path"),
        ("https://idp.example.com/", "has no path"),
        (f"{ISSUER}/.well-known/openid-configuration", "discovery document's URL"),
        (f"{ISSUER}/.well-known", "a /.well-known URL"),
        (f"{ISSUER}/.WELL-KNOWN/jwks.json", "a /.well-known URL"),
        ("https://idp.example.com/.well-known/openid-configuration", "discovery document's URL"),
        ("login.contoso.com/tenant", "not an issuer URL"),
        ("https://login.contoso.com/ten ant", "not an issuer URL"),
        ("https://login.contoso.com/t?x=1", "query"),
        ("https://user@login.contoso.com/t", "user info"),
        ("ftp://login.contoso.com/t", "https URL"),
        ("http://login.contoso.com/t", "plain http"),
        ("http://127.0.0.1:8080/t", "allow_insecure_http=True"),
        ("https://bad_host/t", "invalid host"),
        (42, "must be a string"),
    ],
)
def test_a_bad_issuer_is_refused_with_a_hint(issuer: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        TokenProvider(ClientSecret("s"), client_id="c", oidc_authority=issuer)
    error = info.value
    assert error.status is None  # found before any request
    if match in ("has no path", "discovery document's URL", "a /.well-known URL"):
        assert error.hint and "msal" in error.hint


def test_the_hint_for_a_discovery_url_names_the_issuer() -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenProvider(
            ClientSecret("s"),
            client_id="c",
            oidc_authority=f"{ISSUER}/.well-known/openid-configuration",
        )
    assert repr(ISSUER) in (info.value.hint or "")


def test_a_well_known_url_hint_names_the_issuer() -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenProvider(
            ClientSecret("s"), client_id="c", oidc_authority=f"{ISSUER}/.well-known/jwks.json"
        )
    assert repr(ISSUER) in (info.value.hint or "")
    with pytest.raises(ConfigurationError) as root:
        TokenProvider(
            ClientSecret("s"),
            client_id="c",
            oidc_authority="https://idp.example.com/.well-known/openid-configuration",
        )
    assert "host's root cannot be used" in (root.value.hint or "")


@pytest.mark.parametrize(
    ("given", "issuer"),
    [
        ("https://login.contoso.com:443/t/v2.0", "https://login.contoso.com/t/v2.0"),
        ("https://LOGIN.contoso.com:443/t/v2.0/", "https://login.contoso.com/t/v2.0"),
        ("https://login.contoso.com:8443/t/v2.0", "https://login.contoso.com:8443/t/v2.0"),
        ("https://[::1]:443/t", "https://[::1]/t"),
    ],
)
def test_a_default_port_spelled_out_is_dropped(given: str, issuer: str) -> None:
    """msal compares the discovery document's issuer, which never names :443, with this URL."""
    provider = TokenProvider(ClientSecret("s"), client_id="c", oidc_authority=given)
    assert provider.authority == issuer


def test_a_default_port_is_dropped_from_an_entra_authority_and_plain_http() -> None:
    from aioentra._authority import Authority, OidcAuthority

    entra = Authority.parse("https://login.microsoftonline.com:443/contoso.com")
    assert entra.url == "https://login.microsoftonline.com/contoso.com"
    plain = OidcAuthority.parse("http://127.0.0.1:80/realms/dev", allow_insecure_http=True)
    assert plain.issuer == "http://127.0.0.1/realms/dev"
    assert OidcAuthority.parse("http://127.0.0.1:443/r", allow_insecure_http=True).host == (
        "http://127.0.0.1:443"  # not http's default port
    )


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"oidc_authority": "https://admin:hunter2@login.contoso.com/t"}, "admin:***@"),
        ({"oidc_authority": "https://admin:hunter2@login.contoso.com:x/t"}, "admin:***@"),
        ({"oidc_authority": "https://hunter2@login.contoso.com/t"}, "https://***@"),
        ({"oidc_authority": "admin:hunter2@login.contoso.com/t"}, "admin:***@"),
        ({"authority": "https://admin:hunter2@localhost:1", "tenant_id": "t"}, "admin:***@"),
        ({"authority": "admin:hunter2@localhost:1", "tenant_id": "t"}, "admin:***@"),
        ({"authority": "https://a:b@hunter2@localhost:1", "tenant_id": "t"}, "a:***@"),
    ],
)
def test_a_password_in_the_url_is_never_in_the_error(kwargs: dict[str, str], shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenProvider(ClientSecret("s"), client_id="c", **kwargs)
    error = info.value
    assert "hunter2" not in str(error) and "hunter2" not in (error.hint or "")
    assert "hunter2" not in repr(error) and "hunter2" not in error.message
    assert shown in error.message


# -- against the emulator's issuer ----------------------------------------------------------------


@pytest.fixture
def oidc_provider(emulator: Emulator, app: App) -> Callable[..., TokenProvider]:
    def build(credential: Any = None, **kwargs: Any) -> TokenProvider:
        kwargs.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05))
        return TokenProvider(
            credential or ClientSecret(app.secret or ""),
            client_id=kwargs.pop("client_id", app.client_id),
            oidc_authority=kwargs.pop("oidc_authority", emulator.issuer()),
            ca_file=emulator.ca_file,
            **kwargs,
        )

    return build


async def test_a_client_secret_gets_tokens_from_the_issuers_token_endpoint(
    emulator: Emulator, app: App, oidc_provider: Callable[..., TokenProvider]
) -> None:
    before = discoveries(emulator, issuer_path(emulator))
    async with oidc_provider() as provider:
        assert provider.tenant_id == emulator.tenant_id
        token = await provider.get_token(SCOPE)
        other = await provider.get_token("https://vault.azure.net/.default")
        # The provider's own tenant is the only one a call may name.
        same = await provider.get_token(SCOPE, tenant_id=emulator.tenant_id.upper())
    claims = emulator.verify_access_token(token.token)
    assert claims["azp"] == app.client_id and claims["tid"] == emulator.tenant_id
    assert other.token != token.token and same.token == token.token
    # One msal application: one discovery for every scope.
    assert discoveries(emulator, issuer_path(emulator)) == before + 1
    records = emulator.requests.filter("token", client_id=app.client_id)
    assert [r.auth_method for r in records] == ["client_secret_post"] * 2


async def test_a_certificate_signs_for_the_discovered_token_endpoint(
    emulator: Emulator, cert_app: App, oidc_provider: Callable[..., TokenProvider]
) -> None:
    material = cert_app.certificate
    assert material is not None and material.private_key_pem is not None
    credential = Certificate.from_pem(material.certificate_pem, key=material.private_key_pem)
    async with oidc_provider(credential, client_id=cert_app.client_id) as provider:
        token = await provider.get_token(SCOPE)
    assert emulator.verify_access_token(token.token)["azp"] == cert_app.client_id
    records = emulator.requests.filter("token", client_id=cert_app.client_id)
    assert [(r.auth_method, r.status) for r in records] == [("private_key_jwt", 200)]


async def test_another_tenant_per_call_is_refused_without_a_request(
    emulator: Emulator, app: App, oidc_provider: Callable[..., TokenProvider]
) -> None:
    async with oidc_provider() as provider:
        with pytest.raises(ConfigurationError, match="oidc_authority") as info:
            await provider.get_token(SCOPE, tenant_id="fabrikam.onmicrosoft.com")
    assert "provider of their own" in (info.value.hint or "")
    assert token_requests(emulator, app) == 0


async def test_an_issuer_that_does_not_match_is_refused_once(
    emulator: Emulator, app: App, oidc_provider: Callable[..., TokenProvider]
) -> None:
    base = f"{emulator.base_url}/{emulator.tenant_id}"
    document = {
        "issuer": "https://elsewhere.example/tenant/v2.0",  # not the oidc_authority's host
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
    }
    emulator.faults.add(Fault("discovery", "respond", body=json.dumps(document)))
    before = discoveries(emulator, issuer_path(emulator))
    async with oidc_provider() as provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token(SCOPE)
    error = info.value
    assert error.message == (
        f"msal refused the OpenID configuration at {emulator.issuer()}"
        "/.well-known/openid-configuration: ValueError"
    )
    assert "issuer must be the oidc_authority" in (error.hint or "")
    assert discoveries(emulator, issuer_path(emulator)) == before + 1
    assert token_requests(emulator, app) == 0


async def test_a_document_without_a_token_endpoint_is_a_configuration_error(
    emulator: Emulator, app: App, oidc_provider: Callable[..., TokenProvider]
) -> None:
    emulator.faults.add(
        Fault("discovery", "respond", body=json.dumps({"issuer": emulator.issuer()}))
    )
    before = discoveries(emulator, issuer_path(emulator))
    async with oidc_provider() as provider:
        with pytest.raises(ConfigurationError, match="not an OpenID configuration") as info:
            await provider.get_token(SCOPE)
    assert "authorization_endpoint or token_endpoint" in info.value.message
    assert not info.value.retryable
    assert discoveries(emulator, issuer_path(emulator)) == before + 1
    assert token_requests(emulator, app) == 0


# -- a plain-http loopback issuer -------------------------------------------------------------


@pytest.fixture
async def plain_http_issuer() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def discovery(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path}")
        base = f"http://{request.host}/realms/dev"
        return web.json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/protocol/openid-connect/auth",
                "token_endpoint": f"{base}/protocol/openid-connect/token",
            }
        )

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(f"POST {request.path} {form.get('client_secret') == 's3cret'}")
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "access_token": "plain.http.token"}
        )

    app = web.Application()
    app.router.add_get("/realms/dev/.well-known/openid-configuration", discovery)
    app.router.add_post("/realms/dev/protocol/openid-connect/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/realms/dev", seen
    finally:
        await runner.cleanup()


async def test_a_plain_http_loopback_issuer_needs_the_flag(
    plain_http_issuer: tuple[str, list[str]],
) -> None:
    issuer, seen = plain_http_issuer
    with pytest.raises(ConfigurationError, match="plain http"):
        TokenProvider(ClientSecret("s3cret"), client_id="c", oidc_authority=issuer)
    async with TokenProvider(
        ClientSecret("s3cret"), client_id="c", oidc_authority=issuer, allow_insecure_http=True
    ) as provider:
        assert provider.authority == issuer
        token = await provider.get_token("api://x/.default")
    assert token.token == "plain.http.token"
    assert seen == [
        "GET /realms/dev/.well-known/openid-configuration",
        "POST /realms/dev/protocol/openid-connect/token True",
    ]


# -- an issuer on port 443, given with its port -----------------------------------------------


@pytest.fixture
async def issuer_on_443(emulator: Emulator) -> AsyncIterator[list[str]]:
    """An OpenID provider at ``https://127.0.0.1/t/v2.0`` (port 443, the emulator's server
    certificate); skipped where port 443 cannot be bound."""
    seen: list[str] = []
    base = "https://127.0.0.1/t"

    async def discovery(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path}")
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
            }
        )

    async def token(request: web.Request) -> web.Response:
        seen.append(f"POST {request.path}")
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "access_token": "port.443.token"}
        )

    app = web.Application()
    app.router.add_get("/t/v2.0/.well-known/openid-configuration", discovery)
    app.router.add_post("/t/oauth2/v2.0/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(
                runner, "127.0.0.1", 443, ssl_context=emulator.server_ssl_context()
            ).start()
        except OSError as exc:  # not root, or 443 is taken
            pytest.skip(f"cannot serve on 127.0.0.1:443: {exc}")
        yield seen
    finally:
        await runner.cleanup()


async def test_an_issuer_with_port_443_spelled_out_gets_tokens(
    emulator: Emulator, issuer_on_443: list[str]
) -> None:
    async with TokenProvider(
        ClientSecret("s3cret"),
        client_id="c",
        oidc_authority="https://127.0.0.1:443/t/v2.0",
        ca_file=emulator.ca_file,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05, total_timeout=10),
    ) as provider:
        assert provider.authority == "https://127.0.0.1/t/v2.0"
        token = await provider.get_token("api://x/.default")
    assert token.token == "port.443.token"
    assert issuer_on_443 == [
        "GET /t/v2.0/.well-known/openid-configuration",
        "POST /t/oauth2/v2.0/token",
    ]


# -- oauth2-mock-server: an OpenID provider that is not the emulator -------------------------


@dataclass
class Peer:
    """The running oauth2-mock-server (``tests/core/oidc_peer/peer.mjs``)."""

    issuer: str
    jwks_uri: str
    ca_file: str
    origin: str
    context: ssl.SSLContext

    def requests(self) -> list[dict[str, Any]]:
        """Every request the peer received under its issuer since the last :meth:`clear`."""
        return self._control("GET")

    def clear(self) -> None:
        self._control("DELETE")

    def _control(self, method: str) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{self.origin}/_peer/requests", method=method)
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            answer: list[dict[str, Any]] = json.load(response)
        return answer


def _peer_unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_PEER) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_PEER}=1 requires the OpenID peer", pytrace=False)
    pytest.skip(
        f"{reason}: the OpenID peer needs Node.js 20.19+ and `npm ci --prefix tests/core/oidc_peer`"
    )


def _node_version(node: str) -> tuple[int, ...]:
    out = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return tuple(int(part) for part in out.strip().lstrip("v").split(".")[:2])


@pytest.fixture(scope="module")
def oidc_peer_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    node = shutil.which("node")
    if node is None:
        _peer_unavailable("Node.js (node) is not on PATH")
    if not (PEER_DIR / "node_modules" / "oauth2-mock-server" / "package.json").is_file():
        _peer_unavailable("the npm package oauth2-mock-server is not installed")
    if _node_version(node) < (20, 19):
        _peer_unavailable("oauth2-mock-server 8 needs Node.js 20.19 or newer")
    folder = tmp_path_factory.mktemp("oidc-peer")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    key_file, cert_file, ca_file = folder / "key.pem", folder / "cert.pem", folder / "ca.pem"
    server.private_key_pem.write_to_path(str(key_file))
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    stderr_path = folder / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [node, str(PEER_DIR / "peer.mjs"), "--key", str(key_file), "--cert", str(cert_file)],
            cwd=PEER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=60)  # one line once it listens ("" if it died)
        except queue.Empty:
            line = ""
        if not line:
            pytest.fail(
                f"the OpenID peer did not start: {stderr_path.read_text()[-2000:]}", pytrace=False
            )
        ready = json.loads(line)
        yield Peer(
            issuer=ready["issuer"],
            jwks_uri=ready["jwks_uri"],
            ca_file=str(ca_file),
            origin=f"https://127.0.0.1:{ready['port']}",
            context=ssl.create_default_context(cafile=str(ca_file)),
        )
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the peer exits when its standard input closes
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def oidc_peer(oidc_peer_process: Peer) -> Peer:
    oidc_peer_process.clear()
    return oidc_peer_process


def peer_provider(peer: Peer, credential: Any, **kwargs: Any) -> TokenProvider:
    return TokenProvider(
        credential,
        client_id=kwargs.pop("client_id", "peer-client"),
        oidc_authority=kwargs.pop("oidc_authority", peer.issuer),
        ca_file=peer.ca_file,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
        **kwargs,
    )


async def verified_claims(peer: Peer, token: str) -> dict[str, Any]:
    """The token's claims, its signature checked with the peer's published keys."""
    connector = aiohttp.TCPConnector(ssl=peer.context)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(peer.jwks_uri) as response,
    ):
        jwks = await response.json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], issuer=peer.issuer, options={"verify_aud": False}
    )
    return claims


async def test_the_peer_issues_a_token_for_a_client_secret(oidc_peer: Peer) -> None:
    async with peer_provider(oidc_peer, ClientSecret("peer-s3cret-value")) as provider:
        token = await provider.get_token("api://peer-api/.default")
        again = await provider.get_token("api://peer-api/.default")
    assert again == token  # cached
    seen = oidc_peer.requests()
    issuer_path = oidc_peer.issuer.removeprefix(oidc_peer.origin)
    assert [(r["method"], r["path"], r["status"]) for r in seen] == [
        ("GET", f"{issuer_path}/.well-known/openid-configuration", 200),
        ("POST", f"{issuer_path}/token", 200),
    ]
    request = seen[1]
    assert request["form"] == {
        "grant_type": "client_credentials",
        "client_id": "peer-client",
        "scope": "api://peer-api/.default",
    }
    assert "client_secret" in request["form_fields"]  # client_secret_post
    assert "client_assertion_type" not in request["form_fields"]
    claims = await verified_claims(oidc_peer, token.token)
    assert claims == request["minted"]
    assert claims["minted_by"] == "oauth2-mock-server" and claims["azp"] == "peer-client"
    assert claims["scope"] == "api://peer-api/.default"


async def test_the_peer_issues_a_token_for_a_certificate(oidc_peer: Peer) -> None:
    key, cert = make_certificate(name="peer-client")
    credential = Certificate.from_pem(cert_pem(cert), key=key_pem(key))
    async with peer_provider(oidc_peer, credential) as provider:
        token = await provider.get_token("api://peer-api/.default")
    seen = oidc_peer.requests()
    assert [r["method"] for r in seen] == ["GET", "POST"]
    request = seen[1]
    assert request["form"]["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert "client_assertion" in request["form_fields"]
    assert "client_secret" not in request["form_fields"]  # private_key_jwt
    # Signed for the token endpoint the issuer's configuration named.
    assertion = request["assertion"]["claims"]
    assert assertion["aud"] == f"{oidc_peer.issuer}/token"
    assert assertion["iss"] == assertion["sub"] == "peer-client"
    assert request["assertion"]["header"]["alg"] == "PS256"
    claims = await verified_claims(oidc_peer, token.token)
    assert claims == request["minted"] and claims["azp"] == "peer-client"


async def test_an_entra_authority_on_the_peer_fails_at_once_with_the_hint(
    oidc_peer: Peer,
) -> None:
    # msal builds Entra's discovery URL ({authority}/{tenant}/v2.0/...); the peer has none.
    origin, tenant = oidc_peer.issuer.rsplit("/", 1)
    provider = TokenProvider(
        ClientSecret("peer-s3cret-value"),
        client_id="peer-client",
        authority=origin,
        tenant_id=tenant,
        ca_file=oidc_peer.ca_file,
    )
    async with provider:
        with pytest.raises(ConfigurationError) as info:
            await provider.get_token("api://peer-api/.default")
    error = info.value
    wanted = f"{oidc_peer.issuer}/v2.0/.well-known/openid-configuration"
    assert error.message == f"no OpenID configuration at {wanted} (HTTP 404)"
    assert error.status == 404 and not error.retryable
    assert "oidc_authority" in (error.hint or "")
    assert "peer-s3cret-value" not in str(error)
    assert [(r["method"], r["path"]) for r in oidc_peer.requests()] == [
        ("GET", wanted.removeprefix(oidc_peer.origin))
    ]
