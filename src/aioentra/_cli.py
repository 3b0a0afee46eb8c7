"""The ``aioentra`` command line.

Subcommands are small functions registered in :data:`COMMANDS`; each gets its own argparse
sub-parser from a ``configure`` function and runs with the parsed namespace. Add one by writing
``configure_x(parser)`` and ``run_x(args) -> int`` and listing them in ``COMMANDS``.

``aioentra emulator`` runs the local identity platform until Ctrl-C / SIGTERM and prints how to
point clients at it. With ``--register-app NAME`` it registers an app and prints its client id
**and client secret** on standard output, once: that is deliberate, for local development against
a throw-away emulator whose secrets protect nothing. The managed identity endpoint's
``IDENTITY_HEADER`` value is printed for the same reason (clients must send it). Nothing is
written to a log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

if TYPE_CHECKING:
    from aioentra.emulator import Emulator, Fault

__all__ = ["COMMANDS", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- emulator ----------------------------------------------------------------------------------


def configure_emulator(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="HTTPS port (default: ephemeral)")
    parser.add_argument(
        "--config", metavar="FILE", help="registration file (JSON, or TOML on 3.11+)"
    )
    parser.add_argument("--tenant-id", help="GUID of the default tenant (default: random)")
    parser.add_argument(
        "--token-lifetime", type=int, default=None, help="access token lifetime in seconds (> 300)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ENDPOINT:KIND[:ARG[:COUNT]]",
        help=(
            "inject a fault, e.g. token:status:503, token:throttle:5, token:latency:2.5, "
            "discovery:html:502, token:reset, token:status:503:2 (COUNT default: until stopped)"
        ),
    )
    parser.add_argument(
        "--register-app",
        action="append",
        default=[],
        metavar="NAME",
        help="register an app and print its client id and secret on stdout (local dev only)",
    )


def parse_fault(text: str) -> Fault:
    """``endpoint:kind[:arg[:count]]`` -> :class:`Fault`; ``arg`` is the status for
    ``status``/``html``,
    the ``Retry-After`` seconds for ``throttle`` and the delay seconds for ``latency``."""
    from aioentra.emulator import Fault
    from aioentra.emulator._faults import FaultKind

    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"--fault {text!r}: expected ENDPOINT:KIND[:ARG[:COUNT]]")
    endpoint, kind = parts[0], parts[1]
    if kind not in get_args(FaultKind):
        raise ValueError(f"--fault {text!r}: unknown kind {kind!r}")
    arg = parts[2] if len(parts) > 2 and parts[2] else None
    count = int(parts[3]) if len(parts) > 3 else None
    fault_kind: FaultKind = kind  # type: ignore[assignment]
    if kind in ("status", "html"):
        return Fault(endpoint, fault_kind, status=int(arg) if arg else None, count=count)
    if kind == "throttle":
        return Fault(endpoint, fault_kind, retry_after=float(arg) if arg else None, count=count)
    if kind == "latency":
        return Fault(endpoint, fault_kind, delay=float(arg) if arg else 1.0, count=count)
    return Fault(endpoint, fault_kind, count=count)


def describe(emu: Emulator) -> list[str]:
    """The lines telling a developer how to point clients at ``emu``."""
    lines = [
        f"aioentra emulator listening on {emu.base_url}",
        f"tenant_id={emu.tenant_id}",
        f"tenant_domain={emu.domain}",
        f"authority={emu.authority}",
        f"token_endpoint={emu.token_endpoint}",
        f"ca_file={emu.ca_file}",
        "",
        "# trust the emulator CA per client (verify= / connection_verify= / ca_file=), or",
        "# process-wide with a bundle that keeps the public CAs (a bare CA file as",
        "# SSL_CERT_FILE would replace them, and it is deleted when the emulator stops):",
        f'#   cat "$(python -m certifi)" {emu.ca_file} > emulator-bundle.pem',
        "export REQUESTS_CA_BUNDLE=$PWD/emulator-bundle.pem",
        f"export AZURE_AUTHORITY_HOST={emu.base_url}",
        "# msal: ConfidentialClientApplication(client_id, client_credential=secret,",
        f"#     authority='{emu.authority}', instance_discovery=False)",
        "# azure-identity: ClientSecretCredential(tenant_id, client_id, secret,",
        f"#     authority='{emu.base_url}', disable_instance_discovery=True,"
        f" connection_verify='{emu.ca_file}')",
    ]
    lines += [
        f"export IDENTITY_ENDPOINT={emu.managed_identity.endpoint}",
        f"export IDENTITY_HEADER={emu.managed_identity.header}",
        f"vault_url={emu.vault.url}",
    ]
    return lines


async def serve_emulator(args: argparse.Namespace, *, out: Callable[[str], None]) -> None:
    from aioentra.emulator import Emulator, EmulatorConfig

    config = EmulatorConfig.load(args.config) if args.config else None
    emu = Emulator(
        config=config, port=args.port, tenant_id=args.tenant_id, token_lifetime=args.token_lifetime
    )
    for text in args.fault:
        emu.faults.add(parse_fault(text))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises KeyboardInterrupt
            loop.add_signal_handler(signum, stop.set)
    async with emu:
        for line in describe(emu):
            out(line)
        for name in args.register_app:
            app = emu.add_app(name)
            out(f"app {name}: client_id={app.client_id} client_secret={app.secret}")
        out("serving; press Ctrl-C to stop")
        await stop.wait()
    out("stopped")


def run_emulator(args: argparse.Namespace) -> int:
    def out(line: str) -> None:
        print(line, flush=True)

    try:
        asyncio.run(serve_emulator(args, out=out))
    except (OSError, ValueError, KeyError) as exc:
        print(f"aioentra emulator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("emulator", "run the local Entra ID emulator", configure_emulator, run_emulator),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aioentra", description="aioentra command line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.configure(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aioentra`` and ``python -m aioentra``; returns the exit status."""
    args = build_parser().parse_args(argv)
    command = next(c for c in COMMANDS if c.name == args.command)
    return command.run(args)
