"""Error mapping (AADSTS codes to typed errors with hints) and the retry/refresh policies."""

from __future__ import annotations

import copy
import email.utils
import pickle
import time

import pytest

from aioentra import (
    AioEntraError,
    ApplicationNotFoundError,
    ConfigurationError,
    ConsentRequiredError,
    CredentialRejectedError,
    InvalidScopeError,
    RefreshPolicy,
    RetryPolicy,
    TenantNotFoundError,
)
from aioentra._errors import error_from_response
from aioentra._policy import parse_retry_after

BODY = {
    "error": "invalid_client",
    "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\n"
    "Correlation ID: c\r\nTimestamp: 2026-01-01 00:00:00Z",
    "error_codes": [7000215],
    "trace_id": "trace-1",
    "correlation_id": "corr-1",
}


def test_error_carries_server_fields_and_hint() -> None:
    error = error_from_response(BODY, status=401)
    assert isinstance(error, CredentialRejectedError)
    assert (error.error, error.error_codes, error.status) == ("invalid_client", (7000215,), 401)
    assert (error.correlation_id, error.trace_id) == ("corr-1", "trace-1")
    text = str(error)
    assert "AADSTS7000215: Invalid client secret provided." in text
    assert "Trace ID" not in text  # the description's trailer is dropped, ids come once
    assert "Secret ID" in text  # the hint
    assert "correlation_id=corr-1" in text


@pytest.mark.parametrize(
    ("error", "code", "cls", "hint_part"),
    [
        ("invalid_client", 7000222, CredentialRejectedError, "expired"),
        ("invalid_client", 700027, CredentialRejectedError, "not registered"),
        ("invalid_client", 700024, CredentialRejectedError, "clock"),
        ("unauthorized_client", 700016, ApplicationNotFoundError, "client id"),
        ("invalid_request", 90002, TenantNotFoundError, "tenant"),
        ("invalid_scope", 1002012, InvalidScopeError, "/.default"),
        ("invalid_scope", 70011, InvalidScopeError, "/.default"),
        ("invalid_resource", 500011, InvalidScopeError, "double slash"),
        ("invalid_client", 501051, ConsentRequiredError, "consent"),
        ("invalid_client", 650056, ConsentRequiredError, "admin consent"),
    ],
)
def test_codes_map_to_types_and_hints(error: str, code: int, cls: type, hint_part: str) -> None:
    mapped = error_from_response({"error": error, "error_codes": [code]})
    assert type(mapped) is cls
    assert hint_part in (mapped.hint or "")


def test_unknown_errors_stay_generic_and_typed() -> None:
    mapped = error_from_response({"error": "weird"})
    assert isinstance(mapped, AioEntraError)
    assert mapped.error == "weird" and mapped.hint is None
    assert isinstance(error_from_response({"error": "invalid_scope"}), InvalidScopeError)
    assert isinstance(ApplicationNotFoundError("x"), ConfigurationError)


def test_errors_copy_and_pickle_with_their_fields() -> None:
    error = error_from_response(BODY, status=401)
    for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert clone.correlation_id == "corr-1" and clone.error_codes == (7000215,)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"x-ms-retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after({"Retry-After": date}, now=now) or 0) <= 31
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "-5"}) == 0.0


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delay = policy.backoff(attempt)
        assert ceiling / 2 <= delay <= ceiling
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_refresh_windows_honour_refresh_in_fraction_and_reserve() -> None:
    policy = RefreshPolicy(refresh_fraction=0.5, expiry_margin=60, reserve=300)
    for _ in range(200):
        refresh_after, usable = policy.windows(3600, 600)
        assert usable == 3540
        # opens at refresh_in, spread over the window but its reserve
        assert 600 <= refresh_after <= 3540 - 300
        refresh_after, _ = policy.windows(3600, None)
        assert 1800 <= refresh_after <= 3540 - 300
    # refresh_in beyond usability: the window shrinks to nothing, never past usable
    assert policy.windows(3600, 99999) == (3540, 3540)
    # a short-lived token keeps a quarter of its life as margin, and is still cached; the
    # reserve is at most half the window
    refresh_after, usable = policy.windows(30, None)
    assert usable == 22.5 and 15 <= refresh_after <= 15 + 3.75
    assert policy.margin_for(30) == 7.5 and policy.margin_for(3600) == 60
    with pytest.raises(ConfigurationError, match="refresh_fraction"):
        RefreshPolicy(refresh_fraction=0)
    with pytest.raises(ConfigurationError, match="renewal_interval"):
        RefreshPolicy(renewal_interval=float("nan"))


def test_jitter_spreads_over_the_window() -> None:
    policy = RefreshPolicy(reserve=0)
    starts = [policy.windows(3600)[0] for _ in range(2000)]
    # uniform over [1800, 3540]: both ends of the window are reached
    assert min(starts) < 1800 + 100 and max(starts) > 3540 - 100


def test_failure_backoff_doubles_and_honours_retry_after() -> None:
    policy = RefreshPolicy(failure_backoff=1.0, max_failure_backoff=8.0)
    assert 0.8 <= policy.failure_delay(1, None) <= 1.0
    assert 3.2 <= policy.failure_delay(3, None) <= 4.0
    assert 6.4 <= policy.failure_delay(10, None) <= 8.0
    # Retry-After lengthens the wait, and max_failure_backoff caps it too
    assert policy.failure_delay(1, 5.0) == 5.0
    assert policy.failure_delay(1, 20.0) == 8.0
    assert policy.failure_delay(1, 86400.0) == 8.0
    assert policy.failure_delay(1, float("nan")) <= 1.0
