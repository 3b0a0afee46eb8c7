"""``aioentra call``: one authenticated request to a local HTTPS API that checks the token."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from aioentra._cli import CliError
from aioentra._cli.call import exit_for_status, origin_of, parse_header
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
