"""``TokenValidator``: checks the access tokens an API receives, with the authority's keys.

The pieces, composed: :mod:`aioentra._validation` decides what a token must say (pure),
:mod:`aioentra._jwks` fetches and checks the authority's keys, and a
:class:`~aioentra._flight.Flight` cell holds them (single flight, refresh in the
background, back-off, at most one refetch per ``unknown_key_interval`` for an unknown
``kid``, last good keys kept through outages). PyJWT checks the signature.

A token that verified is remembered (bounded, until it expires), so an API called many
times with one token checks its RSA signature once; its lifetime is checked on every call.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Iterable
from typing import Any, TypedDict

import aiohttp
import jwt

from ._authority import Authority
from ._errors import (
    AioEntraError,
    ConfigurationError,
    InvalidTokenError,
    ProviderClosedError,
    raises_cleanly,
)
from ._flight import Clock, Fetched, FetchReason, Flight, SystemClock
from ._jwks import KEY_TYPES as _KEY_TYPES, KeyFetcher, SigningKeys
from ._policy import RefreshPolicy
from ._tls import checked_session, checked_ssl_context, load_verify_context
from ._token import MAX_TOKEN_LENGTH
from ._validation import (
    DEFAULT_ALGORITHMS,
    ClaimRules,
    Claims,
    check_claims,
    check_header,
    check_lifetime,
    jose_header,
)

__all__ = ["TokenValidator", "ValidatorOptions"]

logger = logging.getLogger("aioentra.validation")

_DECODE_OPTIONS: Any = {
    # The signature only: the claims are checked by check_claims, with our error messages.
    "verify_signature": True,
    "verify_aud": False,
    "verify_iss": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "require": [],
}


class ValidatorOptions(TypedDict, total=False):
    """The keyword options of :class:`TokenValidator` beyond who issues the tokens and for
    whom (``audience``, ``authority``, ``tenant_id``, ``oidc_authority``): what
    :func:`aioentra.aiohttp.web.token_validation` passes on, typed so a typo fails."""

    tenants: Iterable[str] | None
    algorithms: Iterable[str]
    leeway: float
    app_only: bool
    ca_file: str | None
    ssl_context: ssl.SSLContext | None
    session: aiohttp.ClientSession | None
    refresh_interval: float
    unknown_key_interval: float
    timeout: float
    cache_size: int
    clock: Clock | None


class TokenValidator:
    """Validates bearer tokens for an API protected by Entra ID (or another OpenID provider).

    Args:
        audience: the API's App ID URI and/or client id (v2 tokens carry the client id, v1
            tokens what the caller asked for); a client id also accepts ``api://{client id}``.
        authority: the Entra ID authority, ``https://login.microsoftonline.com/{tenant}``
            (or the host, with ``tenant_id``); External ID: ``https://{name}.ciamlogin.com``.
            Keys come from ``{authority}/v2.0/.well-known/openid-configuration``.
        oidc_authority: instead of ``authority``, the issuer URL of any OpenID provider
            (keys from ``{issuer}/.well-known/openid-configuration``; no Entra claim rules).
        tenants: tenant ids whose tokens are accepted; required with the multi-tenant
            ``organizations`` authority, optional otherwise (default: the authority's).
        algorithms: accepted signing algorithms (default RS256; ``none`` and HMAC never).
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.
        app_only: refuse user (delegated) tokens with a 403.
        ca_file: a CA bundle to trust for the key fetches (verification stays on).
        ssl_context: instead, the TLS context for the key fetches.
        session: instead, the aiohttp session the key fetches go through.
        refresh_interval: how old the keys get before a background refresh (12 h).
        unknown_key_interval: at most one refetch for an unknown ``kid`` in this many seconds.
        timeout: seconds for each discovery or JWKS request.

    Use it as ``async with TokenValidator(...) as validator`` (which loads the keys once, so
    a wrong authority fails at startup) or call :meth:`close` when done.
    """

    @raises_cleanly
    def __init__(
        self,
        *,
        audience: str | Iterable[str],
        authority: str | None = None,
        tenant_id: str | None = None,
        oidc_authority: str | None = None,
        tenants: Iterable[str] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60.0,
        app_only: bool = False,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
        refresh_interval: float = 12 * 3600.0,
        unknown_key_interval: float = 300.0,
        timeout: float = 10.0,
        cache_size: int = 4096,
        clock: Clock | None = None,
    ) -> None:
        self._closed = False
        self._session: aiohttp.ClientSession | None = None
        if (authority is None) == (oidc_authority is None):
            raise ConfigurationError(
                "pass authority= (Entra ID) or oidc_authority= (any OpenID provider), once",
                hint="e.g. authority='https://login.microsoftonline.com/<tenant id>'.",
            )
        if oidc_authority is not None:
            if tenant_id is not None:
                raise ConfigurationError("tenant_id goes with authority=, not oidc_authority=")
            metadata_url = _oidc_metadata_url(oidc_authority)
            entra = False
        else:
            assert authority is not None
            parsed = Authority.parse(authority, tenant_id)
            if parsed.tenant.lower() == "organizations" and tenants is None:
                raise ConfigurationError(
                    "the 'organizations' authority accepts tokens of every tenant",
                    hint="list the tenants whose apps may call the API: tenants=[...].",
                )
            metadata_url = f"{parsed.url}/v2.0/.well-known/openid-configuration"
            entra = True
        self._rules = ClaimRules.build(
            audience=audience,
            tenants=tenants,
            algorithms=algorithms,
            leeway=leeway,
            app_only=app_only,
            entra=entra,
        )
        for name, value in (
            ("refresh_interval", refresh_interval),
            ("unknown_key_interval", unknown_key_interval),
            ("timeout", timeout),
        ):
            if not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be an int >= 0")
        if ca_file is not None and (ssl_context is not None or session is not None):
            raise ConfigurationError("pass one of ca_file, ssl_context or session")
        if ssl_context is not None:
            if session is not None:
                raise ConfigurationError("pass one of ca_file, ssl_context or session")
            checked_ssl_context(ssl_context, "ssl_context")
        self._given_session = checked_session(session)
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._fetcher = KeyFetcher(metadata_url, algorithms=self._rules.algorithms, timeout=timeout)
        self._clock: Clock = clock or SystemClock()
        self._refresh_interval = float(refresh_interval)
        self._keys: Flight[str, SigningKeys] = Flight(
            self._fetch,
            policy=RefreshPolicy(renewal_interval=float(unknown_key_interval)),
            clock=self._clock,
            observer=_KeyLog(),
            same=lambda a, b: a is b,
            closed_error=_closed,
        )
        self._verified: dict[str, tuple[Claims, str]] = {}
        """Tokens whose signature verified: their claims and the ``kid`` that signed them."""
        self._cache_size = cache_size

    # -- public API -----------------------------------------------------------------------------

    @property
    def metadata_url(self) -> str:
        """Where the issuer and the keys are discovered."""
        return self._fetcher.metadata_url

    @property
    def rules(self) -> ClaimRules:
        return self._rules

    @property
    def closed(self) -> bool:
        return self._closed

    async def validate(self, token: str) -> Claims:
        """The token's validated claims; :class:`~aioentra.InvalidTokenError` (401) or
        :class:`~aioentra.InsufficientPermissionsError` (403) when it is refused.

        Keys that cannot be fetched raise the fetch's error
        (:class:`~aioentra.IdentityProviderUnavailableError`, or
        :class:`~aioentra.ConfigurationError` for a wrong authority): the token was not
        judged, so an API should answer 503, not 401.
        """
        if self._closed:
            raise _closed()
        if not isinstance(token, str) or not token:
            raise InvalidTokenError("no bearer token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("the token is too long")
        now = self._clock.time()
        known = self._verified.get(token)
        if known is not None:
            try:
                check_lifetime(known[0], self._rules, now=now)
            except InvalidTokenError:
                del self._verified[token]
                raise
            return known[0]
        if not token.isascii():
            raise InvalidTokenError("the token is not a JWT")
        alg, kid = check_header(jose_header(token), self._rules)
        url = self._fetcher.metadata_url
        keys = await self._keys.get(url)
        key = keys.keys.get(kid)
        if key is None:
            # Keys rotate: ask once more (one fetch shared by every caller, and at most one per
            # unknown_key_interval, so tokens with made-up kids cost one fetch, not one each).
            try:
                keys = await self._keys.renew(url, keys)
            except AioEntraError:
                # The keys cannot be refetched now (backing off, or the authority is down): the
                # last good keys, which do not hold this kid, are all there is to judge by.
                keys = self._keys.peek(url) or keys
            key = keys.keys.get(kid)
            if key is None:
                raise InvalidTokenError("the token's signing key is not one of the issuer's")
        if _KEY_TYPES.get(alg[:2]) != getattr(key, "key_type", None):
            raise InvalidTokenError("the token's signing algorithm does not fit its key")
        try:
            payload = jwt.decode(token, key=key.key, algorithms=[alg], options=_DECODE_OPTIONS)
        except (jwt.PyJWTError, ValueError, TypeError):
            # (PyJWT raises TypeError or ValueError for a few malformed inputs of its own.)
            raise InvalidTokenError("the token's signature does not verify") from None
        claims = check_claims(payload, self._rules, issuer=keys.issuer, now=now)
        self._remember(token, claims, kid)
        return claims

    async def start(self) -> None:
        """Load the keys now (discovery + JWKS), so that configuration errors show at once."""
        await self._keys.get(self._fetcher.metadata_url)

    async def refresh(self) -> None:
        """Fetch the keys again now (single flight with any fetch in progress)."""
        await self._keys.get(self._fetcher.metadata_url, force=True)

    async def close(self) -> None:
        """End the key fetches in flight and close the session this validator opened."""
        self._closed = True
        await self._keys.close()
        self._verified.clear()
        session, self._session = self._session, None
        if session is not None and session is not self._given_session:
            await session.close()

    async def __aenter__(self) -> TokenValidator:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        rules = getattr(self, "_rules", None)
        fetcher = getattr(self, "_fetcher", None)
        audiences = sorted(rules.audiences) if rules is not None else None
        url = fetcher.metadata_url if fetcher is not None else None
        return f"TokenValidator(metadata_url={url!r}, audiences={audiences!r})"

    # -- internals ------------------------------------------------------------------------------

    async def _fetch(self, url: str, reason: FetchReason) -> Fetched[SigningKeys]:
        keys = await self._fetcher.fetch(await self._open_session())
        self._forget_withdrawn(keys)
        now = self._clock.monotonic()
        # Usable without end: the last good keys keep serving while the authority is down.
        return Fetched(keys, now + self._refresh_interval, math.inf)

    async def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._given_session is not None:
                self._session = self._given_session
            else:
                context = self._ssl_context or await load_verify_context(
                    self._ca_file, "aioentra-validation"
                )
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=context, limit=4)
                )
        return self._session

    def _remember(self, token: str, claims: Claims, kid: str) -> None:
        if self._cache_size == 0:
            return
        verified = self._verified
        if len(verified) >= self._cache_size:
            del verified[next(iter(verified))]  # the oldest
        verified[token] = (claims, kid)

    def _forget_withdrawn(self, keys: SigningKeys) -> None:
        """Drop remembered tokens whose key the authority no longer publishes: a key withdrawn
        in an emergency rollover takes the tokens it signed with it."""
        withdrawn = [t for t, (_, kid) in self._verified.items() if kid not in keys.keys]
        for token in withdrawn:
            del self._verified[token]


class _KeyLog:
    """Logs key fetches: INFO when keys arrive, WARNING when a fetch fails."""

    def fetched(self, key: str, reason: FetchReason, seconds: float) -> None:
        logger.info("signing keys fetched from %s (%s) in %.3fs", key, reason.value, seconds)

    def failed(
        self, key: str, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        action = "the last good keys stay in use" if serving else "tokens cannot be checked"
        logger.warning(
            "signing keys could not be fetched from %s (%s): %s; %s, next fetch in %.1fs at "
            "the earliest",
            key,
            reason.value,
            error,
            action,
            backoff,
        )


def _closed() -> ProviderClosedError:
    return ProviderClosedError("the token validator is closed; create a new one")


def _oidc_metadata_url(issuer: object) -> str:
    if not isinstance(issuer, str) or not issuer.startswith("https://") or len(issuer) < 9:
        raise ConfigurationError(
            f"oidc_authority {issuer!r} is not an https issuer URL",
            hint="give the provider's issuer, e.g. 'https://login.contoso.com/tenant'.",
        )
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"
