"""The defects an adversarial review found, each against the emulator scripted to misbehave.

Numbers refer to the review's list. Every test talks HTTPS to the emulator with the real msal in
the path; time is the provider's manual clock wherever the code under test reads a clock, and
the few bounds on real time (total_timeout) are upper bounds with a scheduling margin.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.core.credentials import TokenRequestOptions

from aioentra import (
    AccessToken,
    AioEntraError,
    AssertionContext,
    Certificate,
    ClientAssertion,
    ClientSecret,
    ConfigurationError,
    CredentialRejectedError,
    CredentialUnavailableError,
    IdentityProviderUnavailableError,
    InvalidScopeError,
    KeyWithThumbprint,
    ManagedIdentityAssertion,
    Proof,
    ProviderClosedError,
    RefreshPolicy,
    ReloadReason,
    RetryPolicy,
    Settings,
    ThrottledError,
    TokenProvider,
)
from aioentra.aiohttp import BearerTokenMiddleware
from aioentra.emulator import Api, App, Emulator, Fault
from aioentra.testing import ManualClock

from .certs import cert_pem, key_pem, make_certificate
from .conftest import SCOPE, token_requests

pytestmark = pytest.mark.anyio

MakeProvider = Callable[..., TokenProvider]
ONCE = RetryPolicy(max_attempts=1)


def _respond(body: object, **extra: object) -> Fault:
    text = body if isinstance(body, str) else json.dumps(body)
    return Fault("token", "respond", body=text, **extra)  # type: ignore[arg-type]


# -- 1. total_timeout bounds the whole call -------------------------------------------------------


async def test_total_timeout_bounds_a_slow_token_answer(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault("token", "latency", delay=5.0, client_id=app.client_id))
    loop = asyncio.get_running_loop()
    async with make_provider(retry=RetryPolicy(total_timeout=1.0)) as provider:
        started = loop.time()
        with pytest.raises(IdentityProviderUnavailableError, match="total_timeout"):
            await provider.get_token(SCOPE)
        assert loop.time() - started < 1.0 + 0.25


async def test_total_timeout_covers_discovery_and_the_token_answer_together(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault("discovery", "latency", delay=0.7, count=1))
    emulator.faults.add(Fault("token", "latency", delay=0.7, client_id=app.client_id))
    loop = asyncio.get_running_loop()
    async with make_provider(retry=RetryPolicy(total_timeout=1.0)) as provider:
        started = loop.time()
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)
        assert loop.time() - started < 1.0 + 0.25


async def test_total_timeout_counts_the_queue_for_a_worker_thread(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    scopes = []
    for n in range(20):
        uri = f"api://aioentra-queue-{n}"
        if emulator.state.find_api(emulator.tenant_id, uri) is None:
            emulator.add_api(uri)
        scopes.append(f"{uri}/.default")
    emulator.faults.add(Fault("token", "latency", delay=0.3, count=None, client_id=app.client_id))
    loop = asyncio.get_running_loop()
    ended: list[float] = []

    async def call(scope: str) -> AccessToken | BaseException:
        try:
            return await provider.get_token(scope)
        except AioEntraError as error:
            return error
        finally:
            ended.append(loop.time())

    async with make_provider(max_workers=1, retry=RetryPolicy(total_timeout=2.0)) as provider:
        started = loop.time()
        results = await asyncio.gather(*(call(scope) for scope in scopes))
    assert max(ended) - started < 2.0 + 0.25  # every call, the queued ones included
    assert any(isinstance(r, AccessToken) for r in results)
    timed_out = [r for r in results if isinstance(r, IdentityProviderUnavailableError)]
    assert timed_out and all("total_timeout" in str(r) for r in timed_out)


# -- 2. and 3. malformed 200 answers are never cached ---------------------------------------------

MALFORMED = {
    "access_token null": ({"access_token": None, "expires_in": 3599}, "access_token"),
    "access_token number": ({"access_token": 12345, "expires_in": 3599}, "access_token"),
    "access_token empty": ({"access_token": "", "expires_in": 3599}, "access_token"),
    "access_token CR LF": (
        {"access_token": "a.b\r\nX-Evil: 1", "expires_in": 3599},
        "access_token",
    ),
    "access_token space": ({"access_token": "a b", "expires_in": 3599}, "access_token"),
    "no access_token": ({"token_type": "Bearer", "expires_in": 3599}, "access_token"),
    "pop token": ({"access_token": "a.b.c", "token_type": "pop", "expires_in": 3599}, "token_type"),
    "expires_in Infinity": ('{"access_token": "a.b.c", "expires_in": Infinity}', "expires_in"),
    "expires_in NaN": ('{"access_token": "a.b.c", "expires_in": NaN}', "expires_in"),
    "expires_in text": ({"access_token": "a.b.c", "expires_in": "abc"}, "expires_in"),
    "expires_in negative": ({"access_token": "a.b.c", "expires_in": -5}, "expires_in"),
    "expires_in true": ({"access_token": "a.b.c", "expires_in": True}, "expires_in"),
    "expires_in missing": ({"access_token": "a.b.c"}, "expires_in"),
    "refresh_in text": (
        {"access_token": "a.b.c", "expires_in": 3599, "refresh_in": "abc"},
        "refresh_in",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_success_answer_is_a_typed_retryable_error_and_never_cached(
    emulator: Emulator, app: App, make_provider: MakeProvider, case: str
) -> None:
    body, field = MALFORMED[case]
    emulator.faults.add(_respond(body, client_id=app.client_id))
    clock = ManualClock()
    async with make_provider(retry=ONCE, clock=clock) as provider:
        with pytest.raises(IdentityProviderUnavailableError) as info:
            await provider.get_token(SCOPE)
        error = info.value
        assert error.retryable and field in error.message
        assert "12345" not in str(error) and "Evil" not in str(error)
        # The back-off holds new callers without a request: 200 calls, 0 requests.
        for _ in range(200):
            with pytest.raises(IdentityProviderUnavailableError):
                await provider.get_token(SCOPE)
        assert token_requests(emulator, app) == 1
        clock.advance(RefreshPolicy().max_failure_backoff)
        token = await provider.get_token(SCOPE)  # nothing was cached: a real token now
        assert token.token.count(".") == 2 and token.authorization.startswith("Bearer ey")
    assert token_requests(emulator, app) == 2


async def test_an_absurd_lifetime_is_clamped_to_a_day(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(
        _respond({"access_token": "h.p.s", "expires_in": 1e12}, client_id=app.client_id)
    )
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        token = await provider.get_token(SCOPE)
        assert token.expires_on - clock.time() == 86400
        azure = await provider.as_azure_credential().get_token(SCOPE)
        assert azure.expires_on == int(token.expires_on)
        clock.advance(86400)
        assert (await provider.get_token(SCOPE)).token != "h.p.s"
    assert token_requests(emulator, app) == 2


async def test_a_bearer_type_in_any_case_is_sent_as_bearer(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    body = {"access_token": "h.p.s", "token_type": "bearer", "expires_in": "3599"}
    emulator.faults.add(_respond(body, client_id=app.client_id))
    async with make_provider() as provider:
        token = await provider.get_token(SCOPE)
    assert token.authorization == "Bearer h.p.s"


# -- 6. a wall clock that steps back does not keep an expired token --------------------------------


async def test_a_wall_clock_step_back_does_not_serve_an_expired_token(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        first = await provider.get_token(SCOPE)
        clock.step_wall(-7200)
        clock.advance(emulator.token_lifetime)  # monotonic time: the token has expired
        second = await provider.get_token(SCOPE)
    assert second.token != first.token
    assert token_requests(emulator, app) == 2


# -- 7. one long Retry-After does not lock the key beyond the cap ----------------------------------


async def test_a_day_long_retry_after_is_capped_and_the_key_recovers(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    emulator.faults.add(Fault("token", "throttle", retry_after=86400, client_id=app.client_id))
    clock = ManualClock()
    policy = RefreshPolicy(max_failure_backoff=60)
    async with make_provider(clock=clock, refresh=policy) as provider:
        with pytest.raises(ThrottledError) as info:
            await provider.get_token(SCOPE)
        assert info.value.retry_after == 86400
        clock.advance(60)
        token = await provider.get_token(SCOPE, force_refresh=True)
        assert await provider.renew_token(SCOPE, rejected=token)
    assert token_requests(emulator, app) == 3


# -- 8. no secret reachable from what load-time errors carry ---------------------------------------


def _report(error: BaseException) -> str:
    """What an error reporter capturing locals records, from the SDK's frames down (this
    test's own frame holds the secret on purpose)."""
    inner = error.__traceback__.tb_next if error.__traceback__ else None
    report = traceback.TracebackException(type(error), error, inner, capture_locals=True)
    return "".join(report.format()) + repr(error.__cause__) + repr(error.__context__)


