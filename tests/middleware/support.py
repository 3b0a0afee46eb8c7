"""Real HTTPS servers and a counting token source for the middleware tests.

* :class:`Tls` - a second CA (trustme) with a certificate for 127.0.0.1 / localhost / ::1.
* :class:`ProtectedApi` - an aiohttp.web API that validates RS256 JWTs (signature against a
  JWKS, audience, issuer, expiry) and can answer 401 with any ``WWW-Authenticate``.
* :class:`RecordingServer` - "some other origin": records whether it received ``Authorization``.
* :class:`LocalIssuer` / :class:`FakeTokenSource` - mint RS256 tokens with a local key, with
  the provider's single-flight / renew semantics and counters; used for the pure-logic tests
  that do not need the emulator.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
import trustme
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from aioentra import AccessToken, InvalidTokenError, RefreshPolicy
from aioentra._flight import Fetched, FetchReason, Flight
from aioentra._validation import ClaimRules, check_claims, check_header
from aioentra.testing import ManualClock

# -- TLS ----------------------------------------------------------------------------------------


class Tls:
    """A private CA and a server certificate for the loopback names."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        return context

    def client_context(self, *extra_ca_files: str) -> ssl.SSLContext:
        """A client context trusting this CA and, e.g., the emulator's CA file."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        for path in extra_ca_files:
            context.load_verify_locations(cafile=path)
        return context


def token_id(token: str) -> str:
    """A short, non-secret fingerprint of a token, to tell tokens apart in assertions."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def b64url_json(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One request as a server saw it."""

    method: str
    path: str
    authorization: str | None
    status: int = 0
    token: str | None = None  # fingerprint of the bearer token, if any
    claims: dict[str, Any] = field(default_factory=dict)
    body_sha: str = ""
    body_len: int = 0


RejectMode = Literal[
    "invalid_token", "claims", "fresh_claims", "bare", "no_header", "invalid_request", "basic"
]


class _Server:
    """An aiohttp.web app on loopback (OS-chosen port); plain http if ``ssl_context`` is None."""

    def __init__(self, ssl_context: ssl.SSLContext | None, host: str = "127.0.0.1") -> None:
        self._ssl = ssl_context
        self._host = host
        self.hits: list[Hit] = []
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/redirect", self._redirect)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0, ssl_context=self._ssl)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> Hit:
        # "/early..." paths answer before reading the body, as APIs that check the token
        # first do; the body is then only counted once the token is accepted.
        body = b"" if request.path.startswith("/early") else await request.read()
        hit = Hit(
            request.method,
            request.path_qs,
            request.headers.get("Authorization"),
            body_sha=hashlib.sha256(body).hexdigest(),
            body_len=len(body),
        )
        self.hits.append(hit)
        return hit

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        """``/redirect?to=<url>&status=302``: authenticated like any other route."""
        hit = await self._record(request)
        rejected = self._check(request, hit)
        if rejected is not None:
            return rejected
        status = int(request.query.get("status", "302"))
        hit.status = status
        return web.Response(status=status, headers={"Location": request.query["to"]})

    def _check(self, request: web.Request, hit: Hit) -> web.StreamResponse | None:
        return None


