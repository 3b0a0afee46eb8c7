"""The command line's frame: the registry, --version, usage errors, the error table."""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
import logging
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import aioentra._errors as errors
from aioentra._cli import (
    COMMANDS,
    EXIT_CODES,
    CliError,
    Command,
    Exit,
    Output,
    exit_code_for,
)

from .conftest import Result

HEAVY = ("aiohttp", "msal", "aioentra.emulator", "cryptography", "aioentra._provider")


def test_python_m_aioentra_version_imports_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-X", "importtime", "-m", "aioentra", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"aioentra {importlib.metadata.version('aioentra')}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not [m for m in imported if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert not [m for m in imported if m.startswith("aioentra._cli.")], "no subcommand module"


def test_decode_loads_only_its_own_module() -> None:
    code = (
        "import sys; from aioentra._cli import main; "
        "main(['decode', 'eyJhbGciOiJub25lIn0.eyJhIjoxfQ.']); "
        "print(sorted(m for m in sys.modules if m.startswith(('aioentra._cli.', 'aiohttp', "
        "'msal', 'aioentra.emulator', 'cryptography'))))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == "['aioentra._cli._jwt', 'aioentra._cli.decode']"


def test_version_in_process(cli: Callable[..., Result]) -> None:
    shown = cli("--version")
    assert (shown.code, shown.out) == (0, f"aioentra {importlib.metadata.version('aioentra')}\n")
    assert cli("--json", "--version").json() == {"version": importlib.metadata.version("aioentra")}


def test_help_lists_every_command(cli: Callable[..., Result]) -> None:
    shown = cli("--help")
    assert shown.code == 0
    for name in COMMANDS:
        assert f"    {name} " in shown.out
    assert "exit status" in shown.out


@pytest.mark.parametrize(
    "argv",
    [[], ["bogus"], ["token", "--no-such-option"], ["decode", "a", "b"], ["call"]],
)
def test_usage_errors_exit_2(cli: Callable[..., Result], argv: list[str]) -> None:
    shown = cli(*argv)
    assert shown.code == Exit.USAGE == 2
    assert "usage: aioentra" in shown.err


def test_json_is_accepted_before_and_after_the_command(cli: Callable[..., Result]) -> None:
    token = "eyJhbGciOiJub25lIn0.eyJhIjoxfQ."
    assert cli("--json", "decode", token).json()["claims"] == {"a": 1}
    assert cli("decode", "--json", token).json()["claims"] == {"a": 1}


def test_registering_a_command_is_one_entry(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What adding ``"hello",`` to COMMANDS (and writing ``_cli/hello.py``) gives."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")

    def run(args: argparse.Namespace, out: Output) -> int:
        out.document({"hello": args.name})
        out.line(f"hello {args.name}")
        return Exit.OK

    module = types.ModuleType("aioentra._cli.hello")
    module.COMMAND = Command("hello", "say hello", configure, run)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aioentra._cli.hello", module)
    monkeypatch.setattr("aioentra._cli.COMMANDS", (*COMMANDS, "hello"))
    assert cli("hello", "you").out == "hello you\n"
    assert cli("--json", "hello", "you").json() == {"hello": "you"}
    assert "say hello" in cli("--help").out


def _public_error_types() -> list[type[BaseException]]:
    return [
        getattr(errors, name)
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), BaseException)
    ]


def test_the_table_maps_every_public_error_type() -> None:
    names = {cls.__name__ for cls in _public_error_types()}
    assert names == set(EXIT_CODES)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigurationError("x"), 3),
        (errors.InvalidScopeError("x"), 3),
        (errors.AuthenticationError("x"), 4),
        (errors.CredentialRejectedError("x"), 4),
        (errors.ApplicationNotFoundError("x"), 4),
        (errors.TenantNotFoundError("x"), 4),
        (errors.ConsentRequiredError("x"), 4),
        (errors.TokenValidationError("x"), 4),
        (errors.InvalidTokenError("x"), 4),
        (errors.InsufficientPermissionsError("x"), 4),
        (errors.IdentityProviderUnavailableError("x"), 5),
        (errors.ThrottledError("x"), 5),
        (errors.CredentialUnavailableError("x"), 5),
        (errors.KeyVaultError("x", status=403), 4),
        (errors.KeyVaultError("x", status=404), 3),
        (errors.KeyVaultError("x", status=429), 5),
        (errors.KeyVaultError("x"), 5),
        (
            errors.SecretsNotLoadedError(
                "x",
                failures={
                    "a": errors.KeyVaultError("a", status=404),
                    "b": errors.KeyVaultError("b", status=403),
                },
            ),
            4,
        ),
        (errors.ProviderClosedError("x"), 1),
        (errors.AioEntraError("x"), 1),
        (ConnectionRefusedError(), 5),
        (TimeoutError(), 5),
        (RuntimeError("x"), 1),
        (CliError("x", exit_code=Exit.USAGE), 2),
    ],
)
def test_exit_code_for(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_an_error_document_has_codes_and_ids_and_nothing_else(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = errors.error_from_response(
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215],
            "correlation_id": "c-1",
            "trace_id": "t-1",
        },
        status=401,
    )
    Output(json_mode=True).error(error, exit_code_for(error))
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "error": {
            "type": "CredentialRejectedError",
            "message": error.message,
            "hint": error.hint,
            "error": "invalid_client",
            "error_codes": [7000215],
            "status": 401,
            "correlation_id": "c-1",
            "trace_id": "t-1",
        },
        "exit_code": 4,
    }
    Output(command="aioentra token").error(error, Exit.AUTHENTICATION)
    text = capsys.readouterr().err.splitlines()
    assert text[0].startswith("aioentra token: error: token request failed: invalid_client")
    assert text[1] == f"  hint: {error.hint}"
    assert text[2] == "  codes: invalid_client AADSTS7000215 HTTP 401"
    assert text[3] == "  correlation_id=c-1 trace_id=t-1"


