"""Defects an adversarial review of the observability code found, one regression test each.

Against the emulator over HTTPS with the real msal in the path (time on a ManualClock where it
matters), except a pure log-line check and a bounded two-thread check of the metric callbacks.
Each test's docstring describes the defect as it was found, before the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from aioentra import (
    ClientSecret,
    FetchReason,
    IdentityProviderUnavailableError,
    KeyVaultError,
    KeyVaultSecret,
    ManagedIdentityProvider,
    Proof,
    ReloadReason,
    RetryPolicy,
    ServedFrom,
    Telemetry,
    ThrottledError,
    TokenProvider,
)
from aioentra.aiohttp import authenticated_session
from aioentra.credentials import AssertionContext
from aioentra.emulator import App, Emulator, Fault, ManagedIdentity
from aioentra.otel import OpenTelemetry
from aioentra.testing import ManualClock
from middleware.support import RecordingServer, Tls

from .conftest import (
    SCOPE,
    AuditedProvider,
    token_requests,
    unique,
    use_managed_identity,
    vault_reads,
)
from .test_otel import Otel, otel  # noqa: F401 - the OpenTelemetry SDK fixture, reused

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]
CLAIMS = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
VAULT_SCOPE = "https://vault.azure.net/.default"


def _records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "aioentra", {}).get("event") == event]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = record.aioentra  # type: ignore[attr-defined]
    return fields


def _promised_wait(message: str) -> float:
    """The seconds after which a failure line says the next call goes out."""
    found = re.search(r"(?:call|renewal|request|read)s? after (\d+(?:\.\d+)?)s", message)
    assert found is not None, message
    return float(found.group(1))


async def _settle(provider: TokenProvider) -> None:
    await asyncio.gather(*provider._flight.tasks(), return_exceptions=True)


# -- telemetry never fails a token request -----------------------------------------------------


class _BareSpans(Telemetry):
    """A backend whose span hooks wrap its own tracer and yield nothing, the usual shape of a
    ``@contextmanager`` hook."""

    entered = 0

    @contextlib.contextmanager
    def fetch_span(  # type: ignore[override]
        self, *, scope: str, tenant_id: str, client_id: str, reason: FetchReason
    ) -> Iterator[None]:
        _BareSpans.entered += 1
        yield

    @contextlib.contextmanager
    def request_span(self, method: str, url: str) -> Iterator[None]:  # type: ignore[override]
        yield


async def test_a_telemetry_whose_span_hooks_yield_nothing_never_fails_a_token_request(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """``_Safe.__getattr__`` (``_telemetry.py``) looks the method up on the telemetry's span
    handle outside its ``try``: a hook that yields ``None`` (or any object without
    ``succeeded``/``failed``/``status``) raises AttributeError out of ``span.succeeded`` in
    ``_fetch`` and out of ``span.status`` in the transport (which msal turns into "msal refused
    the request"), so every token request fails because of telemetry."""
    _BareSpans.entered = 0
    async with make_provider(telemetry=_BareSpans()) as provider:
        token = await provider.get_token(SCOPE)
    assert token.token and _BareSpans.entered == 1
    assert token_requests(emulator, app) == 1


class _Broken(Telemetry):
    def fetch_ended(self, event: Any) -> None:
        raise RuntimeError("a broken exporter")


async def test_a_broken_telemetry_is_logged_once_however_many_sources_share_it(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """``_telemetry.py`` promises a hook that raises "is logged once per telemetry object", but
    the once-flag lives in ``Guarded``, which each source makes for itself: one exporter
    shared by N providers (the documented "one object can serve many providers") warns N
    times."""
    broken = _Broken()
    async with make_provider(telemetry=broken) as first, make_provider(telemetry=broken) as second:
        await first.get_token(SCOPE)
        await second.get_token(SCOPE)
    warned = [r for r in caplog.records if r.name == "aioentra.telemetry"]
    assert len(warned) == 1, [r.getMessage() for r in warned]


# -- what a failure line says happens next ------------------------------------------------------


async def test_a_failed_renewal_says_when_a_renewal_really_goes_out_again(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """After a failed ``renew_token`` the WARNING says "a call after ~1s starts a new refresh"
    (``_reporting.next_action`` only knows the back-off). But the renewal limit
    (``RefreshPolicy.renewal_interval``, 30 s, spent when the failed renewal started) makes
    every ``renew_token`` in the next 30 s return the rejected token without a request, and
    ``get_token`` serves it from memory while it is fresh: nothing goes out after the
    back-off. The same holds for a failed ``force_refresh`` of a fresh token (no plain call
    starts a refresh before the token's refresh time)."""
    caplog.set_level(logging.INFO, logger="aioentra")
    clock = ManualClock()
    async with make_provider(clock=clock, retry=ONE_ATTEMPT) as provider:
        token = await provider.get_token(SCOPE)
        fault = emulator.faults.add(Fault("token", "status", status=503, count=None))
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.renew_token(SCOPE, rejected=token)
        emulator.faults.remove(fault)
        (record,) = _records(caplog, "token_failed")
        message = record.getMessage()
        clock.advance(_promised_wait(message) + 0.1)
        sent = token_requests(emulator, app)
        renewed = await provider.renew_token(SCOPE, rejected=token)
    assert token_requests(emulator, app) == sent + 1, message
    assert renewed.token != token.token


async def test_a_failed_claims_request_says_what_claims_callers_really_get_next(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """After a failed claims fetch the WARNING says "callers get this error until a call after
    ~1s sends a new request". But the claims budget (``("claims", plain)``, one per
    ``renewal_interval``) was spent when the failed fetch started: for 30 s a claims call
    after the back-off sends nothing and gets the plain token (the ``fallback``), which the
    resource has just refused with this very challenge."""
    caplog.set_level(logging.INFO, logger="aioentra")
    clock = ManualClock()
    async with make_provider(clock=clock, retry=ONE_ATTEMPT) as provider:
        await provider.get_token(SCOPE)
        fault = emulator.faults.add(Fault("token", "status", status=503, count=None))
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE, claims=CLAIMS)
        emulator.faults.remove(fault)
        (record,) = _records(caplog, "token_failed")
        message = record.getMessage()
        clock.advance(_promised_wait(message) + 0.1)
        sent = token_requests(emulator, app)
        challenged = await provider.get_token(SCOPE, claims=CLAIMS)
    assert token_requests(emulator, app) == sent + 1, message
    assert challenged.metadata is not None and challenged.metadata.reason is FetchReason.CLAIMS


async def test_a_failed_refresh_near_the_end_says_how_long_the_cached_token_is_served(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A refresh-ahead that fails with ``Retry-After: 45`` ten seconds before the token's
    usable window closes logs "serving the cached token (valid for another 70s); a call after
    45.0s starts a new refresh" (``_source._Observer.failed`` measures to ``expires_on``, and
    ``next_action`` ignores the usable window). The cell serves the token only until
    ``usable_until`` (expiry minus the margin), 10 s here: from then until the back-off ends
    (35 s more) every caller gets the ThrottledError, which the line never says."""
    caplog.set_level(logging.INFO, logger="aioentra")
    clock = ManualClock()
    async with make_provider(clock=clock, retry=ONE_ATTEMPT) as provider:
        token = await provider.get_token(SCOPE)
        slot = provider._flight.slots[SCOPE]
        clock.advance(slot.usable_until - 10 - clock.monotonic())
        emulator.faults.add(Fault("token", "throttle", retry_after=45, count=None))
        assert await provider.get_token(SCOPE) == token  # served; the refresh fails behind
        await _settle(provider)
        served_for = slot.usable_until - clock.monotonic()  # what the cell will still serve
        clock.advance(served_for + 1)  # the usable window closed; the back-off has not ended
        with pytest.raises(ThrottledError):
            await provider.get_token(SCOPE)  # what callers get now
        emulator.faults.clear()
    (record,) = _records(caplog, "token_failed")
    message = record.getMessage()
    claimed = re.search(r"serving the cached token \D*(\d+)s", message)
    assert claimed is None or float(claimed.group(1)) <= served_for + 1, message


# -- counts: memory hits ------------------------------------------------------------------------


async def test_memory_answers_off_the_warm_path_are_counted_as_memory_hits(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """``memory_hits`` (and so ``aioentra.token.cache_hits{cache=memory}``) is counted only on
    the warm path (``_source._make_instrumented``). Calls that memory answers on the slow path
    are missed: any ``tenant_id=`` (Azure SDK clients pass one: Key Vault's challenge does),
    and every call inside the refresh-ahead window. Their tokens say ``MEMORY`` all the same,
    so a daemon reached through ``as_azure_credential()`` reports 0 memory hits."""
    clock = ManualClock()
    async with make_provider(telemetry=Telemetry(), clock=clock) as provider:
        await provider.get_token(SCOPE)
        named = await provider.get_token(SCOPE, tenant_id=emulator.tenant_id)
        clock.advance(provider._flight.slots[SCOPE].fresh_until - clock.monotonic())
        ahead = await provider.get_token(SCOPE)
        await _settle(provider)
        hits = provider.stats().memory_hits
    for token in (named, ahead):
        assert token.metadata is not None and token.metadata.source is ServedFrom.MEMORY
    assert hits == 2


async def test_the_cache_hits_counter_never_goes_down(
    emulator: Emulator,
    app: App,
    make_provider: MakeProvider,
    otel: Otel,  # noqa: F811
) -> None:
    """``aioentra.token.cache_hits`` is an observable (monotonic, cumulative) counter, but
    ``OpenTelemetry._observe_hits`` sums the hits of the sources attached right now per
    (client, tenant): when one of two providers of an app closes (or a claims key with shared
    hits is pruned) the reported total drops, which backends read as a counter reset."""

    def memory_hits() -> int:
        points = otel.points("aioentra.token.cache_hits")
        return sum(p.value for p in points if p.attributes["aioentra.cache"] == "memory")

    async with make_provider(telemetry=otel.telemetry) as first:
        async with make_provider(telemetry=otel.telemetry) as second:
            for provider in (first, second):
                for _ in range(3):
                    await provider.get_token(SCOPE)
            before = memory_hits()
        after = memory_hits()
    assert before == 4
    assert after >= before


# -- spans --------------------------------------------------------------------------------------


async def test_a_background_refresh_is_traced_whatever_the_triggering_caller_s_sampling(
    emulator: Emulator,
    app: App,
    make_provider: MakeProvider,
    otel: Otel,  # noqa: F811
) -> None:
    """A refresh-ahead fetch runs in a task made from the context of whichever caller hit the
    refresh window (``Flight._start``), so its span is a child of that caller's span: under
    the SDK's default parent-based sampler a caller whose trace was not sampled upstream
    makes the background refresh (and its failures) untraced, and a sampled one gets a span
    in its trace that outlives its own request. Background work should start its own trace
    (with a link to the caller, if anything)."""
    clock = ManualClock()
    unsampled = NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.DEFAULT),
        )
    )
    async with make_provider(telemetry=otel.telemetry, clock=clock) as provider:
        token = await provider.get_token(SCOPE)
        clock.advance(provider._flight.slots[SCOPE].fresh_until - clock.monotonic())
        with trace.use_span(unsampled):
            assert await provider.get_token(SCOPE) == token  # refreshes in the background
        await _settle(provider)
    assert token_requests(emulator, app) == 2
    reasons = [
        (s.attributes or {}).get("aioentra.reason")
        for s in otel.finished()
        if s.name == "aioentra.acquire_token"
    ]
    assert reasons == ["cold", "refresh-ahead"]


async def test_each_opentelemetry_object_s_sources_are_observed(
    emulator: Emulator,
    app: App,
    make_provider: MakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    otel: Otel,  # noqa: F811
) -> None:
    """The documented idiom is ``telemetry=OpenTelemetry()`` per provider. Each object asks the
    same meter for the observable instruments again, and the SDK hands back the instrument
    already registered, with the first object's callbacks only (``OpenTelemetry.__init__``
    passes its callbacks at creation): a second object's sources never appear in
    ``aioentra.token.time_to_expiry`` or ``aioentra.token.cache_hits``."""
    use_managed_identity(monkeypatch, emulator.managed_identity.environ)
    second = OpenTelemetry(meter_provider=otel.meter_provider, tracer_provider=otel.tracer_provider)
    async with (
        make_provider(telemetry=otel.telemetry) as provider,
        ManagedIdentityProvider(telemetry=second) as identity,
    ):
        await provider.get_token(SCOPE)
        await identity.get_token(VAULT_SCOPE)
        points = otel.points("aioentra.token.time_to_expiry")
    observed = {point.attributes["aioentra.scope"] for point in points}
    assert observed == {SCOPE, VAULT_SCOPE}


def test_the_metric_callbacks_survive_sources_built_and_closed_meanwhile(
    emulator: Emulator,
    app: App,
    otel: Otel,  # noqa: F811
) -> None:
    """``_observe_hits`` and ``_observe_expiry`` run on the SDK's reader thread and iterate the
    ``WeakSet`` of sources (``list(self._sources)``, a Python-level generator) while the loop
    thread adds to it (``attach``: a provider built) and removes from it (``detach``: closed):
    "Set changed size during iteration" fails the callback, the SDK logs "Callback failed"
    and that collection loses every provider's cache hits or expiry. Bounded by a count of
    attach/detach pairs (the hooks a provider calls); it stops at the first failure."""
    sources = [
        TokenProvider(
            ClientSecret(app.secret or ""),
            tenant_id=emulator.tenant_id,
            client_id=app.client_id,
            authority=emulator.base_url,
            telemetry=otel.telemetry,
        )
        for _ in range(200)
    ]
    churn = sources[100:]
    for source in churn:
        otel.telemetry.detach(source)
    failed = _Collect()
    failed.setLevel(logging.ERROR)
    sdk_log = logging.getLogger("opentelemetry")
    sdk_log.addHandler(failed)
    done = threading.Event()

    def collect() -> None:
        while not done.is_set() and not failed.records:
            otel.reader.get_metrics_data()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # many thread switches: the race shows within ~10^5 pairs
    reader = threading.Thread(target=collect)
    reader.start()
    try:
        for i in range(200_000):
            if failed.records:
                break
            source = churn[i % len(churn)]
            otel.telemetry.attach(source)
            otel.telemetry.detach(source)
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(switch)
        sdk_log.removeHandler(failed)
    errors = [r for r in failed.records if r.levelno >= logging.ERROR]
    assert not errors, f"{errors[0].getMessage()} {errors[0].exc_info}"


# -- the instrumented warm path -----------------------------------------------------------------


async def test_telemetry_keeps_a_subclass_s_own_get_token(emulator: Emulator, app: App) -> None:
    """``TokenSourceBase.__new__`` swaps in ``_instrumented(cls)``, a subclass of ``cls`` whose
    ``get_token`` calls ``_get_token`` directly: given ``telemetry=`` (a production option now,
    not only the test ``clock=``), a subclass's own ``get_token`` is silently never called."""
    AuditedProvider.calls = 0
    provider = AuditedProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
        ca_file=emulator.ca_file,
        telemetry=Telemetry(),
    )
    async with provider:
        await provider.get_token(SCOPE)
        await provider.get_token(SCOPE)
    assert AuditedProvider.calls == 2


# -- the copied context of worker threads -------------------------------------------------------


class _SecretFromService:
    """A credential that fetches its secret from an internal service over a session that
    authenticates to that service with a token source of its own (its own middleware)."""

    def __init__(
        self, secret: str, helper: TokenProvider, service: RecordingServer, tls: Tls
    ) -> None:
        self._secret = secret
        self._helper = helper
        self._service = service
        self._tls = tls

    async def get_proof(self, context: AssertionContext) -> Proof:
        connector = aiohttp.TCPConnector(ssl=self._tls.client_context())
        async with (
            authenticated_session(
                self._helper, {self._service.origin: SCOPE}, connector=connector
            ) as session,
            session.get(self._service.url("/secret")) as response,
        ):
            await response.read()
        return Proof.secret(self._secret)


async def test_a_credential_s_own_authenticated_requests_carry_a_token_whoever_asked_first(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """``run_in_worker`` (``_engine.py``) now runs msal, and every credential coroutine it hands
    to the loop, in a copy of the fetch's context, i.e. of the first caller's. When that caller
    is the aiohttp middleware, its recursion guard ``_acquiring`` is set there, so the
    credential's own middleware session (to another service, with another token source)
    sends its request without a token. Before the change the credential ran in a clean
    context; now whether it authenticates depends on which caller started the shared fetch."""
    tls = Tls()
    service = RecordingServer(tls.server_context())
    await service.start()
    try:
        async with make_provider() as helper:
            credential = _SecretFromService(app.secret or "", helper, service, tls)
            async with make_provider(credential) as provider:
                connector = aiohttp.TCPConnector(ssl=tls.client_context())
                async with (
                    authenticated_session(
                        provider, {service.origin: SCOPE}, connector=connector
                    ) as session,
                    session.get(service.url("/resource")) as response,
                ):
                    assert response.status == 200
    finally:
        await service.stop()
    seen = {hit.path: hit.authorization for hit in service.hits}
    assert seen["/resource"] is not None
    assert seen["/secret"] is not None, "the credential's request went out without its token"


async def test_a_credential_calling_through_its_own_source_is_not_waited_for_forever(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    """The other half of the guard: a credential whose request goes through a session
    authenticated by the very source it serves must not wait for that source's own fetch,
    also when the first caller asked the source directly (no middleware guard was up). The
    request goes out without a token, once."""
    tls = Tls()
    service = RecordingServer(tls.server_context())
    await service.start()
    try:
        async with make_provider() as placeholder:
            credential = _SecretFromService(app.secret or "", placeholder, service, tls)
            async with make_provider(credential) as provider:
                credential._helper = provider  # the credential calls through its own source
                token = await asyncio.wait_for(provider.get_token(SCOPE), timeout=30)
    finally:
        await service.stop()
    assert token.token
    assert [(hit.path, hit.authorization) for hit in service.hits] == [("/secret", None)]


# -- structured fields --------------------------------------------------------------------------


async def test_a_retried_attempt_s_record_names_its_key(
    emulator: Emulator, app: App, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """``docs/observability.md`` lists ``scope``, ``tenant_id`` and ``client_id`` among the
    fields of these records, but ``token_attempt_failed`` (``_engine.with_retries``) carries
    only the attempt, the code, the correlation id and the wait: a structured-log pipeline
    cannot tell which token's requests are being retried (the key is only in the text)."""
    caplog.set_level(logging.INFO, logger="aioentra")
    emulator.faults.add(Fault("token", "status", status=503, count=1))
    async with make_provider() as provider:
        await provider.get_token(SCOPE)
    (record,) = _records(caplog, "token_attempt_failed")
    fields = _fields(record)
    assert (fields.get("scope"), fields.get("client_id"), fields.get("tenant_id")) == (
        SCOPE,
        app.client_id,
        emulator.tenant_id,
    )


# -- Key Vault (credentials/_keyvault.py) ---------------------------


async def test_a_failed_vault_reload_says_when_the_vault_is_really_read_again(
    emulator: Emulator,
    app: App,
    vault_identity: ManagedIdentity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reload after a rejection that fails logs "version X keeps serving; a call after 2s
    reads the vault again" (``_VaultLog.failed``). But that reload spent the cell's renewal
    budget (30 s): a ``reload()`` after the back-off returns the current version without a
    read, and no proof starts one before the scheduled reload (``reload_every``): nothing
    reads the vault after the 2 s the line names."""
    caplog.set_level(logging.INFO, logger="aioentra")
    clock = ManualClock()
    name = unique("review-secret")
    emulator.vault.set_secret(name, app.secret or "")
    credential = KeyVaultSecret(emulator.vault.url, name, ca_file=emulator.ca_file, clock=clock)
    reason = ReloadReason((7000215,))
    try:
        await credential.start()
        fault = emulator.faults.add(Fault("keyvault", "status", status=503, count=None))
        with pytest.raises(KeyVaultError):
            await credential.reload(reason)
        emulator.faults.remove(fault)
        (record,) = _records(caplog, "keyvault_read_failed")
        message = record.getMessage()
        clock.advance(_promised_wait(message) + 0.1)
        reads = vault_reads(emulator, f"/secrets/{name}")
        await credential.reload(reason)
    finally:
        await credential.close()
    assert vault_reads(emulator, f"/secrets/{name}") == reads + 1, message


def test_a_vault_read_failure_is_not_described_as_a_token_s() -> None:
    """``_VaultLog.failed`` puts ``reason.description`` in its line, phrases written for tokens
    (``_flight._DESCRIPTIONS``): a failed first read says "(no cached token)" and a reload
    after the token endpoint refused the secret says "(the resource rejected the cached
    token)", neither of which is what happened to a vault read."""
    from aioentra.credentials._keyvault import _VaultLog

    credential = KeyVaultSecret("https://contoso.vault.azure.net", "daemon-secret")
    handler = _Collect()
    log = logging.getLogger("aioentra.keyvault")
    log.addHandler(handler)
    try:
        for reason in (FetchReason.COLD, FetchReason.RENEWAL):
            error = KeyVaultError("reading secret 'daemon-secret' from Key Vault failed")
            _VaultLog(credential).failed("material", reason, error, 2.0, False)
    finally:
        log.removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert len(messages) == 2
    assert not [m for m in messages if "cached token" in m], messages


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