def test_a_malformed_parameters_json_keeps_its_secret_out_of_the_error(tmp_path: Path) -> None:
    secret = "Sup3r~Secret-Value-123"
    path = tmp_path / "parameters.json"
    path.write_text(
        f'{{"authority": "https://login.example/t", "client_id": "c",\n "secret": "{secret}",, }}'
    )
    for load in (Settings.from_file, TokenProvider.from_file):
        with pytest.raises(ConfigurationError, match="line 2") as info:
            load(path)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert secret not in _report(info.value)


def test_an_expired_certificate_keeps_its_key_out_of_frame_locals() -> None:
    key, cert = make_certificate(days_valid=(-30, -1))
    pem = key_pem(key) + cert_pem(cert)
    marker = pem.decode().splitlines()[2]  # a line of the private key
    for data, kwargs in [(pem, {}), (cert_pem(cert), {"key": key_pem(key)})]:
        with pytest.raises(ConfigurationError, match="expired") as info:
            Certificate.from_pem(data, **kwargs)
        report = _report(info.value)
        assert marker not in report and "PRIVATE KEY" not in report


# -- 9. repr works on half-built objects ----------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        TokenProvider,
        Certificate,
        KeyWithThumbprint,
        ClientAssertion,
        ManagedIdentityAssertion,
        BearerTokenMiddleware,
    ],
)
def test_repr_of_a_half_built_object(cls: type) -> None:
    assert cls.__name__ in repr(cls.__new__(cls))


