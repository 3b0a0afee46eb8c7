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
* 130: interrupted (Ctrl-C).

With ``--json`` a command writes one JSON document on stdout (an error too:
``{"error": {...}, "exit_code": N}``); without it, results go to stdout and errors to stderr.
Nothing here prints a secret, an assertion or an access token, except ``token --raw``, whose
whole point is to print the token: errors are rendered from :class:`~aioentra.AioEntraError`'s
fields, which the library builds without them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import argparse

__all__ = [
    "COMMANDS",
    "EXIT_CODES",
    "CliError",
    "Command",
    "Exit",
    "Output",
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


class Output:
    """Where a command's results go: text for a person, or one JSON document (``--json``).

    ``sys.stdout`` / ``sys.stderr`` are looked up at each write (tests capture them).
    """

    def __init__(self, *, json_mode: bool = False, command: str = "aioentra") -> None:
        self.json = json_mode
        self.command = command

    def line(self, text: str = "") -> None:
        """A line of the text result (stdout); nothing in JSON mode."""
        if not self.json:
            print(text, file=sys.stdout, flush=True)

    def note(self, text: str) -> None:
        """A remark for the person watching (stderr), kept out of piped output and JSON."""
        if not self.json:
            print(text, file=sys.stderr, flush=True)

    def document(self, document: Mapping[str, Any], *, compact: bool = False) -> None:
        """The JSON result (stdout); nothing in text mode."""
        if self.json:
            text = json.dumps(document, indent=None if compact else 2, ensure_ascii=False)
            print(text, file=sys.stdout, flush=True)

    def raw(self, text: str) -> None:
        """``text`` alone on stdout, whatever the mode (``token --raw``)."""
        print(text, file=sys.stdout, flush=True)

    def error(self, error: BaseException, code: Exit) -> None:
        document = error_document(error)
        if self.json:
            print(
                json.dumps({"error": document, "exit_code": int(code)}, indent=2),
                file=sys.stdout,
                flush=True,
            )
            return
        first, *rest = render_error(document)
        print(f"{self.command}: error: {first}", file=sys.stderr, flush=True)
        for text in rest:
            print(text, file=sys.stderr, flush=True)


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
    print(json.dumps({"version": value}) if json_mode else f"aioentra {value}", flush=True)


# -- the parser ------------------------------------------------------------------------------------

_EPILOG = """\
exit status:
  0  ok                      3  configuration        130  interrupted
  1  other failure           4  authentication or authorization
  2  usage                   5  identity provider or network unavailable

See docs/cli.md. Secrets and tokens are never printed (except by 'token --raw')."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``aioentra`` parser; with ``only``, just that subcommand's module is imported (the
    others get bare sub-parsers, enough to parse and to name them in errors)."""
    import argparse

    class VersionAction(argparse.Action):
        def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
            _print_version(bool(getattr(namespace, "json", False)))
            parser.exit()

    parser = argparse.ArgumentParser(
        prog="aioentra",
        description="aioentra command line tools: tokens, authenticated calls, diagnostics and "
        "the local Entra ID emulator",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="write one JSON document on stdout")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log on stderr (-vv: more)",
    )
    parser.add_argument(
        "--version",
        action=VersionAction,
        nargs=0,
        default=argparse.SUPPRESS,
        help="print 'aioentra X.Y.Z' and exit",
    )
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
        # Also after the subcommand; SUPPRESS keeps the top-level value when it is not given.
        child.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="write one JSON document on stdout",
        )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aioentra`` and ``python -m aioentra``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    head = _leading_options(args_list)
    if "--version" in head and not {"-h", "--help"} & set(head):
        _print_version("--json" in head)
        return Exit.OK
    parser = build_parser(only=_chosen(args_list, head))
    try:
        args = parser.parse_args(args_list)
    except SystemExit as stop:  # --help (0) and usage errors (2)
        return stop.code if isinstance(stop.code, int) else Exit.USAGE
    out = Output(json_mode=args.json, command=f"aioentra {args.command}")
    command = load_command(args.command)
    with _logging(args.verbose):
        try:
            return int(command.run(args, out))
        except KeyboardInterrupt:
            return Exit.INTERRUPTED
        except Exception as error:
            code = exit_code_for(error)
            out.error(error, code)
            if args.verbose and code == Exit.FAILURE:
                import traceback

                traceback.print_exception(type(error), error, error.__traceback__)
            return code
