"""ManagedIdentityProvider: tokens of this machine's managed identity, with the SDK's cell.

msal's ``ManagedIdentityClient`` is the protocol engine: it knows every managed-identity
source (App Service and Functions through ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``, Azure
Arc, Azure Machine Learning, Service Fabric, and IMDS on VMs, VM scale sets and AKS). Like the
client-credentials engine it runs in the provider's worker threads, its HTTP over the
provider's aiohttp session on the loop, with msal's token and throttle caches off: the cell is
the only cache.

IMDS's retry rules are the transport's: 404 (the identity is not assigned yet), 410 (IMDS is
updating), 429 and 5xx are retried with the policy's backoff; other answers are final. Token
requests go to a link-local or loopback endpoint, never through a proxy (``trust_env=False``
by default, as azure-identity does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import msal

from ._engine import NoThrottleCache, run_in_worker, with_retries
from ._errors import (
    AioEntraError,
    ConfigurationError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    ThrottledError,
    fresh,
    raises_cleanly,
)
from ._flight import Clock
from ._msal import NoTokenCache
from ._policy import RefreshPolicy, RetryPolicy, parse_retry_after
from ._source import TokenSourceBase
from ._telemetry import Telemetry
from ._tls import load_aiohttp
from ._token import TokenResponse, parse_token_response
from ._transport import LoopTransport, TransportResponse

__all__ = ["ManagedIdentityProvider"]

logger = logging.getLogger("aioentra.managed_identity")

RETRYABLE_STATUS = frozenset({404, 410, 429}) | frozenset(range(500, 600))
"""IMDS: retry 404 (not assigned yet), 410 (updating), 429 and 5xx; the rest is final."""


class ManagedIdentityProvider(TokenSourceBase):
    """Tokens for Azure resources (Key Vault, Storage, SQL, Graph, your APIs) under this
    machine's managed identity.

    >>> async with ManagedIdentityProvider(client_id=uami_client_id) as identity:
    ...     token = await identity.get_token("https://vault.azure.net/.default")  # doctest: +SKIP

    With no argument, the system-assigned identity; otherwise the user-assigned identity named
    by exactly one of ``client_id``, ``object_id`` or ``resource_id``. It serves calls as
    :class:`~aioentra.TokenProvider` does (single-flight, refresh-ahead, outages, bounded waits,
    the renewal limit), satisfies the aiohttp middleware's ``TokenSource`` and offers
    :meth:`as_azure_credential`. A claims challenge is answered with a new token (managed
    identity endpoints take no claims), at most once per ``RefreshPolicy.renewal_interval``;
    ``tenant_id`` is ignored (the identity lives in one tenant).
    """

    __slots__ = ("_engine", "_identity", "_label")

    @raises_cleanly
    def __init__(
        self,
        *,
        client_id: str | None = None,
        object_id: str | None = None,
        resource_id: str | None = None,
        retry: RetryPolicy | None = None,
        refresh: RefreshPolicy | None = None,
        max_workers: int = 2,
        trust_env: bool = False,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        chosen = {
            name: value
            for name, value in (
                ("client_id", client_id),
                ("object_id", object_id),
                ("resource_id", resource_id),
            )
            if value is not None
        }
        if len(chosen) > 1:
            raise ConfigurationError(
                "name the managed identity once: client_id, object_id or resource_id",
                hint="omit all three for the system-assigned identity.",
            )
        for name, value in chosen.items():
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
                raise ConfigurationError(f"the managed identity's {name} is malformed")
        self._identity: msal.ManagedIdentity = (
            msal.UserAssignedManagedIdentity(**chosen)
            if chosen
            else msal.SystemAssignedManagedIdentity()
        )
        self._label = (
            f"{next(iter(chosen))}={next(iter(chosen.values()))}" if chosen else "system-assigned"
        )
        self._setup(
            retry=retry,
            refresh=refresh,
            clock=clock,
            ca_file=None,
            ssl_context=None,
            session=None,
            trust_env=trust_env,
            max_workers=max_workers,
            worker_name="aioentra-mi",
            telemetry=telemetry,
        )
        self._engine: _ManagedIdentityEngine | None = None

    def __repr__(self) -> str:
        return f"ManagedIdentityProvider({getattr(self, '_label', '<not built>')})"

    # -- what the shared machinery asks of a token source ------------------------------------

    def _describe(self) -> tuple[str, str]:
        return f"managed identity {self._label}", "-"

    def _tenant(self, tenant_id: str | None) -> str | None:
        # A managed identity lives in one tenant and its endpoint takes none: a tenant an
        # Azure SDK client names (Key Vault's challenge does) changes nothing.
        return None

    async def _start(self) -> None:
        await load_aiohttp(self._workers)

    async def _acquire(
        self, scope: str, claims: str | None, tenant: str | None, deadline: float
    ) -> TokenResponse:
        if self._engine is None:
            loop = asyncio.get_running_loop()
            self._transport = _ManagedIdentityTransport(
                loop,
                self._get_session,
                attempt_timeout=self._retry.attempt_timeout,
                telemetry=self._telemetry,
            )
            self._engine = _ManagedIdentityEngine(
                identity=self._identity,
                transport=self._transport,
                source=self,
                loop=loop,
            )
        return await self._engine.acquire(scope, deadline)


class _ManagedIdentityEngine:
    """``ManagedIdentityClient.acquire_token_for_client`` in the source's worker threads."""

    def __init__(
        self,
        *,
        identity: msal.ManagedIdentity,
        transport: _ManagedIdentityTransport,
        source: ManagedIdentityProvider,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport = transport
        self._source = source
        self._loop = loop
        self._client = msal.ManagedIdentityClient(
            identity,
            http_client=transport,
            token_cache=NoTokenCache(),
            http_cache=NoThrottleCache(),
        )

    async def acquire(self, scope: str, deadline: float) -> TokenResponse:
        resource = _resource(scope)
        source = self._source
        return await with_retries(
            lambda: run_in_worker(
                source._workers,
                lambda: self._acquire_blocking(resource, deadline),
                loop=self._loop,
                deadline=deadline,
                total=source._retry.total_timeout,
            ),
            policy=source._retry,
            loop=self._loop,
            deadline=deadline,
            what=f"{scope} (managed identity)",
            fields=dict(
                zip(("scope", "client_id", "tenant_id"), (scope, *source._describe()), strict=True)
            ),
        )

    def _acquire_blocking(self, resource: str, deadline: float) -> TokenResponse:
        self._transport.begin(deadline)
        try:
            result = self._client.acquire_token_for_client(resource=resource)
        except Exception as exc:
            error = _typed(exc)
        else:
            token = self._transport.last_token()
            if isinstance(result, dict) and "access_token" in result and token is not None:
                return token
            error = _error_result(result)
        copy = fresh(error)
        del error
        raise copy from None


class _ManagedIdentityTransport(LoopTransport):
    """msal's ``http_client`` for managed-identity endpoints (GET only, plain http)."""

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> TransportResponse:
        response = super().get(url, params=params, headers=headers)
        self._local.last_token = response.token
        return response

    def _judge(
        self, method: str, origin: str, status: int, text: str, headers: Mapping[str, str]
    ) -> TransportResponse:
        body = _json_object(text)
        if status != 200 or body is None or "access_token" not in body:
            raise _endpoint_error(origin, status, body, headers)
        token = parse_token_response(_normalised(body))
        now = int(time.time())
        minimal = {  # what each of msal's source parsers reads, and nothing it could trip over
            "access_token": token.access_token,
            "expires_in": str(int(token.expires_in)),
            "expires_on": str(now + int(token.expires_in)),
            "token_type": "Bearer",
            "resource": str(body.get("resource") or ""),
        }
        return TransportResponse(status, json.dumps(minimal), headers, token)


def _normalised(body: Mapping[str, Any]) -> dict[str, Any]:
    """A managed-identity answer as an OAuth token response: ``expires_in`` from IMDS and
    Arc, or computed from the absolute ``expires_on`` of App Service, ML and Service Fabric."""
    normalised = {
        "access_token": body.get("access_token"),
        "token_type": body.get("token_type") or "Bearer",
        "expires_in": body.get("expires_in"),
    }
    if normalised["expires_in"] is None and body.get("expires_on") is not None:
        try:
            expires_on = float(body["expires_on"])
        except (TypeError, ValueError, OverflowError):
            expires_on = math.nan
        normalised["expires_in"] = expires_on - time.time() if math.isfinite(expires_on) else "?"
    return normalised


def _endpoint_error(
    origin: str, status: int, body: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> AioEntraError:
    description = ""
    if body is not None:
        raw = body.get("error_description") or body.get("message") or body.get("error") or ""
        description = raw.splitlines()[0][:300] if isinstance(raw, str) and raw else ""
    detail = f": {description}" if description else ""
    if status == 200:
        error: AioEntraError = IdentityProviderUnavailableError(
            f"the managed identity endpoint ({origin}) answered without a token",
            hint="the endpoint is not a managed-identity endpoint, or it is broken.",
            status=status,
        )
    elif status == 429:
        error = ThrottledError(
            f"the managed identity endpoint throttled the request (HTTP 429){detail}",
            hint="IMDS allows about 5 requests per second: share one ManagedIdentityProvider.",
            status=status,
            retry_after=parse_retry_after(headers),
        )
    elif status in RETRYABLE_STATUS:
        error = IdentityProviderUnavailableError(
            f"the managed identity endpoint failed (HTTP {status}){detail}",
            hint=(
                "IMDS is updating; the request is retried."
                if status == 410
                else "the identity may not be assigned yet, or the endpoint is down; the "
                "request is retried."
            ),
            status=status,
            retry_after=parse_retry_after(headers),
        )
    elif status == 400:
        error = ConfigurationError(
            f"the managed identity endpoint refused the request (HTTP 400){detail}",
            hint="check that this identity is assigned to this machine (its client id, "
            "object id or resource id) and that the scope names a resource.",
            status=status,
        )
    else:
        error = CredentialUnavailableError(
            f"the managed identity endpoint answered HTTP {status}{detail}",
            hint="the managed identity is not available here.",
            status=status,
        )
        error.retryable = False
    return error


def _typed(exc: BaseException) -> AioEntraError:
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, AioEntraError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return CredentialUnavailableError(
        f"msal's managed identity client failed: {type(exc).__name__}",
        hint="no managed identity endpoint is reachable from here (IMDS, App Service, Arc, "
        "Machine Learning or Service Fabric).",
    )


def _error_result(result: object) -> AioEntraError:
    if isinstance(result, dict):
        raw = result.get("error_description") or result.get("error") or ""
        text = raw.splitlines()[0][:300] if isinstance(raw, str) and raw else "no token"
    else:
        text = "no result"
    return CredentialUnavailableError(
        f"the managed identity endpoint gave no token: {text}",
        hint="check the identity and the scope.",
    )


def _resource(scope: str) -> str:
    """``https://vault.azure.net/.default`` -> ``https://vault.azure.net``; a resource id that
    ends in ``/`` keeps it (``https://x.net//.default`` -> ``https://x.net/``)."""
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
