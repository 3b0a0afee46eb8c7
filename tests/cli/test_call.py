"""``aioentra call``: one authenticated request to a local HTTPS API that checks the token."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from aioentra._cli import CliError
from aioentra._cli.call import REDACTED, exit_for_status, origin_of, parse_header, redact
from aioentra.emulator import App, Emulator

from .conftest import LocalApi, Result


@pytest.fixture
def call(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, scope: str
) -> Callable[..., Result]:
    """``call(METHOD, URL, *more)``: ``aioentra call`` with the scope and the emulator's CA."""

    def run(*argv: str, json_mode: bool = False) -> Result:
        head = ["--json"] if json_mode else []
        return cli(*head, "call", *argv, "--scope", scope, "--ca-file", emu.ca_file)

    return run


def test_get_prints_the_status_and_the_json_body(
    call: Callable[..., Result], test_api: LocalApi, app: App
) -> None:
    shown = call("GET", test_api.url("/things"))
    assert shown.code == 0, shown.err
    assert shown.err == "HTTP 200 OK\n"
    assert json.loads(shown.out) == {"things": ["a", "b"], "azp": app.client_id}
    assert shown.out.startswith('{\n  "things"')  # pretty-printed
    assert test_api.seen_authorization == [True]


def test_call_json_shape(call: Callable[..., Result], test_api: LocalApi, app: App) -> None:
    document = call("get", test_api.url("/things"), json_mode=True).json()
    assert document == {
        "method": "GET",
        "url": test_api.url("/things"),
        "status": 200,
        "reason": "OK",
        "content_type": "application/json",
        "body": {"things": ["a", "b"], "azp": app.client_id},
        "exit_code": 0,
    }


def test_data_and_headers_are_sent(
    call: Callable[..., Result],
    test_api: LocalApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = call("POST", test_api.url("/echo"), "--data", '{"a": 1}', "-H", "X-Test: yes")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out) == {
        "body": '{"a": 1}',
        "content_type": "application/json",
        "x_test": "yes",
    }
    body = tmp_path / "body.txt"
    body.write_text("from a file")
    echoed = call("POST", test_api.url("/echo"), "--data", f"@{body}", json_mode=True).json()
    assert echoed["body"]["body"] == "from a file"
    assert echoed["body"]["content_type"] == "text/plain; charset=utf-8"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"[1, 2]")))
    piped = call("POST", test_api.url("/echo"), "-d", "@-", json_mode=True).json()
    assert piped["body"]["body"] == "[1, 2]"


def test_a_text_body_is_printed_as_it_is(call: Callable[..., Result], test_api: LocalApi) -> None:
    shown = call("GET", test_api.url("/plain"))
    assert (shown.code, shown.out) == (0, "plain text\n")