class RecordingServer(_Server):
    """Another origin: accepts anything and records the ``Authorization`` it got."""

    def __init__(self, ssl_context: ssl.SSLContext | None, host: str = "127.0.0.1") -> None:
        super().__init__(ssl_context, host)
        self.app.router.add_route("*", "/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.StreamResponse:
        hit = await self._record(request)
        hit.status = 200
        return web.json_response({"path": request.path})

    @property
    def authorizations(self) -> list[str | None]:
        return [hit.authorization for hit in self.hits]


class ProtectedApi(_Server):
    """A resource server: every route needs a valid bearer token for ``audience``.

    Token checks: the SDK's claim rules (RS256 against ``jwks``, ``aud``, ``iss``, ``exp``).
    :meth:`reject` makes the API refuse one token (by fingerprint) with a chosen challenge,
    as it would after CAE revocation; :attr:`always_reject` refuses every token.
    :meth:`fail_next` answers the next requests with a status (429/503) and Retry-After.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        jwks: Callable[[], Mapping[str, Any]],
        audience: str,
        issuer: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(ssl_context, host)
        self._jwks = jwks
        self.audience = audience
        self.issuer = issuer
        self.rejected: dict[str, RejectMode] = {}
        self.claims_challenge = b64url_json({"access_token": {"nbf": {"essential": True}}})
        self.always_reject: RejectMode | None = None
        self.failures: list[tuple[int, str]] = []
        self._challenges = 0
        self.app.router.add_route("*", "/{tail:.*}", self._any)

    def reject(self, token: str, mode: RejectMode = "invalid_token") -> None:
        self.rejected[token_id(token)] = mode

    def fail_next(self, status: int, retry_after: str = "0", count: int = 1) -> None:
        self.failures.extend([(status, retry_after)] * count)

    @property
    def statuses(self) -> list[int]:
        return [hit.status for hit in self.hits]

    @property
    def tokens(self) -> list[str | None]:
        return [hit.token for hit in self.hits]

    async def _any(self, request: web.Request) -> web.StreamResponse:
        hit = await self._record(request)
        rejected = self._check(request, hit)
        if rejected is not None:
            return rejected
        await self._read_late(request, hit)
        if self.failures:
            status, retry_after = self.failures.pop(0)
            hit.status = status
            return web.Response(status=status, headers={"Retry-After": retry_after})
        hit.status = 200
        return web.json_response(
            {
                "roles": hit.claims.get("roles", []),
                "appid": hit.claims.get("azp") or hit.claims.get("appid"),
                "body_sha": hit.body_sha,
                "body_len": hit.body_len,
            }
        )

    def _check(self, request: web.Request, hit: Hit) -> web.StreamResponse | None:
        header = hit.authorization
        if header is None or not header.startswith("Bearer "):
            return self._unauthorized(hit, "invalid_token", "no bearer token")
        token = header[len("Bearer ") :]
        hit.token = token_id(token)
        try:
            hit.claims = self._validate(token)
        except (jwt.PyJWTError, InvalidTokenError) as exc:
            return self._unauthorized(hit, "invalid_token", type(exc).__name__)
        mode = self.always_reject or self.rejected.get(hit.token)
        if mode is not None:
            return self._unauthorized(hit, mode, "rejected by test")
        return None

    async def _read_late(self, request: web.Request, hit: Hit) -> None:
        if request.path.startswith("/early"):
            body = await request.read()
            hit.body_sha, hit.body_len = hashlib.sha256(body).hexdigest(), len(body)

    def _validate(self, token: str) -> dict[str, Any]:
        """The SDK's own claim rules (``aioentra._validation``) over a local JWKS."""
        rules = ClaimRules.build(audience=self.audience, entra=False)
        _, kid = check_header(jwt.get_unverified_header(token), rules)
        keys = jwt.PyJWKSet.from_dict(dict(self._jwks()))
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise InvalidTokenError("unknown kid")
        claims: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=["RS256"], options={"verify_aud": False}
        )
        issuer = self.issuer or str(claims.get("iss", ""))
        return dict(check_claims(claims, rules, issuer=issuer, now=time.time()))

    def _unauthorized(self, hit: Hit, mode: RejectMode, description: str) -> web.StreamResponse:
        hit.status = 401
        if mode == "fresh_claims":  # a new claims challenge on every answer
            self._challenges += 1
            fresh = b64url_json({"access_token": {"nbf": {"value": str(self._challenges)}}})
            return web.Response(
                status=401,
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_claims", claims="{fresh}"'
                },
                text="unauthorized",
            )
        challenge = {
            "invalid_token": f'Bearer realm="api", error="invalid_token", '
            f'error_description="{description}"',
            "claims": 'Bearer realm="", authorization_uri="https://login.example/authorize", '
            f'error="insufficient_claims", claims="{self.claims_challenge}"',
            "bare": "Bearer",
            "invalid_request": 'Bearer error="invalid_request"',
            "basic": 'Basic realm="api"',
        }.get(mode)
        headers = {} if challenge is None else {"WWW-Authenticate": challenge}
        return web.Response(status=401, headers=headers, text="unauthorized")


