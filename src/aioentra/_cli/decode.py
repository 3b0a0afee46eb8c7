"""``aioentra decode [TOKEN|-]``: a JWT's header and claims, offline; the signature is NOT checked.

The token is the user's own input, so its header and claims are shown whole; the signature
part never is (only its size). No network, and none of aiohttp, msal or the SDK is imported.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import CliError, Command, Exit, Output, dumps
from ._jwt import TIME_CLAIMS, NotAJwtError, parse_jwt, times, when

__all__ = ["COMMAND"]

NOT_VERIFIED = (
    "signature NOT verified: this shows what the token says, not that it is genuine or was "
    "issued to you"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "token",
        nargs="?",
        default="-",
        metavar="TOKEN",
        help="the JWT (a leading 'Bearer ' is fine); '-' or nothing reads it from stdin",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    if args.token == "-":
        if sys.stdin.isatty():
            out.note("reading the token from stdin (end with Ctrl-D)")
        text = sys.stdin.read()
    else:
        text = args.token
    try:
        token = parse_jwt(text)
    except NotAJwtError as error:
        raise CliError(
            error.message, hint=error.hint, exit_code=Exit.USAGE, kind="NotAJwtError"
        ) from None
    del text
    now = time.time()
    shown_times = times(token.claims, now)
    out.document(
        {
            "header": token.header,
            "claims": token.claims,
            "times": shown_times,
            "signature": {"verified": False, "bytes": token.signature_bytes},
        }
    )
    out.line(f"# {NOT_VERIFIED}")
    out.line("header:")
    out.line(_indented(token.header))
    out.line("claims:")
    out.line(_indented(token.claims))
    if shown_times:
        out.line("times (UTC):")
        for name in TIME_CLAIMS:
            if name in shown_times:
                out.line(f"  {name}  {when(float(token.claims[name]), now)}")
    out.line(f"signature: {token.signature_bytes} bytes, not verified")
    return Exit.OK


def _indented(value: object) -> str:
    text = dumps(value)
    return "\n".join(f"  {line}" for line in text.splitlines())


COMMAND = Command(
    "decode",
    "show a JWT's header and claims (offline; the signature is not checked)",
    configure,
    run,
)