def test_errors_raised_from_constructors_can_be_reported_with_locals() -> None:
    for build in (
        lambda: TokenProvider(ClientSecret("s"), tenant_id="t", client_id=""),
        lambda: KeyWithThumbprint(b"not a key", "00"),
        lambda: BearerTokenMiddleware(None, {}),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError) as info:
            build()
        assert _report(info.value)


# -- 10. configuration input only ever raises typed errors ----------------------------------------


@pytest.mark.parametrize(
    "authority", ["https://host:99999", "https://[::1", "https://ho st", "https://h\x00st"]
)
def test_a_malformed_authority_is_a_configuration_error(authority: str) -> None:
    with pytest.raises(ConfigurationError, match="authority"):
        TokenProvider(ClientSecret("s"), tenant_id="t", client_id="c", authority=authority)


def test_odd_file_inputs_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="directory"):
        TokenProvider.from_file(tmp_path)
    settings = tmp_path / "appsettings.json"
    settings.write_text(
        json.dumps(
            {
                "AzureAd": {
                    "TenantId": "t",
                    "ClientId": "c",
                    "ClientCredentials": [
                        {
                            "SourceType": "Path",
                            "CertificateDiskPath": "app.pfx",
                            "CertificatePassword": 1234,
                        }
                    ],
                }
            }
        )
    )
    with pytest.raises(ConfigurationError, match="must be a string"):
        Settings.from_file(settings)


