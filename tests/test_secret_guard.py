"""The secret guard: what it counts as a secret, what it captures, and how it fails a test.

The checker is tested on records built by hand (``logging.LogRecord``, never handed to a
logger), so the suite's own guard, open around each of these tests, does not see the secrets
they carry. Where a record must really be logged, its secret is one only the inner guard knows
(``add()``) and that has no shape, or it is logged in a pytester run.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from hypothesis import given, strategies as st

from aioentra._secret_scan import KnownValues, fingerprint, render_record, report, scan
from aioentra.credentials import ClientSecret
from aioentra.emulator import CertificateMaterial, Emulator
from aioentra.emulator._ledger import SecretLedger
from aioentra.testing import SecretGuard

pytestmark = pytest.mark.anyio

JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCIsImlzcyI6Imh0dHBzOi8vbG9jYWxob3N0In0"
    ".c2lnbmF0dXJlLWJ5dGVzLWxvbmctZW5vdWdoLXRvLWxvb2stcmVhbA"
)
GENERATED = CertificateMaterial.generate("guard-test")
assert GENERATED.private_key_pem is not None
PEM_KEY = GENERATED.private_key_pem.decode()
SECRET = "Qm9-random-client-secret-4f1c2a9e7b"  # shapeless, like a generated client secret


def record(
    msg: object,
    *args: object,
    name: str = "aioentra.test",
    level: int = logging.DEBUG,
    exc_info: Any = None,
    stack_info: str | None = None,
    **extra: object,
) -> logging.LogRecord:
    """A record as ``Logger._log`` builds it, handed to no logger."""
    made = logging.LogRecord(name, level, __file__, 1, msg, args or None, exc_info)
    made.stack_info = stack_info
    made.__dict__.update(extra)
    return made


def findings_of(*records: logging.LogRecord, known: tuple[str, ...] = ()) -> list[str]:
    """``"logger LEVEL where: kind"`` of each finding (the fingerprint left off)."""
    found = scan([render_record(r) for r in records], KnownValues(known))
    return [f"{f.logger} {f.level} {f.where}: {f.kind}" for f in found]


# -- by shape ------------------------------------------------------------------------------


def test_a_jwt_in_the_message_is_found() -> None:
    assert findings_of(record("got %s", JWT)) == ["aioentra.test DEBUG message: a JWT"]


def test_a_padded_jwt_is_found() -> None:
    header, body, signature = JWT.split(".")
    padded = f"{header}=.{body}==.{signature}="
    assert findings_of(record(padded)) == ["aioentra.test DEBUG message: a JWT"]


def test_a_pem_private_key_is_found_and_so_is_any_pem_block() -> None:
    assert findings_of(record("key: %s", PEM_KEY)) == ["aioentra.test DEBUG message: a PEM block"]
    certificate = GENERATED.certificate_pem.decode()
    assert findings_of(record(certificate)) == ["aioentra.test DEBUG message: a PEM block"]


@pytest.mark.parametrize(
    "text",
    [
        "POST body: grant_type=client_credentials&client_secret=abc123def456&scope=x",
        "data={'client_secret': 'abc123def456'}",
        '{"client_assertion": "not-a-jwt-but-secret"}',
        "AZURE_CLIENT_SECRET=abc123def456",
    ],
)
def test_a_client_secret_or_assertion_field_with_a_value_is_found(text: str) -> None:
    assert findings_of(record(text)) == [
        "aioentra.test DEBUG message: a client_secret/client_assertion field"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "headers={'Authorization': 'Bearer abcdefghijklmnopqrstuvwxyz0123'}",
        "authorization: bearer abcdefghijklmnopqrstuvwxyz0123",
        "Authorization: Basic ZGFlbW9uOnMzY3IzdC12YWx1ZS1oZXJl",
    ],
)
def test_an_authorization_header_value_is_found(text: str) -> None:
    assert findings_of(record(text)) == [
        "aioentra.test DEBUG message: an authorization header value"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "{'X-IDENTITY-HEADER': '8f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e'}",
        "IDENTITY_HEADER=8f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e",
    ],
)
def test_the_managed_identity_header_value_is_found(text: str) -> None:
    assert findings_of(record(text)) == [
        "aioentra.test DEBUG message: a managed-identity header value"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "token for https://vault.azure.net/.default, expires in 3599 s",
        "client_secret=*** client_assertion=None",
        '"client_secret": "********"',
        "{'client_secret': 'REDACTED', 'Authorization': 'REDACTED'}",
        "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        'WWW-Authenticate: Bearer authorization_uri="https://login.example/t", resource="x"',
        "the vault answered with a Bearer challenge for its tenant",
        "The X-IDENTITY-HEADER header is missing.",
        "set IDENTITY_ENDPOINT and IDENTITY_HEADER",
        "a short secret s3cr3t is not looked for",
    ],
)
def test_a_clean_record_passes(text: str) -> None:
    assert findings_of(record(text), known=("s3cr3t",)) == []


# -- by value ------------------------------------------------------------------------------


def test_a_known_secret_value_is_found_anywhere_in_the_text() -> None:
    assert findings_of(record("connecting with %s", SECRET), known=(SECRET,)) == [
        "aioentra.test DEBUG message: a known secret"
    ]
    assert findings_of(record(f"x{SECRET}y"), known=(SECRET,)) == [
        "aioentra.test DEBUG message: a known secret"
    ]


def test_a_known_secret_in_args_is_found() -> None:
    class Masked:
        """str() masks the secret, repr() does not: a structured handler prints the repr."""

        def __str__(self) -> str:
            return "Masked(***)"

        def __repr__(self) -> str:
            return f"Masked({SECRET!r})"

    assert findings_of(record("credential %s", Masked()), known=(SECRET,)) == [
        "aioentra.test DEBUG argument: a known secret"
    ]
    assert findings_of(
        record("%(who)s with %(secret)s", {"who": "me", "secret": SECRET}), known=(SECRET,)
    ) == ["aioentra.test DEBUG message: a known secret"]


def test_a_secret_in_the_exception_traceback_is_found() -> None:
    try:
        raise ValueError(f"the token endpoint refused {SECRET}")
    except ValueError:
        exc_info = sys.exc_info()
    assert findings_of(record("request failed", exc_info=exc_info), known=(SECRET,)) == [
        "aioentra.test DEBUG exception: a known secret"
    ]


def test_a_secret_in_a_chained_exception_is_found() -> None:
    try:
        try:
            raise KeyError(JWT)
        except KeyError as inner:
            raise RuntimeError("lookup failed") from inner
    except RuntimeError:
        exc_info = sys.exc_info()
    assert findings_of(record("oops", exc_info=exc_info)) == [
        "aioentra.test DEBUG exception: a JWT"
    ]


def test_a_secret_in_stack_info_or_an_extra_attribute_is_found() -> None:
    stacked = record("where", stack_info=f"Stack (most recent call last):\n  token={SECRET}")
    extra = record("with context", level=logging.WARNING, request={"secret": SECRET})
    assert findings_of(stacked, extra, known=(SECRET,)) == [
        "aioentra.test DEBUG stack: a known secret",
        "aioentra.test WARNING extra request: a known secret",
    ]


def test_a_broken_format_string_still_shows_its_arguments() -> None:
    assert findings_of(record("%d items", SECRET), known=(SECRET,)) == [
        "aioentra.test DEBUG message: a known secret"
    ]


def test_a_private_key_is_found_by_its_lines_however_printed() -> None:
    body = "".join(PEM_KEY.splitlines()[1:-1])  # no armour, lines joined
    assert findings_of(record("key material %s", body), known=(PEM_KEY,)) == [
        "aioentra.test DEBUG message: a known secret"
    ]
    assert findings_of(record("%r", PEM_KEY.encode())) == [
        "aioentra.test DEBUG message: a PEM block"
    ]


@given(
    value=st.text(alphabet="abcdefghij0123456789-_", min_size=8, max_size=60),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_every_occurrence_of_a_known_value_is_found(value: str, before: str, after: str) -> None:
    known = KnownValues([value, "another-value-entirely-0123456789"])
    text = before + value + after + value
    starts = [start for start, found in known.find(text) if found == value]
    assert len(before) in starts
    assert len(before) + len(value) + len(after) in starts


def test_values_shorter_than_eight_characters_are_not_looked_for() -> None:
    assert list(KnownValues(["1234567"]).find("abc 1234567 def")) == []
    assert list(KnownValues(["12345678"]).find("abc 12345678 def")) == [(4, "12345678")]


def test_replacing_the_known_values_forgets_the_old_ones() -> None:
    known = KnownValues([SECRET, "12345678"])
    known.replace(["another-value-entirely-0123456789"])
    assert list(known.find(f"{SECRET} 12345678")) == []
    assert len(known) == 1


# -- the report ----------------------------------------------------------------------------


def test_the_report_shows_a_masked_fingerprint_never_the_secret() -> None:
    found = scan(
        [render_record(record("%s and %s", JWT, SECRET, name="msal.application"))],
        KnownValues([SECRET]),
    )
    text = report(found)
    assert SECRET not in text and JWT not in text
    assert SECRET[:5] not in text and JWT[:5] not in text
    assert f"'eyJh'…({len(JWT)} chars)" in text
    assert f"'Qm9-'…({len(SECRET)} chars)" in text
    assert "msal.application DEBUG (message): a JWT" in text
    assert text.startswith("2 secret(s) in log records captured at DEBUG:")


def test_a_short_secret_shows_at_most_a_quarter_of_itself() -> None:
    assert fingerprint("12345678") == "'12'…(8 chars)"
    assert fingerprint("abc") == "''…(3 chars)"


def test_the_report_is_cut_after_twenty_findings() -> None:
    found = scan([render_record(record(JWT)) for _ in range(25)], KnownValues())
    assert report(found).splitlines()[-1] == "  ... and 5 more"


# -- capture -------------------------------------------------------------------------------


@pytest.fixture
def quiet_logger() -> Iterator[logging.Logger]:
    """A logger set to WARNING that does not propagate, with a handler of its own."""
    logger = logging.getLogger(f"aioentra.test.quiet.{uuid.uuid4().hex}")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    yield logger
    logger.handlers.clear()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def messages(guard: SecretGuard) -> list[str]:
    return [text for r in guard.records for where, text in r.parts if where == "message"]


def test_records_below_a_loggers_level_are_captured_but_not_emitted(
    quiet_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Collect()
    quiet_logger.addHandler(handler)
    with SecretGuard() as guard:
        quiet_logger.debug("below the level %d", 1)
        quiet_logger.warning("at the level")
    assert "below the level 1" in messages(guard)
    assert "at the level" in messages(guard)
    # What the logging configuration lets through, to the logger's own handler and to
    # caplog (pytest attaches it to non-propagating loggers too): the warning only.
    assert handler.seen == ["at the level"]
    assert [r.getMessage() for r in caplog.records] == ["at the level"]


def test_caplog_sees_what_it_saw_before(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("aioentra.test.caplog")
    with caplog.at_level(logging.INFO, logger="aioentra.test.caplog"), SecretGuard() as guard:
        logger.debug("debug, below caplog's level")
        logger.info("info")
    assert [r.getMessage() for r in caplog.records] == ["info"]
    assert {"debug, below caplog's level", "info"} <= set(messages(guard))


def test_records_from_worker_threads_are_captured() -> None:
    with SecretGuard() as guard:
        worker = threading.Thread(
            target=lambda: logging.getLogger("msal.application").debug("from a worker")
        )
        worker.start()
        worker.join()
    assert "from a worker" in messages(guard)


def test_a_secret_logged_in_a_thread_fails_the_guard(quiet_logger: logging.Logger) -> None:
    # The value is the inner guard's only (added, shapeless): the suite's guard does not
    # know it, so only the inner one fails.
    value = f"inner-only-{secrets.token_hex(12)}"
    with SecretGuard() as guard:
        guard.add(value)
        worker = threading.Thread(target=lambda: quiet_logger.debug("password %s", value))
        worker.start()
        worker.join()
    failure = guard.report()
    assert failure is not None and value not in failure
    assert f"{quiet_logger.name} DEBUG (message): a known secret (added)" in failure


def test_a_clean_guard_reports_nothing() -> None:
    with SecretGuard() as guard:
        logging.getLogger("aioentra.test").debug("nothing to see: %s", "a scope")
    assert guard.report() is None


def test_the_logging_patches_are_removed_when_the_last_guard_closes() -> None:
    code = (
        "import logging\n"
        "from aioentra.testing import SecretGuard\n"
        "before = (logging.Logger.isEnabledFor, logging.Logger.handle)\n"
        "with SecretGuard():\n"
        "    with SecretGuard():\n"
        "        pass\n"
        "    assert logging.Logger.handle is not before[1]\n"
        "assert (logging.Logger.isEnabledFor, logging.Logger.handle) == before\n"
        "assert not logging.getLogger('x').isEnabledFor(logging.DEBUG)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- what the guard knows ------------------------------------------------------------------


def test_the_guard_knows_the_proofs_of_credentials_built_while_open() -> None:
    with SecretGuard() as guard:
        ClientSecret("a-literal-secret-from-a-test")
    assert "a-literal-secret-from-a-test" in guard.known_values()


def test_the_guard_knows_what_an_emulator_built_during_the_test_knows() -> None:
    with SecretGuard() as guard:
        emu = Emulator()
        app = emu.add_app("guarded")
        cert_app = emu.add_app("guarded-cert", secret=False, certificate=True)
        emu.vault.set_secret("db-password", "vault-secret-value-123")
        secret = str(app.secret)
        emu.remove_app(app)  # removed, as a fixture does before the guard looks
        del emu, app  # garbage, as an emulator built in a test body is at teardown
    known = guard.known_values()
    assert secret in known
    assert "vault-secret-value-123" in known
    assert cert_app.certificate is not None and cert_app.certificate.private_key_pem is not None
    assert cert_app.certificate.private_key_pem.decode() in known


async def test_the_emulator_knows_the_tokens_it_minted_and_the_assertions_it_received(
    aioentra_private_emulator: Emulator,
) -> None:
    emu = aioentra_private_emulator
    app = emu.add_app("assertion", secret=False, certificate=True)
    assert app.certificate is not None and app.certificate.private_key_pem is not None
    assertion = jwt.encode(
        {
            "aud": emu.token_endpoint,
            "iss": app.client_id,
            "sub": app.client_id,
            "jti": str(uuid.uuid4()),
            "exp": time.time() + 600,
        },
        app.certificate.private_key_pem,
        algorithm="PS256",
        headers={"x5t#S256": app.certificate.x5t_s256},
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": "https://vault.azure.net/.default",
    }
    connector = aiohttp.TCPConnector(ssl=emu.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(emu.token_endpoint, data=form) as response,
    ):
        assert response.status == 200
        token = (await response.json())["access_token"]
    known = emu.known_secrets()
    assert {assertion, token, emu.managed_identity.header} <= known


def test_the_ledger_keeps_the_newest_values_of_each_kind() -> None:
    ledger = SecretLedger(credentials=2, tokens=1)
    for value in ("secret-1", "secret-2", "secret-3"):
        ledger.add_credential(value)
    ledger.add_token("token-1")
    ledger.add_token("token-2")
    ledger.add_credential(b"-----BEGIN PRIVATE KEY-----")
    ledger.add_credential(None)
    assert ledger.values() == {"secret-3", "-----BEGIN PRIVATE KEY-----", "token-2"}


# -- the pytest fixture --------------------------------------------------------------------


def test_the_fixture_fails_a_test_that_logs_a_secret(pytester: pytest.Pytester) -> None:
    value = f"fixture-only-{secrets.token_hex(12)}"
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True)
        def _guarded(aioentra_secret_guard):
            return aioentra_secret_guard
        """
    )
    pytester.makepyfile(
        f"""
        import logging

        def test_leaks(aioentra_secret_guard):
            aioentra_secret_guard.add({value!r})
            logging.getLogger("aioentra.provider").debug("using %s", {value!r})

        def test_clean():
            logging.getLogger("aioentra.provider").debug("using a client secret")
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    output = result.stdout.str()
    assert "ERROR at teardown of test_leaks" in output
    assert "aioentra.provider DEBUG (message): a known secret (added)" in output
    assert f"'fixt'…({len(value)} chars)" in output
    assert value not in output
