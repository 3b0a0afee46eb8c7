"""Hooks for metrics and traces: what a token source reports, and to whom.

A source built without ``telemetry=`` reports to :data:`NO_TELEMETRY`, whose hooks do nothing;
its warm path is the plain one (no counter, no check). With ``telemetry=`` (for example
:class:`aioentra.otel.OpenTelemetry`) the source calls, all on the event loop:

=============================  ==============================================================
hook                           when
=============================  ==============================================================
``attach(source)``             the source is built (observable metrics read ``source.stats()``)
``fetch_span(...)``            around each fetch: a span whose context the fetch's HTTP
                               requests inherit
``request_span(method, url)``  around each HTTP request of a fetch (token, discovery, IMDS)
``fetch_ended(event)``         a fetch succeeded or failed (counters, durations)
``detach(source)``             the source closed
=============================  ==============================================================

A hook that raises is logged once per telemetry object and otherwise ignored: telemetry never
fails a token request. No hook is given a secret: events carry scopes, ids, codes and times.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._flight import FetchReason
from ._token import ServedFrom

if TYPE_CHECKING:
    from ._source import TokenSourceBase

__all__ = ["NO_TELEMETRY", "FetchEvent", "FetchSpan", "RequestSpan", "Telemetry"]

logger = logging.getLogger("aioentra.telemetry")


@dataclass(frozen=True)
class FetchEvent:
    """One fetch, ended: what metrics count."""

    scope: str
    tenant_id: str
    client_id: str
    claims: bool
    reason: FetchReason
    duration: float
    """Seconds the fetch took."""
    source: ServedFrom | None
    """Where the token came from; ``None`` when the fetch failed."""
    expires_in: float | None
    """The token's lifetime in seconds; ``None`` when the fetch failed."""
    error_code: str | None
    """The failure's code (see :attr:`KeyStats.last_error_code`); ``None`` on success."""
    retry_in: float | None = None
    """After a failure: seconds before the key fetches again."""
    serving: bool = False
    """After a failure: whether callers keep getting the cached token meanwhile."""

    @property
    def succeeded(self) -> bool:
        return self.error_code is None


class FetchSpan:
    """The handle of a fetch's span: told how the fetch ended."""

    def succeeded(self, source: ServedFrom, expires_in: float) -> None:
        """The fetch got a token from ``source``, valid for ``expires_in`` seconds."""

    def failed(self, error_code: str) -> None:
        """The fetch failed with ``error_code``."""


class RequestSpan:
    """The handle of one HTTP request's span: told the response status."""

    def status(self, code: int) -> None:
        """The server answered with HTTP status ``code``."""

    def failed(self, error_type: str) -> None:
        """No answer: the connection failed or timed out (``error_type`` says how)."""


_NO_SPAN = FetchSpan()
_NO_REQUEST = RequestSpan()


class Telemetry:
    """The hooks a token source calls; the base class does nothing.

    Subclass it to report to a metrics or tracing backend; :class:`aioentra.otel.
    OpenTelemetry` is the one aioentra ships. Every hook is called on the event loop, must be
    quick, and must not block.
    """

    def attach(self, source: TokenSourceBase) -> None:
        """``source`` was built with this telemetry."""

    def detach(self, source: TokenSourceBase) -> None:
        """``source`` closed."""

    @contextlib.contextmanager
    def fetch_span(
        self, *, scope: str, tenant_id: str, client_id: str, reason: FetchReason
    ) -> Iterator[FetchSpan]:
        """Around one fetch; the HTTP requests it sends run inside it."""
        yield _NO_SPAN

    @contextlib.contextmanager
    def request_span(self, method: str, url: str) -> Iterator[RequestSpan]:
        """Around one HTTP request; ``url`` has no query and no credentials."""
        yield _NO_REQUEST

    def fetch_ended(self, event: FetchEvent) -> None:
        """A fetch succeeded or failed."""


NO_TELEMETRY = Telemetry()
"""What a source without ``telemetry=`` reports to."""


_REPORTED: weakref.WeakSet[Telemetry] = weakref.WeakSet()
"""Telemetry objects whose failure was logged: once per object, however many sources use it."""


class Guarded:
    """Calls a telemetry's hooks so that one that raises is logged (once) and ignored."""

    __slots__ = ("telemetry",)

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    @property
    def enabled(self) -> bool:
        return self.telemetry is not NO_TELEMETRY

    def call(self, hook: str, *args: Any) -> None:
        try:
            getattr(self.telemetry, hook)(*args)
        except Exception as exc:
            self._report(hook, exc)

    @contextlib.contextmanager
    def fetch_span(
        self, *, scope: str, tenant_id: str, client_id: str, reason: FetchReason
    ) -> Iterator[FetchSpan]:
        with self._span(
            self.telemetry.fetch_span,
            _NO_SPAN,
            scope=scope,
            tenant_id=tenant_id,
            client_id=client_id,
            reason=reason,
        ) as span:
            yield span

    @contextlib.contextmanager
    def request_span(self, method: str, url: str) -> Iterator[RequestSpan]:
        with self._span(self.telemetry.request_span, _NO_REQUEST, method, url) as span:
            yield span

    @contextlib.contextmanager
    def _span(self, factory: Any, fallback: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        # The telemetry's own failures (entering or leaving its span) are reported and dropped;
        # the body's exceptions pass through the span unchanged.
        if not self.enabled:
            yield fallback
            return
        try:
            manager = factory(*args, **kwargs)
            span = manager.__enter__()
        except Exception as exc:
            self._report("a span", exc)
            yield fallback
            return
        try:
            yield _Safe(span, self)
        except BaseException as error:
            try:
                manager.__exit__(type(error), error, error.__traceback__)
            except Exception as exc:
                self._report("a span", exc)
            raise
        try:
            manager.__exit__(None, None, None)
        except Exception as exc:
            self._report("a span", exc)

    def _report(self, hook: str, exc: Exception) -> None:
        if self.telemetry not in _REPORTED:
            _REPORTED.add(self.telemetry)
            logger.warning(
                "telemetry %r failed in %s (%s); its later failures are not logged",
                type(self.telemetry).__name__,
                hook,
                type(exc).__name__,
            )


class _Safe:
    """A span handle whose methods never raise."""

    __slots__ = ("_guard", "_span")

    def __init__(self, span: Any, guard: Guarded) -> None:
        self._span = span
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> None:
            try:
                # A handle without the method (a hook that yields nothing) is told nothing.
                method = getattr(self._span, name, None)
                if method is not None:
                    method(*args)
            except Exception as exc:
                self._guard._report(f"span.{name}", exc)

        return call
