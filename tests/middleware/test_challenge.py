"""WWW-Authenticate parsing and the 401 decision table, without a server."""

from __future__ import annotations

import base64
import json

import pytest

from aioentra._challenge import (
    MAX_CHALLENGE_BYTES,
    Challenge,
    Retry,
    decide,
    decode_claims,
    parse_bearer_challenge,
    parse_challenges,
    retry_decision,
)

CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CLAIMS_B64 = base64.urlsafe_b64encode(CLAIMS.encode()).rstrip(b"=").decode()


def test_bare_bearer() -> None:
    [challenge] = parse_challenges("Bearer")
    assert challenge.scheme == "bearer"
    assert dict(challenge.params) == {}
    assert challenge.error is None


def test_rfc6750_example() -> None:
    header = (
        'Bearer realm="example", error="invalid_token", '
        'error_description="The access token expired"'
    )
    challenge = parse_bearer_challenge(header)
    assert challenge is not None
    assert dict(challenge.params) == {
        "realm": "example",
        "error": "invalid_token",
        "error_description": "The access token expired",
    }


def test_scheme_and_param_names_are_case_insensitive() -> None:
    challenge = parse_bearer_challenge('bEaReR ERROR="invalid_token"')
    assert challenge is not None
    assert challenge.error == "invalid_token"


def test_quoted_strings_keep_commas_and_unescape() -> None:
    [challenge] = parse_challenges(r'Bearer realm="a, \"b\" \\ c", error=invalid_token')
    assert challenge.params["realm"] == 'a, "b" \\ c'
    assert challenge.error == "invalid_token"


def test_several_challenges_in_one_header() -> None:
    header = f'Basic realm="x", Bearer error="insufficient_claims", claims="{CLAIMS_B64}", Digest'
    schemes = [c.scheme for c in parse_challenges(header)]
    assert schemes == ["basic", "bearer", "digest"]
    challenge = parse_bearer_challenge(header)
    assert challenge is not None
    assert challenge.claims == CLAIMS


def test_challenges_spread_over_several_headers() -> None:
    challenge = parse_bearer_challenge(['Basic realm="x"', 'Bearer error="invalid_token"'])
    assert challenge is not None
    assert challenge.error == "invalid_token"


def test_token68_is_not_taken_for_params() -> None:
    negotiate, bearer = parse_challenges("Negotiate YIIB/ab+c==, Bearer realm=api")
    assert negotiate.token68 == "YIIB/ab+c=="
    assert bearer.params["realm"] == "api"


def test_empty_challenge_list_items_are_skipped() -> None:
    assert [c.scheme for c in parse_challenges(" , ,Bearer , ")] == ["bearer"]
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    "header",
    ['Bearer error="unterminated', 'Basic realm="x" Bearer', 'Bearer"x"', "=Bearer"],
)
def test_malformed_headers_raise_and_are_skipped_by_the_bearer_lookup(header: str) -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_challenges(header)
    assert parse_bearer_challenge(header) is None


def test_first_value_of_a_repeated_param_wins() -> None:
    [challenge] = parse_challenges('Bearer error="invalid_token", error="other"')
    assert challenge.error == "invalid_token"


@pytest.mark.parametrize(
    "raw",
    [
        CLAIMS_B64,  # base64url without padding, as Entra and Graph send it
        base64.urlsafe_b64encode(CLAIMS.encode()).decode(),  # with padding
        CLAIMS,  # raw JSON, tolerated
    ],
)
def test_claims_decoding(raw: str) -> None:
    assert decode_claims(raw) == CLAIMS


def test_claims_must_be_a_json_object() -> None:
    assert decode_claims("not base64 !!") is None
    assert decode_claims(base64.urlsafe_b64encode(b"[1, 2]").decode()) is None
    assert decode_claims(base64.urlsafe_b64encode(b"\xff\xfe").decode()) is None
    assert decode_claims("{not json") is None


def test_claims_with_url_unsafe_base64_characters() -> None:
    claims = json.dumps({"access_token": {"acrs": {"essential": True, "value": "c1??>>"}}})
    raw = base64.urlsafe_b64encode(claims.encode()).rstrip(b"=").decode()
    assert "-" in raw or "_" in raw
    assert decode_claims(raw) == claims


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, ['Bearer error="invalid_token"'], None),
        (403, ['Bearer error="insufficient_claims", claims="e30"'], None),
        (401, [], Retry.REFRESH),
        (401, ["Bearer"], Retry.REFRESH),
        (401, ['Bearer realm="api"'], Retry.REFRESH),
        (401, ['Bearer error="invalid_token"'], Retry.REFRESH),
        (401, [f'Bearer error="insufficient_claims", claims="{CLAIMS_B64}"'], Retry.CLAIMS),
        (401, [f'Bearer claims="{CLAIMS_B64}"'], Retry.CLAIMS),
        (401, ['Bearer error="insufficient_claims"'], None),
        (401, ['Bearer error="insufficient_claims", claims="%%%"'], None),
        (401, ['Bearer error="invalid_token", claims="e30"'], Retry.REFRESH),
        (401, ['Bearer error="invalid_request"'], None),
        (401, ['Bearer error="insufficient_scope"'], None),
        (401, ['Basic realm="api"'], None),
        (401, ['Bearer error="unterminated'], None),
    ],
)
def test_retry_decision(status: int, headers: list[str], expected: Retry | None) -> None:
    assert retry_decision(status, headers) is expected


# -- hostile servers --------------------------------------------------------------------------


def test_a_deeply_nested_claims_value_is_not_a_claims_challenge() -> None:
    nested = "[" * 3000 + "]" * 3000
    for raw in (nested, '{"a":' + nested + "}"):
        encoded = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
        assert decode_claims(raw) is None and decode_claims(encoded) is None
        header = f'Bearer error="insufficient_claims", claims="{encoded}"'
        assert retry_decision(401, [header]) is None


def test_hostile_headers_are_parsed_once_and_within_a_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aioentra._challenge as challenge_module

    parsed: list[int] = []
    real = challenge_module.parse_challenges

    def counting(header: str) -> list[Challenge]:
        parsed.append(len(header))
        return real(header)

    monkeypatch.setattr(challenge_module, "parse_challenges", counting)
    hostile = ["Basic " + "a=b, " * 1600] * 127  # 127 values of 8 KB, none of them Bearer
    decision = decide(401, hostile)
    assert decision.retry is None and decision.challenge is None
    assert sum(parsed) <= MAX_CHALLENGE_BYTES  # not 1 MB, and not twice
    parsed.clear()
    good = 'Bearer error="invalid_token"'
    assert decide(401, [good]).retry is Retry.REFRESH
    assert parsed == [len(good)]  # one parse per value, decision and challenge together
