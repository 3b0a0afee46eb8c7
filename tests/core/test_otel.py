"""OpenTelemetry: metrics and spans of real token requests, read from an in-memory SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aioentra import ClientSecret, CredentialRejectedError, ManagedIdentityProvider, TokenProvider
from aioentra.emulator import App, Emulator, Fault
from aioentra.otel import OpenTelemetry
from aioentra.testing import ManualClock

from .conftest import SCOPE, token_requests, use_managed_identity

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = OpenTelemetry(
            meter_provider=self.meter_provider, tracer_provider=self.tracer_provider
        )

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def everything(self) -> str:
        """Every span and metric as text: what a secret must never be part of."""
        spans = [span.to_json() for span in self.finished()]
        data = self.reader.get_metrics_data()
        return "\n".join(spans) + (data.to_json() if data is not None else "")


@pytest.fixture
def otel() -> Iterator[Otel]:
    made = Otel()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


async def test_a_token_request_has_a_span_with_http_attributes_and_metrics(
    emulator: Emulator, app: App, make_provider: MakeProvider, otel: Otel
) -> None:
    async with make_provider(telemetry=otel.telemetry) as provider:
        token = await provider.get_token(SCOPE)
        for _ in range(3):
            await provider.get_token(SCOPE)
        expiry = otel.points("aioentra.token.time_to_expiry")
        hits = otel.points("aioentra.token.cache_hits")
    assert token_requests(emulator, app) == 1

    fetches = [s for s in otel.finished() if s.name == "aioentra.acquire_token"]
    assert len(fetches) == 1
    fetch = fetches[0]
    assert fetch.kind is SpanKind.INTERNAL
    assert fetch.attributes is not None
    assert dict(fetch.attributes) == {
        "aioentra.scope": SCOPE,
        "aioentra.tenant_id": emulator.tenant_id,
        "aioentra.client_id": app.client_id,
        "aioentra.reason": "cold",
        "aioentra.source": "network",
        "aioentra.outcome": "success",
        "aioentra.expires_in": fetch.attributes["aioentra.expires_in"],
    }
    # Discovery (GET) and the token request (POST), both inside the fetch's span.
    requests = [s for s in otel.finished() if s.kind is SpanKind.CLIENT]
    assert sorted(s.name for s in requests) == ["GET", "POST"]
    post = next(s for s in requests if s.name == "POST")
    assert post.parent is not None and post.parent.span_id == fetch.context.span_id
    assert post.context.trace_id == fetch.context.trace_id
    assert post.attributes is not None
    host, port = emulator.base_url.removeprefix("https://").rsplit(":", 1)
    assert post.attributes["http.request.method"] == "POST"
    assert post.attributes["server.address"] == host
    assert post.attributes["server.port"] == int(port)
    assert post.attributes["http.response.status_code"] == 200
    assert (
        post.attributes["url.full"] == f"{emulator.base_url}/{emulator.tenant_id}/oauth2/v2.0/token"
    )

    (requested,) = otel.points("aioentra.token.requests")
    assert requested.value == 1 and requested.attributes["aioentra.outcome"] == "success"
    assert requested.attributes["aioentra.source"] == "network"
    (memory,) = [p for p in hits if p.attributes["aioentra.cache"] == "memory"]
    assert memory.value == 3
    (left,) = expiry
    assert 0 < left.value <= emulator.token_lifetime
    durations = otel.points("http.client.request.duration")
    assert sum(p.count for p in durations) == 2
    assert all("url.full" not in p.attributes for p in durations)

    everything = otel.everything()
    assert token.token not in everything and (app.secret or "?") not in everything


async def test_a_failure_is_an_error_span_and_a_failure_count(
    emulator: Emulator, app: App, make_provider: MakeProvider, otel: Otel
) -> None:
    async with make_provider(ClientSecret("wrong-secret"), telemetry=otel.telemetry) as provider:
        with pytest.raises(CredentialRejectedError):
            await provider.get_token(SCOPE)
    (fetch,) = [s for s in otel.finished() if s.name == "aioentra.acquire_token"]
    assert fetch.status.status_code is StatusCode.ERROR
    assert fetch.attributes is not None
    assert fetch.attributes["error.type"] == "invalid_client (AADSTS7000215)"
    assert fetch.events == ()  # exceptions are not recorded: their codes are
    (post,) = [s for s in otel.finished() if s.name == "POST"]
    assert post.attributes is not None
    assert post.attributes["http.response.status_code"] == 401
    assert post.attributes["error.type"] == "401"
    (failed,) = otel.points("aioentra.token.refresh_failures")
    assert failed.value == 1 and failed.attributes["aioentra.serving"] is False
    (requested,) = otel.points("aioentra.token.requests")
    assert requested.attributes["aioentra.outcome"] == "failure"
    assert "wrong-secret" not in otel.everything()


async def test_a_connection_failure_is_recorded_on_the_request_span(
    emulator: Emulator, app: App, make_provider: MakeProvider, otel: Otel
) -> None:
    clock = ManualClock()
    async with make_provider(telemetry=otel.telemetry, clock=clock) as provider:
        await provider.get_token(SCOPE)
        emulator.faults.add(Fault(endpoint="token", kind="reset", count=1))
        await provider.get_token(SCOPE, force_refresh=True)  # retried, then served
    resets = [
        s
        for s in otel.finished()
        if s.name == "POST" and s.attributes and "http.response.status_code" not in s.attributes
    ]
    assert len(resets) == 1 and resets[0].status.status_code is StatusCode.ERROR
    assert resets[0].attributes is not None and resets[0].attributes["error.type"]
    forced = [
        s
        for s in otel.finished()
        if s.name == "aioentra.acquire_token"
        and s.attributes
        and s.attributes["aioentra.reason"] == "forced"
    ]
    assert len(forced) == 1


async def test_concurrent_fetches_of_two_keys_keep_their_requests_apart(
    emulator: Emulator, app: App, make_provider: MakeProvider, otel: Otel
) -> None:
    claims = json.dumps({"access_token": {"xms_cc": {"values": ["cp1"]}}})
    async with make_provider(telemetry=otel.telemetry) as provider:
        await provider.get_token(SCOPE)  # discovery out of the way
        otel.spans.clear()
        await asyncio.gather(
            provider.get_token(SCOPE, force_refresh=True), provider.get_token(SCOPE, claims=claims)
        )
    fetches = {s.context.span_id: s for s in otel.finished() if s.name == "aioentra.acquire_token"}
    posts = [s for s in otel.finished() if s.name == "POST"]
    assert len(fetches) == 2 and len(posts) == 2
    assert {p.parent.span_id for p in posts if p.parent is not None} == set(fetches)


async def test_the_managed_identity_source_reports_too(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, otel: Otel
) -> None:
    use_managed_identity(monkeypatch, emulator.managed_identity.environ)
    async with ManagedIdentityProvider(telemetry=otel.telemetry) as provider:
        await provider.get_token("https://vault.azure.net/.default")
    (fetch,) = [s for s in otel.finished() if s.name == "aioentra.acquire_token"]
    (get,) = [s for s in otel.finished() if s.kind is SpanKind.CLIENT]
    assert get.parent is not None and get.parent.span_id == fetch.context.span_id
    assert get.attributes is not None and get.attributes["http.response.status_code"] == 200


async def test_a_closed_provider_is_no_longer_observed(
    emulator: Emulator, app: App, make_provider: MakeProvider, otel: Otel
) -> None:
    async with make_provider(telemetry=otel.telemetry) as provider:
        await provider.get_token(SCOPE)
        assert otel.points("aioentra.token.time_to_expiry")
    assert otel.points("aioentra.token.time_to_expiry") == []
    assert repr(otel.telemetry) == "OpenTelemetry(sources=0)"
