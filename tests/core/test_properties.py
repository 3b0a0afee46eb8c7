"""Property-based tests: whatever the input, only typed errors, never a crash or a hang."""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from aioentra import (
    ConfigurationError,
    IdentityProviderUnavailableError,
    InvalidScopeError,
    Settings,
    validate_scope,
)
from aioentra._authority import Authority
from aioentra._challenge import decide, decode_claims, parse_bearer_challenge, parse_challenges
from aioentra._policy import parse_retry_after
from aioentra._token import MAX_LIFETIME, parse_token_response

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
header_text = st.text(
    alphabet=st.sampled_from(list('Bearer basic=",\\ \t\r\nerror claims xyz{}[]:=01+/_-~.')),
    max_size=200,
)


@FAST
@given(st.one_of(st.text(max_size=80), st.lists(st.text(max_size=30), max_size=3), json_values))
def test_scopes(scope: Any) -> None:
    try:
        value = validate_scope(scope)
    except InvalidScopeError:
        return
    assert value.endswith("/.default") and value == value.strip()


@FAST
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
            st.sampled_from(["https", "http", "ftp", "HTTPS", ""]),
            st.text(max_size=20),
            st.sampled_from(["", ":443", ":0", ":99999", ":-1", ":x"]),
            st.sampled_from(["", "/", "/contoso", "/a/b", "?q=1", "#f"]),
        ),
    ),
    st.one_of(st.none(), st.text(max_size=20)),
)
def test_authorities(authority: str, tenant: str | None) -> None:
    try:
        parsed = Authority.parse(authority, tenant)
    except ConfigurationError:
        return
    assert parsed.url.startswith("https://") and parsed.tenant


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["access_token", "token_type", "expires_in", "refresh_in", "x"]),
        json_values | st.text(alphabet="0123456789.e-", max_size=8),
    )
)
def test_token_responses(body: dict[str, Any]) -> None:
    try:
        token = parse_token_response(body)
    except IdentityProviderUnavailableError as error:
        assert error.retryable  # noqa: PT017 - a property over many inputs, not one raise
        return
    assert token.access_token and token.access_token.isascii() and token.access_token.isprintable()
    assert " " not in token.access_token
    assert 0 < token.expires_in <= MAX_LIFETIME and math.isfinite(token.expires_in)
    assert token.refresh_in is None or 0 < token.refresh_in <= MAX_LIFETIME


@FAST
@given(st.lists(header_text, max_size=4), st.sampled_from([200, 401, 403]))
def test_www_authenticate(values: list[str], status: int) -> None:
    for value in values:
        with contextlib.suppress(ValueError):
            parse_challenges(value)
    parse_bearer_challenge(values)  # never raises
    decision = decide(status, values)
    assert status == 401 or decision.retry is None


@FAST
@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps)))
def test_claims_decoding(raw: str) -> None:
    decoded = decode_claims(raw)
    assert decoded is None or isinstance(json.loads(decoded), dict)


@FAST
@given(
    st.dictionaries(st.sampled_from(["Retry-After", "retry-after-ms", "x"]), st.text(max_size=40))
)
def test_retry_after(headers: dict[str, str]) -> None:
    seconds = parse_retry_after(headers)
    assert seconds is None or (0 <= seconds < math.inf)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "AzureAd": st.dictionaries(
                    st.sampled_from(
                        ["ClientId", "TenantId", "Instance", "ClientSecret", "ClientCredentials"]
                    ),
                    json_values,
                )
            }
        ),
        st.dictionaries(
            st.sampled_from(
                ["authority", "client_id", "secret", "thumbprint", "private_key_file", "scope"]
            ),
            json_values,
        ),
    )
)
def test_configuration_files(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"
        path.write_text(json.dumps(document))
        with contextlib.suppress(ConfigurationError):
            Settings.from_file(path)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "AZURE_TENANT_ID",
                "AZURE_CLIENT_ID",
                "AZURE_CLIENT_SECRET",
                "AZURE_CLIENT_CERTIFICATE_PATH",
                "AZURE_FEDERATED_TOKEN_FILE",
                "AZURE_AUTHORITY_HOST",
                "AZURE_ADDITIONALLY_ALLOWED_TENANTS",
            ]
        ),
        st.text(max_size=30),
    )
)
def test_environments(environ: dict[str, str]) -> None:
    try:
        settings_ = Settings.from_environment(environ)
        settings_.provider()
    except ConfigurationError:
        pass
