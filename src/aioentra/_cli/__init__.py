"""The ``aioentra`` command line (also ``python -m aioentra``).

Each subcommand is a module of this package that exposes
``COMMAND = Command(name, help, configure, run)``; :data:`COMMANDS` names the modules, so
registering one is adding its name there. ``configure(parser)`` adds the subcommand's options
and ``run(args, out) -> int`` does the work and returns the exit status; an exception it raises
is reported by :func:`main` and turned into an exit status by :func:`exit_code_for`.

Start-up stays cheap: ``aioentra --version`` builds no parser and imports no subcommand, and
``aioentra NAME ...`` imports only NAME's module (``aioentra --help`` imports them all to list
them). The modules import aiohttp, msal, the emulator and the SDK's core inside ``run``, never
at module level, so ``aioentra decode`` loads none of them.

Exit statuses (:class:`Exit`; ``docs/cli.md`` has the table):

* 0: done; 1: anything else (an HTTP answer ``call`` does not classify, the emulator failing
  to start, an unexpected error); 2: usage (argparse's own status, and input that is not
  what the command takes, such as a TOKEN that is not a JWT);
* 3: configuration, 4: authentication or authorization, 5: identity provider or network:
  from the error raised, by :data:`EXIT_CODES`;
* 130: interrupted (Ctrl-C); 141: stdout was closed early (``aioentra ... | head``), as a
  program killed by SIGPIPE reports.

With ``--json`` a command writes one JSON document on stdout (an error, a usage error and an
interrupt too: ``{"error": {...}, "exit_code": N}``); without it, results go to stdout and
errors to stderr. Output that cannot be written (a closed pipe, a full disk) is never reported
as a network failure, and no traceback leaves :func:`main`.
Nothing here prints a secret, an assertion or an access token, except ``token --raw``, whose
whole point is to print the token: errors are rendered from :class:`~aioentra.AioEntraError`'s
fields, which the library builds without them.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

if TYPE_CHECKING:
    import argparse

__all__ = [
    "COMMANDS",
    "EXIT_CODES",
    "CliError",
    "Command",
    "Exit",
    "Output",
    "OutputError",
    "UsageError",
    "build_parser",
    "error_document",
    "exit_code_for",
    "load_command",
    "main",
    "version",
]

# -- the registry ------------------------------------------------------------------------------

COMMANDS: tuple[str, ...] = (
    "emulator",
    "token",
    "decode",
    "call",
    "doctor",
    "demo",
)
"""The subcommand modules of this package, in the order ``aioentra --help`` lists them."""


class Command(NamedTuple):
    """One subcommand: ``aioentra {name} ...`` (a NamedTuple: dataclasses would import
    ``inspect``, a tenth of the start-up)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    """Adds the subcommand's arguments to its (sub)parser."""
    run: Callable[[argparse.Namespace, Output], int]
    """Runs it; returns the exit status (an :class:`Exit`) or raises."""


def load_command(name: str) -> Command:
    """Import the subcommand module ``name`` and return its ``COMMAND``."""
    module = importlib.import_module(f"{__name__}.{name}")
    command = module.COMMAND
    if not isinstance(command, Command) or command.name != name:
        raise RuntimeError(f"{module.__name__}.COMMAND is not the Command {name!r}")
    return command


# -- exit statuses and the one error table ----------------------------------------------------