async def test_a_scope_that_is_not_a_string_is_an_invalid_scope_error(
    make_provider: MakeProvider,
) -> None:
    async with make_provider() as provider:
        for scope in ([], ["a", "b"], None, 5):
            with pytest.raises(InvalidScopeError):
                await provider.get_token(scope)  # type: ignore[arg-type]


# -- 11. a provider is bound to its loop (a later asyncio.run: tests/core/test_event_loops.py) --


async def test_a_loop_in_another_thread_gets_cached_tokens_and_nothing_else(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    token = await provider.get_token(SCOPE)  # warm now
    outcomes: list[object] = []

    def elsewhere() -> None:
        async def use() -> None:
            outcomes.append(await provider.get_token(SCOPE))  # a read of an immutable value
            for call in (
                provider.get_token(SCOPE, force_refresh=True),
                provider.renew_token(SCOPE, rejected=token),
                provider.get_token(SCOPE, claims='{"access_token": {}}'),
            ):
                try:
                    await call
                except ProviderClosedError as error:
                    outcomes.append(error)

        asyncio.run(use())

    await asyncio.to_thread(elsewhere)
    assert outcomes[0] == token
    assert len(outcomes) == 4 and all(
        isinstance(o, ProviderClosedError) and "another event loop" in str(o) for o in outcomes[1:]
    )
    assert token_requests(emulator, app) == 1
    await provider.close()


# -- 12. a blocking sync credential does not hold up close() or exit ------------------------------


async def test_close_does_not_wait_for_a_sync_credential_that_blocks(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck() -> str:
        entered.set()
        release.wait(60)
        return "never.used.here"

    provider = make_provider(ClientAssertion(stuck))
    waiter = asyncio.ensure_future(provider.get_token(SCOPE))
    await asyncio.to_thread(entered.wait, 10)
    await provider.close()
    # close() returned while the credential still blocks: it did not wait for it ...
    assert not release.is_set()
    stuck_threads = [t for t in threading.enumerate() if t.name.startswith("aioentra-msal")]
    assert len(stuck_threads) == 1 and stuck_threads[0].daemon  # ... nor will process exit
    with pytest.raises(ProviderClosedError):
        await waiter
    release.set()
    await asyncio.to_thread(stuck_threads[0].join, 10)
    assert not stuck_threads[0].is_alive()  # it ended when the credential returned


# -- 14. TLS and connection failures keep their reason --------------------------------------------


async def test_an_untrusted_certificate_says_why_and_what_to_do(
    emulator: Emulator, app: App
) -> None:
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=emulator.base_url,
    )
    async with provider:
        with pytest.raises(IdentityProviderUnavailableError) as info:
            await provider.get_token(SCOPE)
    message = str(info.value)
    assert "TLS verification failed" in message
    assert "local issuer" in message or "self-signed" in message or "self signed" in message
    assert "ca_file" in (info.value.hint or "") and not info.value.retryable


async def test_a_refused_connection_names_the_socket_error(emulator: Emulator, app: App) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    provider = TokenProvider(
        ClientSecret(app.secret or ""),
        tenant_id=emulator.tenant_id,
        client_id=app.client_id,
        authority=f"https://127.0.0.1:{port}",
        ca_file=emulator.ca_file,
        retry=ONCE,
    )
    async with provider:
        with pytest.raises(IdentityProviderUnavailableError) as info:
            await provider.get_token(SCOPE)
    assert "refused" in str(info.value).lower() or "connect call failed" in str(info.value).lower()
    assert "port" in (info.value.hint or "")


# -- 15. the Azure SDK view is usable as azure-core's protocols -----------------------------------


async def test_the_azure_view_enters_and_exits_like_an_azure_credential(
    make_provider: MakeProvider,
) -> None:
    async with make_provider() as provider:
        credential = provider.as_azure_credential()
        async with credential:
            options: TokenRequestOptions = {}
            info = await credential.get_token_info(SCOPE, options=options)
            assert info.token and info.expires_on > info.refresh_on
        await credential.__aexit__()  # defaults, as azure-core's protocol declares


async def test_claims_challenges_are_answered_once_per_interval_per_scope(
    emulator: Emulator, api: Api, app: App, make_provider: MakeProvider
) -> None:
    clock = ManualClock()
    async with make_provider(clock=clock) as provider:
        plain = await provider.get_token(SCOPE)
        answers = [
            await provider.get_token(SCOPE, claims=json.dumps({"access_token": {"n": n}}))
            for n in range(50)
        ]
        assert answers[0].token != plain.token
        assert {a.token for a in answers} == {answers[0].token}
        assert token_requests(emulator, app) == 2
        clock.advance(RefreshPolicy().renewal_interval)
        later = await provider.get_token(SCOPE, claims='{"access_token": {"n": "later"}}')
        assert later.token != answers[0].token
    assert token_requests(emulator, app) == 3


# -- a second adversarial pass, on the rework itself ----------------------------------------------


async def test_a_slow_reload_is_bounded_by_total_timeout(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    class SlowToReload:
        def get_proof(self, context: AssertionContext) -> Proof:
            return Proof.secret("a-rotated-away-value")

        async def reload(self, reason: ReloadReason) -> bool:
            await asyncio.sleep(30)
            return True

    loop = asyncio.get_running_loop()
    async with make_provider(SlowToReload(), retry=RetryPolicy(total_timeout=1.0)) as provider:
        started = loop.time()
        with pytest.raises(IdentityProviderUnavailableError, match="total_timeout") as info:
            await provider.get_token(SCOPE)
        assert loop.time() - started < 1.0 + 0.25
        assert "reloading the credential" in (info.value.hint or "")


def test_unexpected_input_in_files_is_still_a_typed_error_without_the_secret(
    tmp_path: Path,
) -> None:
    passphrase = "pass-Phrase-9876"
    path = tmp_path / "parameters.json"
    path.write_text(
        json.dumps(
            {
                "authority": "https://login.example/t",
                "client_id": "c",
                "thumbprint": "00" * 20,
                "private_key_file": "k\u0000.pem",
                "passphrase": passphrase,
            }
        )
    )
    for load in (Settings.from_file, TokenProvider.from_file):
        with pytest.raises(ConfigurationError) as info:
            load(path)
        assert passphrase not in _report(info.value)
    with pytest.raises(ConfigurationError):
        TokenProvider.from_file("parameters\u0000.json")


async def test_tls_verification_cannot_be_switched_off(emulator: Emulator, app: App) -> None:
    import ssl

    import aiohttp

    def build(**options: object) -> TokenProvider:
        return TokenProvider(
            ClientSecret(app.secret or ""),
            tenant_id=emulator.tenant_id,
            client_id=app.client_id,
            authority=emulator.base_url,
            **options,  # type: ignore[arg-type]
        )

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(ConfigurationError, match="does not verify"):
        build(ssl_context=unverified)
    for ssl_setting in (False, unverified):
        connector = aiohttp.TCPConnector(ssl=ssl_setting)
        async with aiohttp.ClientSession(connector=connector) as session:
            with pytest.raises(ConfigurationError, match="does not verify"):
                build(session=session)
    assert token_requests(emulator, app) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: RetryPolicy(max_attempts=1100),
        lambda: RefreshPolicy(refresh_fraction="0.5"),  # type: ignore[arg-type]
        lambda: RefreshPolicy(refresh_fraction=None),  # type: ignore[arg-type]
        lambda: Certificate.from_file(12345),  # type: ignore[arg-type]
        lambda: Certificate(make_certificate()[0], "not a cert"),  # type: ignore[arg-type]
        lambda: ClientAssertion.from_file(None),  # type: ignore[arg-type]
        lambda: TokenProvider(ClientSecret("s"), tenant_id="t", client_id="c", clock=object()),  # type: ignore[arg-type]
        lambda: TokenProvider(ClientSecret("s"), tenant_id="t", client_id="c", session="x"),  # type: ignore[arg-type]
        lambda: TokenProvider(
            ClientSecret("s"),
            tenant_id="t",
            client_id="c",
            client_capabilities=5,  # type: ignore[arg-type]
        ),
        lambda: TokenProvider(
            ClientSecret("s"),
            tenant_id="t",
            client_id="c",
            additionally_allowed_tenants=5,  # type: ignore[arg-type]
        ),
        lambda: TokenProvider(ClientSecret("s"), tenant_id=5, client_id="c"),  # type: ignore[arg-type]
        lambda: BearerTokenMiddleware(None, [("https://x", "api://x/.default")]),  # type: ignore[arg-type]
        lambda: KeyWithThumbprint(5, "00" * 20),  # type: ignore[arg-type]
    ],
)
def test_wrongly_typed_arguments_are_configuration_errors(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_the_retry_backoff_never_overflows() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=8.0)
    assert 4.0 <= policy.backoff(5000) <= 8.0


