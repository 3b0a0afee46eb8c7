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
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

try:
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
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
    from ._stats import TokenStats

__all__ = ["OpenTelemetry"]

_SCOPE_NAME = "aioentra"


class OpenTelemetry(Telemetry):
    """Reports token fetches as OpenTelemetry metrics and spans.

    Args:
        meter_provider: where metrics go (default: the global one).
        tracer_provider: where spans go (default: the global one).

    One object can serve many providers, and many objects can share one meter provider: the
    instruments are made once per meter provider, and every source given any of its objects is
    observed by them, each reported with its own client id and tenant.

    A refresh-ahead fetch runs in the background, for no caller: its span starts a trace of its
    own, linked to the span of the caller whose call started it.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE_NAME, __version__, tracer_provider=tracer_provider)
        self._meters = _Meters.of(meter_provider or metrics.get_meter_provider())

    def __repr__(self) -> str:
        return f"OpenTelemetry(sources={self._meters.count()})"

    # -- the hooks ---------------------------------------------------------------------------

    def attach(self, source: TokenSourceBase) -> None:
        self._meters.attach(source)

    def detach(self, source: TokenSourceBase) -> None:
        self._meters.detach(source)

    @contextlib.contextmanager
    def fetch_span(
        self, *, scope: str, tenant_id: str, client_id: str, reason: FetchReason
    ) -> Iterator[FetchSpan]:
        attributes = {
            **_key_attributes(scope, tenant_id, client_id),
            "aioentra.reason": reason.value,
        }
        parent: Context | None = None
        links: list[Link] = []
        if reason is FetchReason.AHEAD:
            # Background work: a root span (so the caller's sampling decision doesn't decide
            # it, and it doesn't outlive the caller's trace), linked to that caller.
            parent = Context()
            caller = trace.get_current_span().get_span_context()
            if caller.is_valid:
                links.append(Link(caller))
        with self._tracer.start_as_current_span(
            "aioentra.acquire_token",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
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
            self._meters.http_duration.record(time.perf_counter() - started, measured)

    def fetch_ended(self, event: FetchEvent) -> None:
        key = _key_attributes(event.scope, event.tenant_id, event.client_id)
        outcome = "success" if event.succeeded else "failure"
        attributes: dict[str, Any] = {
            **key,
            "aioentra.reason": event.reason.value,
            "aioentra.outcome": outcome,
        }
        if event.source is not None:
            attributes["aioentra.source"] = event.source.value
        if event.error_code is not None:
            attributes["error.type"] = event.error_code
        meters = self._meters
        meters.requests.add(1, attributes)
        meters.duration.record(event.duration, {**key, "aioentra.outcome": outcome})
        if not event.succeeded:
            meters.failures.add(
                1,
                {
                    **key,
                    "aioentra.reason": event.reason.value,
                    "error.type": event.error_code or "",
                    "aioentra.serving": event.serving,
                },
            )


class _Watched:
    """One observed source: how to reach it, and the most hits it has reported."""

    __slots__ = ("client_id", "memory", "ref", "shared", "tenant_id")

    def __init__(self, ref: weakref.ref[TokenSourceBase], client_id: str, tenant_id: str) -> None:
        self.ref = ref
        self.client_id = client_id
        self.tenant_id = tenant_id
        self.memory = 0
        self.shared = 0

    def read(self, source: TokenSourceBase) -> TokenStats:
        stats = source.stats()
        self.client_id, self.tenant_id = stats.client_id, stats.tenant_id
        # High-water marks: a source's own count may drop (a pruned key takes its shared hits
        # along); the counter reported must not.
        self.memory = max(self.memory, stats.memory_hits or 0)
        self.shared = max(self.shared, stats.shared_cache_hits)
        return stats


class _Meters:
    """The instruments of one meter provider and the sources they observe.

    Made once per meter provider (the SDK hands back an instrument already registered, with
    the first creator's callbacks only), shared by every :class:`OpenTelemetry` object on it.
    The observable callbacks run on the SDK's reader thread while the loop attaches and
    detaches sources: the registry is read and changed under a lock. Hits of sources gone
    (closed, or collected) stay in the cumulative counter.
    """

    _registry: ClassVar[weakref.WeakKeyDictionary[Any, _Meters]] = weakref.WeakKeyDictionary()
    _strong: ClassVar[dict[int, tuple[Any, _Meters]]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, meter_provider: Any) -> _Meters:
        with cls._registry_lock:
            try:
                found = cls._registry.get(meter_provider)
            except TypeError:  # not weakly referenceable: kept for the process
                held = cls._strong.get(id(meter_provider))
                found = held[1] if held is not None else None
                if found is None:
                    found = cls(meter_provider)
                    cls._strong[id(meter_provider)] = (meter_provider, found)
                return found
            if found is None:
                found = cls._registry[meter_provider] = cls(meter_provider)
            return found

    def __init__(self, meter_provider: Any) -> None:
        meter = metrics.get_meter(_SCOPE_NAME, __version__, meter_provider=meter_provider)
        self.requests = meter.create_counter(
            "aioentra.token.requests",
            unit="{request}",
            description="Token fetches that ended, by outcome",
        )
        self.failures = meter.create_counter(
            "aioentra.token.refresh_failures",
            unit="{failure}",
            description="Token fetches that failed",
        )
        self.duration = meter.create_histogram(
            "aioentra.token.request.duration",
            unit="s",
            description="Duration of token fetches, retries included",
        )
        self.http_duration = meter.create_histogram(
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
        # A re-entrant lock: a weak reference's callback (a source collected) may run on the
        # thread that already holds it.
        self._lock = threading.RLock()
        self._watched: dict[int, _Watched] = {}
        self._retired: dict[tuple[str, str, str], int] = {}

    def count(self) -> int:
        with self._lock:
            return len(self._watched)

    def attach(self, source: TokenSourceBase) -> None:
        # Called from the source's __init__: who it is is read with its first stats().
        ident = id(source)
        ref = weakref.ref(source, lambda _: self._retire(ident, None))
        with self._lock:
            if ident not in self._watched:
                self._watched[ident] = _Watched(ref, "-", "-")

    def detach(self, source: TokenSourceBase) -> None:
        self._retire(id(source), source)

    def _retire(self, ident: int, source: TokenSourceBase | None) -> None:
        with self._lock:
            watched = self._watched.get(ident)
            if watched is None or (source is not None and watched.ref() is not source):
                return
            if source is not None:
                watched.read(source)
            del self._watched[ident]
            for cache, hits in (("memory", watched.memory), ("shared", watched.shared)):
                if not hits:
                    continue
                name = (watched.client_id, watched.tenant_id, cache)
                self._retired[name] = self._retired.get(name, 0) + hits

    def _live(self) -> list[tuple[_Watched, TokenSourceBase]]:
        with self._lock:
            found = []
            for watched in self._watched.values():
                source = watched.ref()
                if source is not None:
                    found.append((watched, source))
            return found

    # -- observable instruments (called from the SDK's reader thread) -------------------------

    def _observe_hits(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = dict(self._retired)
            for watched, source in self._live():
                watched.read(source)
                for cache, hits in (("memory", watched.memory), ("shared", watched.shared)):
                    name = (watched.client_id, watched.tenant_id, cache)
                    totals[name] = totals.get(name, 0) + hits
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
        for _, source in self._live():
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