class Exit(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFIGURATION = 3
    AUTHENTICATION = 4
    UNAVAILABLE = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    """stdout was closed before the output was written (128 + SIGPIPE, what a shell reports
    for a program that SIGPIPE killed)."""


EXIT_CODES: Mapping[str, Exit] = {
    # The configuration is wrong: fix the settings, the scope or the files.
    "ConfigurationError": Exit.CONFIGURATION,
    "InvalidScopeError": Exit.CONFIGURATION,
    # The identity provider refused who the app is or what it asked for.
    "AuthenticationError": Exit.AUTHENTICATION,
    "CredentialRejectedError": Exit.AUTHENTICATION,
    "ApplicationNotFoundError": Exit.AUTHENTICATION,  # also a ConfigurationError
    "TenantNotFoundError": Exit.AUTHENTICATION,  # also a ConfigurationError
    "ConsentRequiredError": Exit.AUTHENTICATION,
    # An API refused a token (server-side validation): 401 invalid_token, 403 missing role.
    "TokenValidationError": Exit.AUTHENTICATION,
    "InvalidTokenError": Exit.AUTHENTICATION,
    "InsufficientPermissionsError": Exit.AUTHENTICATION,
    # Something did not answer, or not usefully: trying again later may work.
    "IdentityProviderUnavailableError": Exit.UNAVAILABLE,
    "ThrottledError": Exit.UNAVAILABLE,
    "CredentialUnavailableError": Exit.UNAVAILABLE,  # its source (vault, file, MI) failed
    "KeyVaultError": Exit.UNAVAILABLE,  # by its HTTP status: 401/403 -> 4, other 4xx -> 3
    "SecretsNotLoadedError": Exit.UNAVAILABLE,  # the highest status of its failures
    # Misuse of the library, which the command line does not expect.
    "ProviderClosedError": Exit.FAILURE,
    "AioEntraError": Exit.FAILURE,
}
"""Every public error type of :mod:`aioentra._errors` (by class name) -> its exit status.

The most derived class listed wins (:func:`exit_code_for` walks the MRO), so
``ApplicationNotFoundError`` is 4 although it is a ``ConfigurationError`` too.
"""


class CliError(Exception):
    """A failure the command line itself found (bad input, the network to an API)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        exit_code: Exit = Exit.FAILURE,
        kind: str = "CliError",
    ) -> None:
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.kind = kind
        super().__init__(message)


def exit_code_for(error: BaseException) -> Exit:
    """The exit status for ``error``: :data:`EXIT_CODES` for aioentra's errors, 5 for network
    errors (``OSError``, timeouts), 1 for anything else."""
    if isinstance(error, CliError):
        return error.exit_code
    mro = type(error).__mro__
    for cls in mro:
        if cls.__module__ == "aioentra._errors" and cls.__name__ in EXIT_CODES:
            if cls.__name__ in ("KeyVaultError", "SecretsNotLoadedError"):
                return _vault_exit(error)
            return EXIT_CODES[cls.__name__]
    if isinstance(error, OSError) or any(cls.__name__ == "TimeoutError" for cls in mro):
        return Exit.UNAVAILABLE  # (asyncio.TimeoutError is not the builtin one on 3.10)
    return Exit.FAILURE


def _vault_exit(error: BaseException) -> Exit:
    failures = getattr(error, "failures", None)
    if isinstance(failures, Mapping) and failures:
        return max(exit_code_for(failure) for failure in failures.values())
    status = getattr(error, "status", None)
    if status in (401, 403):
        return Exit.AUTHENTICATION  # the identity may not read it
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return Exit.CONFIGURATION  # no such secret, vault or version; disabled
    return Exit.UNAVAILABLE


_ERROR_FIELDS = ("hint", "error", "error_codes", "code", "status", "correlation_id", "trace_id")


def error_document(error: BaseException) -> dict[str, Any]:
    """What is shown of an error: its type, message, hint, codes and ids; nothing else.

    aioentra's errors carry no secret, assertion or token in these fields (they are built
    from the server's error description and our own text, and echoed secrets are masked).
    """
    if isinstance(error, CliError):
        document: dict[str, Any] = {"type": error.kind, "message": error.message}
        if error.hint:
            document["hint"] = error.hint
        return document
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        message = str(error) or type(error).__name__
    document = {"type": type(error).__name__, "message": message}
    for name in _ERROR_FIELDS:
        value = getattr(error, name, None)
        if value is not None and value != () and value != "":
            document[name] = list(value) if isinstance(value, tuple) else value
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)):
        document["retry_after"] = retry_after
    return document


def render_error(document: Mapping[str, Any]) -> list[str]:
    """The lines of an :func:`error_document` for a person: message, hint, codes, ids."""
    lines = [str(document["message"])]
    if document.get("hint"):
        lines.append(f"  hint: {document['hint']}")
        if "ca_file=" in str(document["hint"]):  # the library's words; the option's name here
            lines.append("  on the command line, trust a CA with --ca-file PEM")
    codes = [str(document["error"])] if document.get("error") else []
    codes += [f"AADSTS{code}" for code in document.get("error_codes", ())]
    if document.get("code") and document.get("code") != document.get("error"):
        codes.append(str(document["code"]))
    if document.get("status") is not None:
        codes.append(f"HTTP {document['status']}")
    if codes:
        lines.append(f"  codes: {' '.join(codes)}")
    ids = [
        f"{name}={document[name]}" for name in ("correlation_id", "trace_id") if name in document
    ]
    if ids:
        lines.append(f"  {' '.join(ids)}")
    return lines


# -- output --------------------------------------------------------------------------------------


class OutputError(Exception):
    """Writing to stdout or stderr failed (a closed pipe, a full disk): the command's output,
    not its network, failed. :func:`main` ends quietly on a closed pipe (exit 141) and says
    what happened otherwise (exit 1)."""

    def __init__(self, error: OSError, stream: str) -> None:
        self.error = error
        self.stream = stream
        super().__init__(f"cannot write to {stream}: {error.strerror or error}")


_CHUNK = 2048
"""Characters per write: at most 8 KiB of UTF-8, which ``BufferedWriter``'s buffer takes
whole. A larger write goes to the pipe directly, and when the reader closes the pipe in the
middle of it CPython keeps the partial count and drops the rest without an error, so a closed
pipe would go unnoticed; a flush of the buffer reports it."""


def _write(stream: str, text: str) -> None:
    """``text`` on ``sys.stdout`` / ``sys.stderr`` (looked up now: tests capture them),
    flushed; an ``OSError`` becomes :class:`OutputError`."""
    target = getattr(sys, stream)
    if target is None:  # no console at all (pythonw)
        return
    try:
        for start in range(0, len(text), _CHUNK):
            target.write(text[start : start + _CHUNK])
            target.flush()
    except OSError as exc:
        raise OutputError(exc, stream) from None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``: JSON has no such numbers (a token may hold ``1e400``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (no ``NaN``/``Infinity`` tokens) for ``value``."""
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, allow_nan=False)


