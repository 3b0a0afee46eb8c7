"""``aioentra emulator``: run the local identity platform until Ctrl-C / SIGTERM and print how
to point clients at it.

With ``--register-app NAME`` it registers an app and prints its client id **and client secret**
on standard output, once: that is deliberate, for local development against a throw-away
emulator whose secrets protect nothing. The managed identity endpoint's ``IDENTITY_HEADER``
value is printed for the same reason (clients must send it). Nothing is written to a log.

With ``--json`` the banner is one JSON document on one line (:func:`describe_json`), printed
once the emulator serves, so a script can read the first line and go; nothing else is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

from . import CliError, Command, Exit, Output

if TYPE_CHECKING:
    from aioentra.emulator import App, Emulator, Fault

__all__ = ["COMMAND", "describe", "describe_json", "parse_fault"]


def configure(parser: argparse.ArgumentParser) -> None:
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
    from aioentra._config import CA_FILE_VARIABLE

    lines = [
        f"aioentra emulator listening on {emu.base_url}",
        f"tenant_id={emu.tenant_id}",
        f"tenant_domain={emu.domain}",
        f"authority={emu.authority}",
        f"token_endpoint={emu.token_endpoint}",
        f"ca_file={emu.ca_file}",
        "",
        "# trust the emulator CA per client (verify= / connection_verify= / ca_file=), or by",
        "# variable. aioentra's from_environment()/from_file() read AIOENTRA_CA_FILE (it",
        "# replaces the system CAs for aioentra's own connections only):",
        f"export {CA_FILE_VARIABLE}={emu.ca_file}",
        "# requests (msal, azure-identity sync) reads REQUESTS_CA_BUNDLE, not SSL_CERT_FILE;",
        "# Python's default trust (aioentra without a CA option, httpx, aiohttp when imported)",
        "# reads SSL_CERT_FILE. Both replace the public CAs: give them a bundle that keeps",
        "# them (the CA file is deleted when the emulator stops):",
        f'#   cat "$(python -m certifi)" {emu.ca_file} > emulator-bundle.pem',
        "export REQUESTS_CA_BUNDLE=$PWD/emulator-bundle.pem",
        "#   export SSL_CERT_FILE=$PWD/emulator-bundle.pem",
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


def describe_json(emu: Emulator, apps: list[App]) -> dict[str, Any]:
    """The banner as one JSON document: addresses, the CA file, the variables to export
    (``AIOENTRA_CA_FILE`` among them: aioentra's factories then trust the emulator), and the
    registered apps (with their secrets, as the text banner prints them)."""
    from aioentra._config import CA_FILE_VARIABLE

    return {
        "base_url": emu.base_url,
        "tenant_id": emu.tenant_id,
        "tenant_domain": emu.domain,
        "authority": emu.authority,
        "token_endpoint": emu.token_endpoint,
        "ca_file": emu.ca_file,
        "vault_url": emu.vault.url,
        "environment": {
            CA_FILE_VARIABLE: emu.ca_file,
            "AZURE_AUTHORITY_HOST": emu.base_url,
            "AZURE_TENANT_ID": emu.tenant_id,
            "IDENTITY_ENDPOINT": emu.managed_identity.endpoint,
            "IDENTITY_HEADER": emu.managed_identity.header,
        },
        "apps": [
            {"name": app.name, "client_id": app.client_id, "client_secret": app.secret}
            for app in apps
        ],
    }


async def serve_emulator(
    args: argparse.Namespace,
    *,
    out: Callable[[str], None],
    document: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; the banner goes to ``out`` line by line, or to
    ``document`` as one JSON document when it is given."""
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
        if document is not None:
            apps = [emu.add_app(name) for name in args.register_app]
            document(describe_json(emu, apps))
            await stop.wait()
            return
        for line in describe(emu):
            out(line)
        for name in args.register_app:
            app = emu.add_app(name)
            out(f"app {name}: client_id={app.client_id} client_secret={app.secret}")
        out("serving; press Ctrl-C to stop")
        await stop.wait()
    out("stopped")


def run(args: argparse.Namespace, out: Output) -> int:
    def document(value: dict[str, Any]) -> None:
        out.document(value, compact=True)

    try:
        asyncio.run(serve_emulator(args, out=out.line, document=document if out.json else None))
    except (OSError, ValueError, KeyError) as exc:
        if out.json:
            out.error(CliError(str(exc), kind=type(exc).__name__), Exit.FAILURE)
        else:
            out.note(f"aioentra emulator: {exc}")
        return Exit.FAILURE
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    return Exit.OK


COMMAND = Command("emulator", "run the local Entra ID emulator", configure, run)
