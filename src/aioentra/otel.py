"""OpenTelemetry metrics and traces for token sources (``pip install 'aioentra[otel]'``).

Pass an :class:`OpenTelemetry` to a provider; it reports through the global meter and tracer
providers unless given its own::

    from aioentra.otel import OpenTelemetry

    provider = TokenProvider(credential, tenant_id=..., client_id=..., telemetry=OpenTelemetry())

Only ``opentelemetry-api`` is needed: without an SDK configured, the API's no-op providers
make every instrument free. A provider built without ``telemetry=`` never imports
OpenTelemetry, and its warm path is unchanged.

**Metrics** (attributes in brackets; ``aioentra.scope``, ``aioentra.tenant_id`` and
``aioentra.client_id`` on every one):

===================================  ==========  ==============================================
instrument                           kind        what
===================================  ==========  ==============================================
``aioentra.token.requests``          counter     fetches ended [``aioentra.outcome``
                                                 success/failure, ``aioentra.reason``,
                                                 ``aioentra.source``, ``error.type``]
``aioentra.token.refresh_failures``  counter     failed fetches [``aioentra.reason``,
                                                 ``error.type``, ``aioentra.serving``]
``aioentra.token.request.duration``  histogram   seconds per fetch [``aioentra.outcome``]
``aioentra.token.cache_hits``        observable  calls answered without a request
                                     counter     [``aioentra.cache`` memory/shared]
``aioentra.token.time_to_expiry``    observable  seconds until each held token expires
                                     gauge
``http.client.request.duration``     histogram   seconds per HTTP request, with the
                                                 semantic-convention HTTP attributes
===================================  ==========  ==============================================

**Spans**: ``aioentra.acquire_token`` (internal) around each fetch, with the reason, source and
outcome; inside it one client span per HTTP request (token, discovery, managed identity),
named after the method, with ``http.request.method``, ``server.address``, ``server.port``,
``url.full`` (no query: the token endpoint takes none, and nothing else is recorded),
``http.response.status_code`` and ``error.type``. No span or metric holds a secret, a token or
a claims value; exceptions are not recorded (their codes are, as ``error.type``).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "aioentra.otel needs opentelemetry-api: pip install 'aioentra[otel]'"
    ) from exc

from . import __version__
from ._flight import FetchReason
from ._telemetry import FetchEvent, FetchSpan, RequestSpan, Telemetry
from ._token import ServedFrom

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

    from ._source import TokenSourceBase

__all__ = ["OpenTelemetry"]

_SCOPE_NAME = "aioentra"


class OpenTelemetry(Telemetry):
    """Reports token fetches as OpenTelemetry metrics and spans.

    Args:
        meter_provider: where metrics go (default: the global one).
        tracer_provider: where spans go (default: the global one).

    One object can serve many providers; each provider it is given is reported with its own
    client id and tenant.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE_NAME, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE_NAME, __version__, meter_provider=meter_provider)
        self._requests = meter.create_counter(
            "aioentra.token.requests",
            unit="{request}",
            description="Token fetches that ended, by outcome",
        )
        self._failures = meter.create_counter(
            "aioentra.token.refresh_failures",
            unit="{failure}",
            description="Token fetches that failed",
        )
        self._duration = meter.create_histogram(
            "aioentra.token.request.duration",
            unit="s",
            description="Duration of token fetches, retries included",
        )
        self._http_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests",
        )
        meter.create_observable_counter(
            "aioentra.token.cache_hits",
            callbacks=[self._observe_hits],
            unit="{hit}",
            description="Token calls answered without a request to the identity provider",
        )
        meter.create_observable_gauge(
            "aioentra.token.time_to_expiry",
            callbacks=[self._observe_expiry],
            unit="s",
            description="Seconds until each cached token expires",
        )
        self._sources: weakref.WeakSet[TokenSourceBase] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"OpenTelemetry(sources={len(self._sources)})"

    # -- the hooks ---------------------------------------------------------------------------

    def attach(self, source: TokenSourceBase) -> None:
        self._sources.add(source)

    def detach(self, source: TokenSourceBase) -> None:
        self._sources.discard(source)

    @contextlib.contextmanager
    def fetch_span(
        self, *, scope: str, tenant_id: str, client_id: str, reason: FetchReason
    ) -> Iterator[FetchSpan]:
        attributes = {
            **_key_attributes(scope, tenant_id, client_id),
            "aioentra.reason": reason.value,
        }
        with self._tracer.start_as_current_span(
            "aioentra.acquire_token",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield _FetchSpan(span)

    @contextlib.contextmanager
    def request_span(self, method: str, url: str) -> Iterator[RequestSpan]:
        parts = urlsplit(url)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            "url.full": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "url.scheme": parts.scheme,
        }
        started = time.perf_counter()
        handle: _RequestSpan | None = None
        try:
            with self._tracer.start_as_current_span(
                method,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                handle = _RequestSpan(span)
                yield handle
        finally:
            measured = dict(attributes)
            del measured["url.full"]  # not a metric attribute (semantic conventions)
            if handle is not None:
                measured.update(handle.outcome)
            self._http_duration.record(time.perf_counter() - started, measured)

    def fetch_ended(self, event: FetchEvent) -> None:
        attributes: dict[str, Any] = {
            **_key_attributes(event.scope, event.tenant_id, event.client_id),
            "aioentra.reason": event.reason.value,
            "aioentra.outcome": "success" if event.succeeded else "failure",
        }
        if event.source is not None:
            attributes["aioentra.source"] = event.source.value
        if event.error_code is not None:
            attributes["error.type"] = event.error_code
        self._requests.add(1, attributes)
        self._duration.record(
            event.duration,
            {
                **_key_attributes(event.scope, event.tenant_id, event.client_id),
                "aioentra.outcome": attributes["aioentra.outcome"],
            },
        )
        if not event.succeeded:
            self._failures.add(
                1,
                {
                    **_key_attributes(event.scope, event.tenant_id, event.client_id),
                    "aioentra.reason": event.reason.value,
                    "error.type": event.error_code or "",
                    "aioentra.serving": event.serving,
                },
            )

    # -- observable instruments (called from the SDK's reader thread) -------------------------

    def _observe_hits(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[tuple[str, str, str], int] = {}
        for source in list(self._sources):
            stats = source.stats()
            memory = stats.memory_hits or 0
            name = (stats.client_id, stats.tenant_id, "memory")
            totals[name] = totals.get(name, 0) + memory
            shared = (stats.client_id, stats.tenant_id, "shared")
            totals[shared] = totals.get(shared, 0) + stats.shared_cache_hits
        return [
            metrics.Observation(
                count,
                {
                    "aioentra.client_id": client,
                    "aioentra.tenant_id": tenant,
                    "aioentra.cache": cache,
                },
            )
            for (client, tenant, cache), count in totals.items()
        ]

    def _observe_expiry(self, options: CallbackOptions) -> Iterable[Observation]:
        now = time.time()
        seen: dict[tuple[str, str, str], float] = {}
        for source in list(self._sources):
            stats = source.stats()
            for key in stats.keys:
                if key.claims or key.expires_on is None:
                    continue
                name = (key.scope, key.tenant_id, stats.client_id)
                left = key.expires_on - now
                seen[name] = max(left, seen.get(name, left))
        return [metrics.Observation(left, _key_attributes(*name)) for name, left in seen.items()]


def _key_attributes(scope: str, tenant_id: str, client_id: str) -> dict[str, Any]:
    return {
        "aioentra.scope": scope,
        "aioentra.tenant_id": tenant_id,
        "aioentra.client_id": client_id,
    }


class _FetchSpan(FetchSpan):
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def succeeded(self, source: ServedFrom, expires_in: float) -> None:
        self._span.set_attributes(
            {
                "aioentra.source": source.value,
                "aioentra.outcome": "success",
                "aioentra.expires_in": expires_in,
            }
        )

    def failed(self, error_code: str) -> None:
        self._span.set_attributes({"aioentra.outcome": "failure", "error.type": error_code})
        self._span.set_status(Status(StatusCode.ERROR, error_code))


class _RequestSpan(RequestSpan):
    __slots__ = ("_span", "outcome")

    def __init__(self, span: Span) -> None:
        self._span = span
        self.outcome: dict[str, Any] = {}

    def status(self, code: int) -> None:
        self.outcome["http.response.status_code"] = code
        self._span.set_attribute("http.response.status_code", code)
        if code >= 400:
            # Semantic conventions: a client span with a 4xx or 5xx status is an error, and
            # error.type is the status code.
            self.outcome["error.type"] = str(code)
            self._span.set_attribute("error.type", str(code))
            self._span.set_status(Status(StatusCode.ERROR))

    def failed(self, error_type: str) -> None:
        self.outcome["error.type"] = error_type
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, error_type))