# -- one JSON document, whatever happens ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--json"],
        ["--json", "bogus"],
        ["--json", "token", "--no-such-option"],
        ["decode", "--json", "a", "b"],
        ["--json", "call"],
        ["token", "--timeout", "soon", "--json"],
    ],
)
def test_usage_errors_under_json_are_one_document(
    cli: Callable[..., Result], argv: list[str]
) -> None:
    shown = cli(*argv)
    assert shown.code == 2
    assert shown.err == ""
    document = shown.json()
    assert document["exit_code"] == 2
    assert document["error"]["type"] == "UsageError"
    assert document["error"]["message"]
    assert document["error"]["hint"].startswith("usage: aioentra")


def _command(
    monkeypatch: pytest.MonkeyPatch, run: Callable[[argparse.Namespace, Output], int]
) -> None:
    """Register ``aioentra hello`` running ``run``."""
    module = types.ModuleType("aioentra._cli.hello")
    module.COMMAND = Command("hello", "say hello", lambda parser: None, run)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aioentra._cli.hello", module)
    monkeypatch.setattr("aioentra._cli.COMMANDS", (*COMMANDS, "hello"))


def test_ctrl_c_is_130_and_one_document_under_json(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(args: argparse.Namespace, out: Output) -> int:
        raise KeyboardInterrupt

    _command(monkeypatch, run)
    assert cli("hello") == Result(130, "", "")
    assert cli("--json", "hello").json() == {
        "error": {"type": "KeyboardInterrupt", "message": "interrupted"},
        "exit_code": 130,
    }


def test_ctrl_c_in_a_real_process_under_json() -> None:
    """SIGINT while ``decode -`` waits for stdin: one JSON document, exit 130, no traceback."""
    code = (
        "import sys; from aioentra._cli import main; "
        "sys.stderr.write('ready\\n'); sys.stderr.flush(); sys.exit(main(sys.argv[1:]))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, "--json", "decode", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None
            assert process.stderr.readline() == "ready\n"
            time.sleep(0.5)  # into the read of stdin
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 130, err
    assert err == ""
    assert json.loads(out) == {
        "error": {"type": "KeyboardInterrupt", "message": "interrupted"},
        "exit_code": 130,
    }


# -- options after the command --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["hello"], logging.NOTSET),
        (["hello", "-v"], logging.INFO),
        (["hello", "--verbose"], logging.INFO),
        (["hello", "-vv"], logging.DEBUG),
        (["-v", "hello", "-v"], logging.DEBUG),
        (["-v", "hello"], logging.INFO),
    ],
)
def test_verbose_works_before_and_after_the_command(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, argv: list[str], level: int
) -> None:
    def run(args: argparse.Namespace, out: Output) -> int:
        out.line(str(logging.getLogger("aioentra").level))
        return Exit.OK

    _command(monkeypatch, run)
    assert cli(*argv) == Result(0, f"{level}\n", "")


@pytest.mark.parametrize(
    "argv",
    [
        ["decode", "--version"],
        ["token", "--version"],
        ["call", "--version"],
        ["-v", "doctor", "--version"],
    ],
)
def test_version_works_after_the_command(cli: Callable[..., Result], argv: list[str]) -> None:
    expected = importlib.metadata.version("aioentra")
    assert cli(*argv) == Result(0, f"aioentra {expected}\n", "")
    assert cli("--json", *argv).json() == {"version": expected}
    assert cli(*argv, "--json").json() == {"version": expected}


# -- output that cannot be written ----------------------------------------------------------------


def _big_token(tmp_path: Path) -> Path:
    """A JWT whose decoded output is far larger than a pipe's buffer."""
    claims = base64.urlsafe_b64encode(json.dumps({"blob": "x" * 300_000}).encode())
    path = tmp_path / "big.jwt"
    path.write_bytes(b"eyJhbGciOiJub25lIn0." + claims.rstrip(b"=") + b".")
    return path


@pytest.mark.parametrize("head", [[], ["--json"]])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path, head: list[str]) -> None:
    """``aioentra decode - < big.jwt | head -c1``: no traceback, no message, exit 141."""
    with (
        _big_token(tmp_path).open("rb") as stdin,
        subprocess.Popen(
            [sys.executable, "-W", "error", "-m", "aioentra", *head, "decode", "-"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process,
    ):
        assert process.stdout is not None and process.stderr is not None
        assert len(process.stdout.read(1)) == 1
        process.stdout.close()  # the reader goes away, as head does
        err = process.stderr.read()
        process.wait(timeout=60)
    assert (process.returncode, err) == (Exit.BROKEN_PIPE, b"")
    assert Exit.BROKEN_PIPE == 141


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("head", [[], ["--json"]])
def test_a_failed_write_is_1_and_not_a_network_error(tmp_path: Path, head: list[str]) -> None:
    with _big_token(tmp_path).open("rb") as stdin, open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-m", "aioentra", *head, "decode", "-"],
            stdin=stdin,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr == "aioentra: error: cannot write to stdout: No space left on device\n"