class Output:
    """Where a command's results go: text for a person, or one JSON document (``--json``).

    ``sys.stdout`` / ``sys.stderr`` are looked up at each write (tests capture them). A write
    that fails raises :class:`OutputError`.
    """

    def __init__(self, *, json_mode: bool = False, command: str = "aioentra") -> None:
        self.json = json_mode
        self.command = command

    def line(self, text: str = "") -> None:
        """A line of the text result (stdout); nothing in JSON mode."""
        if not self.json:
            _write("stdout", text + "\n")

    def note(self, text: str) -> None:
        """A remark for the person watching (stderr), kept out of piped output and JSON."""
        if not self.json:
            _write("stderr", text + "\n")

    def document(self, document: Mapping[str, Any], *, compact: bool = False) -> None:
        """The JSON result (stdout); nothing in text mode."""
        if self.json:
            _write("stdout", dumps(document, indent=None if compact else 2) + "\n")

    def raw(self, text: str) -> None:
        """``text`` alone on stdout, whatever the mode (``token --raw``)."""
        _write("stdout", text + "\n")

    def error(self, error: BaseException, code: Exit) -> None:
        document = error_document(error)
        if self.json:
            _write("stdout", dumps({"error": document, "exit_code": int(code)}) + "\n")
            return
        first, *rest = render_error(document)
        _write(
            "stderr", "".join(f"{text}\n" for text in (f"{self.command}: error: {first}", *rest))
        )


