"""``aioentra decode``: a JWT's header and claims, offline, the signature never shown."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable

import pytest

from aioentra._cli._jwt import NotAJwtError, human_duration, parse_jwt, strip_bearer, utc_time
from aioentra.emulator import App, Emulator

from .conftest import Result


@pytest.fixture
def token(emu: Emulator, app: App) -> str:
    value, _ = emu.issue_access_token(
        tenant_id=app.tenant_id,
        client_id=app.client_id,
        object_id=app.object_id,
        resource="api://decoded",
        roles=["Test.Read"],
    )
    return value


def _b64(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_decode_shows_header_claims_and_utc_times(
    cli: Callable[..., Result], token: str, app: App
) -> None:
    shown = cli("decode", f"Bearer {token}")
    assert shown.code == 0
    assert "signature NOT verified" in shown.out
    assert '"alg": "RS256"' in shown.out
    assert f'"azp": "{app.client_id}"' in shown.out
    assert '"Test.Read"' in shown.out
    times = [line for line in shown.out.splitlines() if line.startswith(("  exp", "  iat"))]
    assert len(times) == 2 and all("Z (" in line for line in times)
    assert token.split(".")[2] not in shown.out


@pytest.mark.parametrize("argv", [["decode"], ["decode", "-"]])
def test_decode_reads_stdin(
    cli: Callable[..., Result],
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"Authorization: Bearer {token}\n"))
    shown = cli("--json", *argv)
    assert shown.code == 0
    assert shown.json()["claims"]["aud"]


def test_decode_json_shape(cli: Callable[..., Result], token: str, app: App) -> None:
    document = cli("--json", "decode", token).json()
    assert set(document) == {"header", "claims", "times", "signature"}
    assert document["header"]["typ"] == "JWT"
    assert document["claims"]["azp"] == app.client_id
    assert document["signature"] == {"verified": False, "bytes": 256}
    assert set(document["times"]) >= {"iat", "exp"}
    exp = document["times"]["exp"]
    assert exp["utc"] == utc_time(document["claims"]["exp"]) and exp["utc"].endswith("Z")
    assert 0 < exp["seconds_from_now"] <= 3600


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not-a-token", "expected 3 parts"),
        ("a.b", "expected 3 parts"),
        ("!!.e30.", "header is not base64url"),
        (f"{_b64([1])}.{_b64({})}.", "header is not a JSON object"),
        (f"{_b64({'alg': 'none'})}.bm90IGpzb24.", "payload is not JSON"),
        ("a.b.c.d.e", "encrypted token (JWE"),
        ("Bearer ", "no token given"),
    ],
)
def test_decode_says_what_is_not_a_jwt(cli: Callable[..., Result], text: str, says: str) -> None:
    shown = cli("decode", text)
    assert shown.code == 2
    assert says in shown.err and "hint:" in shown.err
    document = cli("--json", "decode", text).json()
    assert document["exit_code"] == 2
    assert document["error"]["type"] == "NotAJwtError"
    assert says in document["error"]["message"]


def test_the_pure_parts() -> None:
    assert strip_bearer("  bearer abc \n") == "abc"
    assert strip_bearer("Authorization: Bearer abc") == "abc"
    assert parse_jwt(f"{_b64({'alg': 'none'})}.{_b64({'a': 1})}.").claims == {"a": 1}
    with pytest.raises(NotAJwtError):
        parse_jwt("")
    assert human_duration(3599) == "59m 59s"
    assert human_duration(-90061) == "1d 1h"
    assert human_duration(0) == "0s"
    assert utc_time(0) == "1970-01-01T00:00:00Z"


def _raw_b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_numbers_that_are_not_finite_are_not_times_and_the_json_stays_strict(
    cli: Callable[..., Result],
) -> None:
    payload = '{"exp": 1e400, "nbf": -1e400, "iat": NaN, "aud": "x"}'
    token = f"{_b64({'alg': 'none'})}.{_raw_b64(payload)}."
    text = cli("decode", token)
    assert text.code == 0, text.err
    assert "times (UTC)" not in text.out
    assert '"exp": "Infinity"' in text.out and '"iat": "NaN"' in text.out  # JSON, quoted
    document = json.loads(cli("--json", "decode", token).out, parse_constant=_no_constant)
    assert document["times"] == {}
    claims = document["claims"]
    assert [claims["exp"], claims["nbf"], claims["iat"]] == ["Infinity", "-Infinity", "NaN"]


def test_an_integer_too_large_for_a_float_is_not_a_time(cli: Callable[..., Result]) -> None:
    huge = "9" * 400
    payload = '{"exp": ' + huge + ', "iat": 0}'
    token = f"{_b64({'alg': 'none'})}.{_raw_b64(payload)}."
    assert cli("decode", token).code == 0
    document = json.loads(cli("--json", "decode", token).out, parse_constant=_no_constant)
    assert set(document["times"]) == {"iat"}
    assert document["claims"]["exp"] == int(huge)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")
