"""``aioentra demo``: the ToDo daemon and its protected API, offline, against the emulator.

It reproduces the External ID tutorial's daemon transcript line for line: the daemon loads
its certificate from the emulated Key Vault with the machine's (emulated) managed identity,
gets one app token, and posts, lists, edits and deletes to-dos through the ToDo API, which
validates every token and checks the app's roles. A summary follows the transcript.

``--scenario no-consent`` leaves the daemon's roles ungranted (the "forgot admin consent"
case): the API answers 403 and the command exits 4 with the hint. See :mod:`aioentra.demo`.
"""

from __future__ import annotations

import argparse
import asyncio

from . import Command, Exit, Output

__all__ = ["COMMAND"]

_SCENARIOS = {
    "default": "the daemon holds both app roles (admin consent given)",
    "no-consent": "the daemon holds no app role: the API refuses it with 403",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        choices=sorted(_SCENARIOS),
        default="default",
        help="; ".join(f"{name}: {what}" for name, what in _SCENARIOS.items()),
    )


def run(args: argparse.Namespace, out: Output) -> int:
    from aioentra.demo._scenario import run_offline

    transcript: list[str] = []

    def say(text: str) -> None:
        transcript.append(text)
        out.line(text)

    if args.scenario != "default":
        out.note(f"scenario {args.scenario}: {_SCENARIOS[args.scenario]}")
    summary = asyncio.run(run_offline(scenario=args.scenario, out=say))
    out.line("")
    for text in summary.lines():
        out.line(text)
    out.document(
        {
            "scenario": args.scenario,
            "transcript": transcript,
            "summary": {
                "api_calls": summary.api_calls,
                "token_requests": summary.token_requests,
                "managed_identity_requests": summary.managed_identity_requests,
                "cache_hits": summary.cache_hits,
                "elapsed_seconds": round(summary.elapsed, 3),
            },
        }
    )
    return Exit.OK


COMMAND = Command(
    "demo", "run the ToDo daemon and API against the embedded emulator", configure, run
)