def version() -> str:
    """The installed distribution's version (the package's own when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("aioentra")
    except metadata.PackageNotFoundError:
        from aioentra import __version__

        return __version__


def _print_version(json_mode: bool) -> None:
    value = version()
    _write("stdout", (json.dumps({"version": value}) if json_mode else f"aioentra {value}") + "\n")


# -- the parser ------------------------------------------------------------------------------------

_EPILOG = """\
exit status:
  0  ok                      3  configuration        130  interrupted
  1  other failure           4  authentication or authorization
  2  usage                   5  identity provider or network unavailable

See docs/cli.md. Secrets and tokens are never printed (except by 'token --raw')."""


class UsageError(CliError):
    """A usage error argparse found (bad options or arguments): exit status 2."""

    def __init__(self, message: str, *, usage: str, prog: str) -> None:
        super().__init__(
            message, hint=usage.strip() or None, exit_code=Exit.USAGE, kind="UsageError"
        )
        self.usage = usage
        self.prog = prog


def build_parser(
    only: str | None = None, *, json_mode: bool = False, raise_usage_errors: bool = False
) -> argparse.ArgumentParser:
    """The ``aioentra`` parser; with ``only``, just that subcommand's module is imported (the
    others get bare sub-parsers, enough to parse and to name them in errors).

    A usage error prints the usage and exits with 2, as argparse does, or with
    ``raise_usage_errors`` raises :class:`UsageError` (:func:`main` reports it, as JSON with
    ``--json``). What it prints goes through :class:`OutputError`'s checks. ``json_mode`` is
    whether ``--json`` is anywhere on the command line (``--version`` after a command cannot
    see a ``--json`` that came before it).
    """
    import argparse

    class Parser(argparse.ArgumentParser):
        def _print_message(self, message: str, file: Any = None) -> None:
            if message:
                _write("stderr" if file is sys.stderr else "stdout", message)

        def error(self, message: str) -> NoReturn:
            if not raise_usage_errors:
                super().error(message)
            raise UsageError(message, usage=self.format_usage(), prog=self.prog)

    class VersionAction(argparse.Action):
        def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
            _print_version(json_mode or bool(getattr(namespace, "json", False)))
            parser.exit()

    def add_common(target: argparse.ArgumentParser, *, top: bool) -> None:
        # After the subcommand, SUPPRESS keeps the top-level value when it is not given; -v
        # counts separately there ("verbose_after") and main adds both.
        target.add_argument(
            "--json",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="write one JSON document on stdout",
        )
        target.add_argument(
            "-v",
            "--verbose",
            action="count",
            dest="verbose" if top else "verbose_after",
            default=0 if top else argparse.SUPPRESS,
            help="log on stderr (-vv: more)",
        )
        target.add_argument(
            "--version",
            action=VersionAction,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print 'aioentra X.Y.Z' and exit",
        )

    parser = Parser(
        prog="aioentra",
        description="aioentra command line tools: tokens, authenticated calls, diagnostics and "
        "the local Entra ID emulator",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        command = load_command(name)
        child = sub.add_parser(
            name,
            help=command.help,
            description=command.help,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_common(child, top=False)
        command.configure(child)
    return parser


def _leading_options(argv: Sequence[str]) -> list[str]:
    """The top-level options: those before the subcommand (they take no values)."""
    head: list[str] = []
    for arg in argv:
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        head.append(arg)
    return head


def _json_requested(argv: Sequence[str]) -> bool:
    """``--json`` before or after the command (not after ``--``)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _chosen(argv: Sequence[str], head: Sequence[str]) -> str | None:
    """The subcommand to load alone, or ``None`` when the whole parser is needed (help, an
    unknown or missing command)."""
    if any(arg in ("-h", "--help") for arg in head) or len(head) >= len(argv):
        return None
    name = argv[len(head)]
    return name if name in COMMANDS else None