async def test_a_managed_identity_assertion_keeps_its_token_out_of_errors() -> None:
    from azure.core.credentials import AccessToken as AzureToken

    class Broken:
        def __init__(self, expires_on: float | int) -> None:
            self.expires_on = expires_on

        async def get_token(self, *scopes: str, **kwargs: object) -> AzureToken:
            return AzureToken("mi-token-value-123", self.expires_on)  # type: ignore[arg-type]

        async def close(self) -> None:
            return None

    context = AssertionContext("c", "https://login.example/t/oauth2/v2.0/token")
    for expires_on in (1.0, 10**400):  # expired; beyond any float
        assertion = ManagedIdentityAssertion(credential=Broken(expires_on))  # type: ignore[arg-type]
        with pytest.raises(CredentialUnavailableError) as info:
            await assertion.get_proof(context)
        assert "mi-token-value-123" not in _report(info.value)
        await assertion.close()


HOSTILE = {
    "a 2 MB answer": (200, '{"access_token": "' + "a" * (2 << 20) + '", "expires_in": 3599}'),
    "a 40 KB token": (200, json.dumps({"access_token": "a" * 40_000, "expires_in": 3599})),
    "a lifetime of 1e-300 s": (200, json.dumps({"access_token": "h.p.s", "expires_in": 1e-300})),
    "a token on a 400": (400, json.dumps({"access_token": "h.p.s", "expires_in": 3599})),
    "a token on a 201": (201, json.dumps({"access_token": "h.p.s", "expires_in": 3599})),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_answers_are_typed_errors_and_never_cached(
    emulator: Emulator, app: App, make_provider: MakeProvider, case: str
) -> None:
    status, body = HOSTILE[case]
    emulator.faults.add(_respond(body, status=status, client_id=app.client_id))
    clock = ManualClock()
    async with make_provider(retry=ONCE, clock=clock) as provider:
        with pytest.raises(IdentityProviderUnavailableError):
            await provider.get_token(SCOPE)
        clock.advance(RefreshPolicy().max_failure_backoff)
        assert (await provider.get_token(SCOPE)).token != "h.p.s"


async def test_an_echoed_secret_is_masked_in_the_error(
    emulator: Emulator, app: App, make_provider: MakeProvider
) -> None:
    secret = app.secret or ""
    body = {
        "error": "invalid_client",
        "error_description": f"AADSTS7000215: Invalid client secret provided: {secret}",
        "error_codes": [7000215],
        "correlation_id": secret,
    }
    emulator.faults.add(_respond(body, status=401, client_id=app.client_id))
    async with make_provider() as provider:
        with pytest.raises(CredentialRejectedError) as info:
            await provider.get_token(SCOPE)
    assert secret not in _report(info.value) and "***" in info.value.message


def test_a_misspelt_keyword_still_reads_like_python() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_wokers'"):
        TokenProvider(ClientSecret("s"), tenant_id="t", client_id="c", max_wokers=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'pasword'"):
        Certificate.from_file("app.pfx", pasword="x")  # type: ignore[call-arg]