def test_a_403_is_4(
    cli: Callable[..., Result],
    env: dict[str, str],
    emu: Emulator,
    scope: str,
    test_api: LocalApi,
    aioentra_app: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ungranted = emu.add_app("cli-no-roles")
    try:
        monkeypatch.setenv("AZURE_CLIENT_ID", ungranted.client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", str(ungranted.secret))
        argv = ("call", "GET", test_api.url("/things"), "--scope", scope, "--ca-file", emu.ca_file)
        shown = cli(*argv, secrets=(str(ungranted.secret),))
        assert shown.code == 4
        assert shown.err.startswith("HTTP 403 Forbidden\n  hint: the API accepted the token")
        assert json.loads(shown.out) == {"error": "forbidden", "need": "Test.Read"}
    finally:
        emu.remove_app(ungranted)


def test_a_401_is_retried_once_then_4(call: Callable[..., Result], test_api: LocalApi) -> None:
    document = call("GET", test_api.url("/reject"), json_mode=True).json()
    assert document["status"] == 401 and document["exit_code"] == 4
    assert document["www_authenticate"] == 'Bearer error="invalid_token"'
    assert test_api.seen_authorization == [True, True]  # a renewed token, once


@pytest.mark.parametrize(("path", "code"), [("/boom", 5), ("/missing", 1)])
def test_5xx_is_5_and_other_answers_are_1(
    call: Callable[..., Result], test_api: LocalApi, path: str, code: int
) -> None:
    shown = call("GET", test_api.url(path))
    assert shown.code == code


def test_no_answer_is_5(call: Callable[..., Result], closed_port: int) -> None:
    document = call("GET", f"https://127.0.0.1:{closed_port}/x", json_mode=True).json()
    assert document["exit_code"] == 5
    assert document["error"]["type"] == "NetworkError"
    assert f"GET https://127.0.0.1:{closed_port} failed" in document["error"]["message"]
    assert document["error"]["hint"]


def test_scope_and_endpoint_come_from_parameters_json(
    cli: Callable[..., Result],
    clean_env: pytest.MonkeyPatch,
    emu: Emulator,
    app: App,
    scope: str,
    test_api: LocalApi,
    tmp_path: Path,
) -> None:
    parameters = tmp_path / "parameters.json"
    parameters.write_text(
        json.dumps(
            {
                "authority": emu.authority,
                "client_id": app.client_id,
                "secret": app.secret,
                "scope": [scope],
                "endpoint": test_api.url("/things"),
            }
        )
    )
    shown = cli("call", "GET", "--config", str(parameters), "--ca-file", emu.ca_file)
    assert shown.code == 0, shown.err


def test_configuration_and_usage_errors(
    cli: Callable[..., Result], env: dict[str, str], emu: Emulator, scope: str, test_api: LocalApi
) -> None:
    url = test_api.url("/things")
    assert cli("call", "GET", url, "--ca-file", emu.ca_file).code == 3  # no --scope
    assert cli("call", "GET", url, "--scope", "api://x", "--ca-file", emu.ca_file).code == 3
    refused = cli("call", "GET", url, "--scope", scope, "-H", "Authorization: Bearer x")
    assert refused.code == 2 and "sets the Authorization header itself" in refused.err
    assert cli("call", "G E T", url, "--scope", scope).code == 2
    assert cli("call", "GET", "/relative", "--scope", scope).code == 2
    assert test_api.seen_authorization == []


def test_the_pure_parts() -> None:
    assert [exit_for_status(s) for s in (200, 204, 301, 401, 403, 404, 429, 500, 503)] == [
        0, 0, 1, 4, 4, 1, 1, 5, 5,
    ]  # fmt: skip
    assert origin_of("https://Example.com:8443/a?b") == "https://example.com:8443"
    assert origin_of("https://[::1]/x") == "https://[::1]"
    assert parse_header("X-A:  b ") == ("X-A", "b")
    with pytest.raises(CliError):
        parse_header("no colon")
    with pytest.raises(CliError):
        origin_of("ftp://example.com/")


# -- an API that echoes the token ----------------------------------------------------------------


def test_a_token_echoed_by_the_api_is_never_printed(
    call: Callable[..., Result], test_api: LocalApi
) -> None:
    """httpbin-style ``/headers``: the body holds the request's Authorization header."""
    shown = call("GET", test_api.url("/headers"))  # the cli fixture: no "eyJ" in the output
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["headers"]["Authorization"] == f"Bearer {REDACTED}"
    document = call("GET", test_api.url("/headers"), json_mode=True).json()
    assert document["body"]["headers"]["Authorization"] == f"Bearer {REDACTED}"
    assert document["body"]["headers"]["Host"].startswith("127.0.0.1:")  # the rest is shown
    sent = {value.removeprefix("Bearer ") for value in test_api.received}
    assert len(test_api.received) == 2 and all(token.startswith("eyJ") for token in sent)


def test_a_token_echoed_as_text_is_never_printed(
    call: Callable[..., Result], test_api: LocalApi
) -> None:
    shown = call("GET", test_api.url("/raw"))
    assert shown.code == 0, shown.err
    assert f"Authorization: Bearer {REDACTED}" in shown.out.splitlines()
    assert shown.out.startswith("GET /raw HTTP/1.1\n")
    document = call("GET", test_api.url("/raw"), json_mode=True).json()
    assert f"Authorization: Bearer {REDACTED}\n" in document["body"]


def test_renewed_tokens_echoed_in_a_401_are_never_printed(
    call: Callable[..., Result], test_api: LocalApi
) -> None:
    """A 401 challenge is answered once with a new token: the rejected one and the renewed
    one are both redacted, in the body and in the WWW-Authenticate header shown."""
    shown = call("GET", test_api.url("/headers-401"))
    assert shown.code == 4
    assert (
        f'WWW-Authenticate: Bearer error="invalid_token", error_description="rejected {REDACTED}"'
        in shown.err
    )
    assert json.loads(shown.out)["you_sent"]["Authorization"] == f"Bearer {REDACTED}"
    document = call("GET", test_api.url("/headers-401"), json_mode=True).json()
    assert document["www_authenticate"].endswith(f'"rejected {REDACTED}"')
    tokens = {value.removeprefix("Bearer ") for value in test_api.received}
    assert len(tokens) >= 2  # the token was renewed, so two different ones were sent


def test_the_redaction_rules() -> None:
    token = "abc.def-ghi_jkl~mno+pqr/stu="
    assert redact({"a": [f"x {token} y"], token: 1}, {token}) == {"a": ["x *** y"], "***": 1}
    headers = {"authorization": "Basic dXNlcjpwYXNzd29yZA==", "Proxy-Authorization": "opaque"}
    assert redact(headers, ()) == {"authorization": "Basic ***", "Proxy-Authorization": "***"}
    assert redact("Bearer 0123456789abcdefXYZ.sig", ()) == "Bearer ***"
    assert redact("GET / HTTP/1.1\r\nauthorization: Digest a=1, b=2\r\nX: y", ()) == (
        "GET / HTTP/1.1\r\nauthorization: Digest ***\r\nX: y"
    )
    assert redact("Proxy-Authorization: opaque-value", ()) == "Proxy-Authorization: ***"
    challenge = 'Bearer error="invalid_token", error_description="expired"'
    assert redact(challenge, ()) == challenge  # parameters are not a credential
    assert redact("a bearer token is required", ()) == "a bearer token is required"
    assert redact({"n": 1, "ok": True, "none": None}, ()) == {"n": 1, "ok": True, "none": None}


# -- plain http ------------------------------------------------------------------------------------


def test_plain_http_needs_allow_http_and_a_loopback_host(
    call: Callable[..., Result], http_api: LocalApi
) -> None:
    refused = call("GET", http_api.url("/things"), json_mode=True).json()
    assert refused["exit_code"] == 3
    assert refused["error"]["type"] == "ConfigurationError"
    assert "--allow-http" in refused["error"]["hint"]
    assert "allow_http=True" not in refused["error"]["hint"]  # the library's words, not ours
    assert http_api.seen_authorization == []
    shown = call("GET", http_api.url("/things"), "--allow-http")
    assert shown.code == 0, shown.err
    assert json.loads(shown.out)["things"] == ["a", "b"]
    assert http_api.seen_authorization == [True]
    remote = call("GET", "http://example.com/things", "--allow-http", json_mode=True).json()
    assert remote["exit_code"] == 3
    assert "only loopback hosts" in remote["error"]["hint"]