@contextlib.contextmanager
def _logging(verbose: int) -> Iterator[None]:
    """aioentra's log records: on stderr with ``-v``, else nowhere (the error report says what
    failed; Python's last-resort handler would print warnings twice)."""
    import logging

    logger = logging.getLogger("aioentra")
    handler: logging.Handler
    level = logger.level
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _Interrupted(CliError):
    def __init__(self) -> None:
        super().__init__("interrupted", exit_code=Exit.INTERRUPTED, kind="KeyboardInterrupt")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aioentra`` and ``python -m aioentra``; returns the exit status.

    Nothing escapes it but ``SystemExit``: a failed write to stdout or stderr ends quietly on
    a closed pipe (141) or is reported (1), Ctrl-C is 130 (a JSON document with ``--json``),
    and any other error is reported and is 1.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    json_mode = _json_requested(args_list)
    try:
        try:
            code = _main(args_list, json_mode)
            _flush("stdout")
            return code
        except KeyboardInterrupt:
            if json_mode:
                Output(json_mode=True).error(_Interrupted(), Exit.INTERRUPTED)
            return Exit.INTERRUPTED
        except OutputError:
            raise
        except Exception as error:  # outside a command's run (its parser, its module)
            code = exit_code_for(error)
            Output(json_mode=json_mode).error(error, code)
            return code
    except OutputError as failure:
        return _output_failed(failure)


def _main(args_list: list[str], json_mode: bool) -> int:
    head = _leading_options(args_list)
    if "--version" in head and not {"-h", "--help"} & set(head):
        _print_version("--json" in head)
        return Exit.OK
    parser = build_parser(
        only=_chosen(args_list, head), json_mode=json_mode, raise_usage_errors=True
    )
    try:
        args = parser.parse_args(args_list)
    except SystemExit as stop:  # --help and --version (0)
        return stop.code if isinstance(stop.code, int) else Exit.USAGE
    except UsageError as error:
        if json_mode:
            Output(json_mode=True).error(error, Exit.USAGE)
        else:
            _write("stderr", f"{error.usage}{error.prog}: error: {error.message}\n")
        return Exit.USAGE
    out = Output(json_mode=args.json, command=f"aioentra {args.command}")
    command = load_command(args.command)
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    with _logging(verbose):
        try:
            return int(command.run(args, out))
        except KeyboardInterrupt:
            if out.json:
                out.error(_Interrupted(), Exit.INTERRUPTED)
            return Exit.INTERRUPTED
        except OutputError:
            raise
        except Exception as error:
            code = exit_code_for(error)
            out.error(error, code)
            if verbose and code == Exit.FAILURE:
                import traceback

                _write(
                    "stderr",
                    "".join(traceback.format_exception(type(error), error, error.__traceback__)),
                )
            return code


def _flush(stream: str) -> None:
    target = getattr(sys, stream)
    if target is not None:
        try:
            target.flush()
        except OSError as exc:
            raise OutputError(exc, stream) from None


def _output_failed(failure: OutputError) -> int:
    """A write failed: stop writing to that stream (the interpreter's own flush at exit would
    fail again and print a traceback), then end quietly on a closed pipe (141), else say why
    on the other stream (1)."""
    _silence(failure.stream)
    error = failure.error
    if isinstance(error, BrokenPipeError) or error.errno in (errno.EPIPE, errno.ECONNRESET):
        return Exit.BROKEN_PIPE
    other = "stderr" if failure.stream == "stdout" else "stdout"
    with contextlib.suppress(OutputError):
        _write(other, f"aioentra: error: {failure}\n")
    return Exit.FAILURE


def _silence(stream: str) -> None:
    """Point ``sys.{stream}``'s file descriptor at the null device (Python's documented way
    to handle SIGPIPE); nothing to do for a stream that is not a file (a test's capture)."""
    target = getattr(sys, stream)
    try:
        descriptor = target.fileno()
    except (AttributeError, OSError, ValueError):
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, descriptor)
    except OSError:
        pass
    finally:
        os.close(null)