# -- tokens without the emulator ----------------------------------------------------------------


class LocalIssuer:
    """Mints RS256 access tokens with a local key, and serves the matching JWKS."""

    issuer = "https://issuer.local/tenant/v2.0"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def mint(self, audience: str, *, lifetime: float = 3600, **extra: Any) -> str:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "jti": uuid.uuid4().hex,
            "roles": ["Todo.Read"],
            **extra,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


def audience_of(scope: str) -> str:
    """``api://todo/.default`` -> ``api://todo``."""
    return scope.removesuffix("/.default")


class FakeTokenSource:
    """A :class:`aioentra.aiohttp.TokenSource` over the provider's own single-flight cell.

    Tokens are minted locally (no emulator), with the provider's semantics: single flight per
    (scope, claims), a claims token also replaces the plain token, ``renew_token`` returns a
    newer cached token if there is one. :meth:`due` moves the plain token of a scope into its
    refresh-ahead window: the next ``get_token`` starts a background refresh (held until
    :attr:`gate` is set) and returns the current token at once.
    """

    def __init__(self, issuer: LocalIssuer) -> None:
        self._issuer = issuer
        self._clock = ManualClock()
        self._flight: Flight[tuple[str, str | None], AccessToken] = Flight(
            self._mint,
            policy=RefreshPolicy(renewal_interval=0),
            clock=self._clock,
            same=lambda a, b: a.token == b.token,
        )
        self.gate = asyncio.Event()
        self.gate.set()
        self.issued = 0
        self.get_calls = 0
        self.renew_calls = 0
        self.claims_seen: list[str] = []
        self.served_during_refresh = 0
        self.failure: BaseException | None = None
        self.hook: Callable[[], Awaitable[None]] | None = None

    async def settled(self) -> None:
        """Wait until no token request is in flight."""
        await asyncio.gather(*self._flight.tasks(), return_exceptions=True)

    def due(self, scope: str) -> None:
        slot = self._flight.slots.get((scope, None))
        if slot is not None:
            slot.fresh_until = self._clock.monotonic()

    @property
    def refreshing(self) -> bool:
        return any(True for _ in self._flight.tasks())

    async def get_token(self, scope: str, *, claims: str | None = None) -> AccessToken:
        self.get_calls += 1
        if self.hook is not None:
            await self.hook()
        if claims is not None:
            self.claims_seen.append(claims)
            return await self._flight.renew((scope, claims))
        token = await self._flight.get((scope, None))
        if self._flight.in_flight((scope, None)):
            self.served_during_refresh += 1
        return token

    async def renew_token(self, scope: str, *, rejected: AccessToken) -> AccessToken:
        self.renew_calls += 1
        return await self._flight.renew((scope, None), rejected)

    async def close(self) -> None:
        await self._flight.close()

    async def _mint(self, key: tuple[str, str | None], reason: FetchReason) -> Fetched[AccessToken]:
        await self.gate.wait()
        await asyncio.sleep(0)
        if self.failure is not None:
            raise self.failure  # type: ignore[misc]
        scope, claims = key
        self.issued += 1
        extra: dict[str, Any] = {} if claims is None else {"xms_claims": claims}
        now, wall = self._clock.monotonic(), time.time()
        token = AccessToken(
            token=self._issuer.mint(audience_of(scope), **extra),
            expires_on=wall + 3600,
            refresh_on=wall + 1800,
            scope=scope,
        )
        fetched = Fetched(token, now + 1800, now + 3540)
        if claims is not None:
            self._flight.put((scope, None), fetched)
        return fetched


class PeekingSource(FakeTokenSource):
    """A :class:`FakeTokenSource` with the optional ``peek_token``, over the same cell (what
    :meth:`aioentra.TokenProvider.peek_token` answers, and when it refreshes)."""

    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__(issuer)
        self.peeks = 0

    def peek_token(self, scope: str) -> AccessToken | None:
        self.peeks += 1
        return self._flight.get_nowait((scope, None))
