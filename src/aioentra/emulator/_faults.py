"""Fault injection: make an endpoint slow, fail, throttle, drop the connection or answer garbage.

Faults are queued per emulator (``emu.faults``) and consumed in order: the first queued fault whose
endpoint (and optional tenant / client filters) match a request is applied before the normal handler
runs, and its ``count`` goes down by one (``count=None`` applies until removed). Kinds:

``latency``         sleep ``delay`` seconds, then answer normally
``status``          ``status`` (default 503) with an Entra-style JSON error body (``Retry-After``
if set)
``throttle``        429 with ``Retry-After`` (default 1 s) and a JSON error body
``reset``           abort the TCP connection without any response
``malformed_json``  200 with ``Content-Type: application/json`` and a truncated JSON document
``html``            ``status`` (default 503) with an HTML error page, as a proxy or
load balancer would
``respond``         ``status`` (default 200) with ``body`` as it is, as ``application/json``
(``Retry-After`` if set): a scripted answer, e.g. a success response with a
malformed field

The non-latency kinds also wait ``delay`` seconds first. Error bodies take the shape of the service
the endpoint plays: Key Vault's ``{"error": {"code": ..., "message": ...}}``; IMDS's ``{"error",
"error_description"}`` and App Service's ``{"statusCode", "message", "correlationId"}`` on the
managed-identity endpoint; Entra's on the identity endpoints. A ``status`` fault of 410 is IMDS's
"updating" answer (azure-identity retries it for at least 70 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Literal, get_args

from aiohttp import web

from ._errors import error_body
from ._requestlog import log_info

__all__ = ["Fault", "FaultKind", "FaultPlan", "render_fault"]

FaultKind = Literal["latency", "status", "throttle", "reset", "malformed_json", "html", "respond"]
_KINDS: tuple[str, ...] = get_args(FaultKind)
_REASONS = {500: "server_error", 429: "temporarily_unavailable"}


@dataclass(frozen=True)
class Fault:
    """One injected fault: what matching requests get instead of (or before) the normal answer.

    ``endpoint`` is one of ``"token"``, ``"discovery"`` (instance discovery and both OIDC
    documents: ``/{tenant}/v2.0/.well-known/openid-configuration`` and the v1
    ``/{tenant}/.well-known/openid-configuration``), ``"jwks"`` (both key documents:
    ``/{tenant}/discovery/v2.0/keys`` and the v1 ``/{tenant}/discovery/keys``), ``"keyvault"``,
    ``"managed_identity"`` (or ``"*"`` for any). ``tenant`` (GUID or domain; either matches a
    request naming the tenant either way) and ``client_id`` restrict it to matching requests.
    A ``reset`` of a GET is retried once by aiohttp's client session (idempotent request on a
    dropped connection): ``count=2`` makes such a client see it.

    Attributes:
        endpoint: The endpoint it applies to (see above).
        kind: ``latency`` (wait ``delay``, then answer normally), ``status`` (an error body of
            the endpoint's service), ``throttle`` (429), ``reset`` (drop the connection),
            ``malformed_json`` (200 with truncated JSON), ``html`` (an HTML error page, as a
            proxy sends) or ``respond`` (``body`` as it is).
        status: The HTTP status of a ``status``, ``html`` or ``respond`` fault (``None``: the
            kind's default, 503 or 200).
        count: How many matching requests it applies to; ``None`` until removed.
        retry_after: Seconds sent as ``Retry-After`` (``throttle`` default: 1).
        delay: Seconds to wait before answering (or dropping the connection).
        tenant: Only requests naming this tenant (GUID or domain).
        client_id: Only requests from this client id.

    Raises:
        ValueError: An unknown ``kind``, ``count`` < 1, a negative ``delay``, or ``body``
            missing on (or given to a kind other than) ``respond``.
    """

    endpoint: str
    kind: FaultKind
    status: int | None = None
    count: int | None = 1
    retry_after: float | None = None
    delay: float = 0.0
    tenant: str | None = None
    client_id: str | None = None
    body: str | None = None
    """The response body of a ``respond`` fault (e.g. ``json.dumps({...})``)."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {', '.join(_KINDS)}"
            )
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 (or None for 'until removed')")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if (self.kind == "respond") != (self.body is not None):
            raise ValueError("a 'respond' fault needs body=, and only it takes one")


class FaultPlan:
    """The queue of active faults (``emu.faults``); thread-safe.

    Each request consumes the first queued fault that matches it, so faults added in a row
    apply in that order: ``add(Fault("token", "status"))`` then ``add(Fault("token",
    "throttle"))`` makes the next token request see a 503 and the one after a 429.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[list[Fault | int | None]] = []  # [fault, remaining]

    def add(self, fault: Fault) -> Fault:
        """Queue ``fault`` after the ones already queued; returns it (for :meth:`remove`)."""
        with self._lock:
            self._queue.append([fault, fault.count])
        return fault

    def remove(self, fault: Fault) -> None:
        """Drop ``fault`` from the queue (nothing happens when it is used up already)."""
        with self._lock:
            self._queue = [entry for entry in self._queue if entry[0] is not fault]

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._queue.clear()

    @property
    def active(self) -> list[Fault]:
        """The faults still queued, in order."""
        with self._lock:
            return [entry[0] for entry in self._queue if isinstance(entry[0], Fault)]

    def take(
        self, endpoint: str, *, tenants: tuple[str, ...] = (), client_id: str | None = None
    ) -> Fault | None:
        """Consume and return the first fault matching this request, or ``None``."""
        wanted_tenants = {t.lower() for t in tenants if t}
        with self._lock:
            for entry in self._queue:
                fault, remaining = entry
                assert isinstance(fault, Fault)
                if fault.endpoint not in (endpoint, "*"):
                    continue
                if fault.tenant is not None and fault.tenant.lower() not in wanted_tenants:
                    continue
                if (
                    fault.client_id is not None
                    and fault.client_id.lower() != (client_id or "").lower()
                ):
                    continue
                if isinstance(remaining, int):
                    if remaining <= 1:
                        self._queue.remove(entry)
                    else:
                        entry[1] = remaining - 1
                return fault
        return None

    def match(self, endpoint: str, request: web.Request) -> Fault | None:
        """Consume the first fault for ``endpoint`` matching ``request`` (tenant path segment or
        ``tid``, client id from the request notes or the ``client_id`` query parameter).

        The emulator's own middleware (``observe_middleware``) already does this for every route it
        wraps; call it only from handlers served without that middleware.
        """
        info = log_info(request, endpoint)
        tenants = (info.tenant or "", request.match_info.get("tenant", ""))
        client_id = info.client_id or request.query.get("client_id")
        return self.take(endpoint, tenants=tenants, client_id=client_id)


def _retry_after(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _error_json(
    endpoint: str, status: int, message: str, correlation_id: str | None, path: str
) -> object:
    """The error body in the shape of the service the endpoint plays."""
    if endpoint == "keyvault":
        code = "Throttled" if status == 429 else "ServiceUnavailable"
        return {"error": {"code": code, "message": message}}
    error = _REASONS.get(status, "temporarily_unavailable" if status >= 500 else "invalid_request")
    if endpoint == "managed_identity" and path.startswith("/metadata/"):
        return {"error": error, "error_description": message}  # IMDS
    if endpoint == "managed_identity":  # App Service
        return {"statusCode": status, "message": message, "correlationId": correlation_id or ""}
    return error_body(error, message, [90033], correlation_id=correlation_id)


def _abort(request: web.Request) -> None:
    """Drop the connection: RST via SO_LINGER 0 where possible, then abort the transport."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # platform dependent
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def render_fault(
    fault: Fault, endpoint: str, request: web.Request
) -> web.StreamResponse | None:
    """Apply ``fault``: the response to send instead of the handler's, or ``None`` to go on
    normally.

    A ``reset`` aborts the transport and returns a placeholder response that aiohttp cannot write
    (it treats that as a premature client disconnection and closes quietly).
    """
    if fault.delay:
        await asyncio.sleep(fault.delay)
    correlation = request.headers.get("client-request-id")
    if fault.kind == "latency":
        return None
    if fault.kind == "reset":
        _abort(request)
        return web.Response(status=500)
    if fault.kind == "malformed_json":
        return web.Response(
            status=200,
            body=b'{"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAiOiJKV1Qi',
            content_type="application/json",
        )
    if fault.kind == "respond":
        extra = (
            {} if fault.retry_after is None else {"Retry-After": _retry_after(fault.retry_after)}
        )
        return web.Response(
            status=fault.status or 200,
            text=fault.body or "",
            content_type="application/json",
            headers=extra,
        )
    status = fault.status or (429 if fault.kind == "throttle" else 503)
    headers: dict[str, str] = {}
    retry_after = (
        fault.retry_after
        if fault.retry_after is not None
        else (1 if fault.kind == "throttle" else None)
    )
    if retry_after is not None:
        headers["Retry-After"] = _retry_after(retry_after)
    if fault.kind == "html":
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        page = (
            f"<html><head><title>{status}</title></head>"
            f"<body><h1>{status} {reason}</h1></body></html>"
        )
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)
    if fault.kind == "throttle":
        wait = headers["Retry-After"]
        message = f"Too many requests: the request was throttled. Retry after {wait} seconds."
    elif status == 410:
        message = "The endpoint is being updated; retry within 70 seconds."
    else:
        message = "A transient error has occurred. Please try again."
    body = _error_json(endpoint, status, message, correlation, request.path)
    return web.json_response(body, status=status, headers=headers)
