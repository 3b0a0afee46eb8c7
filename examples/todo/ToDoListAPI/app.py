"""The ToDo API, protected by Entra ID app roles, on aiohttp.web.

    python app.py [appsettings.json] --certfile localhost.pem --keyfile localhost-key.pem

It validates every bearer token against the tenant's signing keys (issuer, audience, expiry)
and requires ``ToDoList.Read.All`` to read and ``ToDoList.ReadWrite.All`` to write. Fill in
``appsettings.json`` from the API's app registration. The code is
``aioentra.demo.todo_api``; ``aioentra demo`` runs it against the offline emulator.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path

from aiohttp import web

from aioentra import AioEntraError
from aioentra.demo.todo_api import ApiSettings, create_app


def _say(text: str) -> None:
    print(text, flush=True)  # "Running on https://...": a supervisor can wait for it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="?", default=Path(__file__).with_name("appsettings.json"))
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=44351)
    parser.add_argument("--certfile", required=True, help="the server's certificate (PEM)")
    parser.add_argument("--keyfile", required=True, help="the server's private key (PEM)")
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.certfile, args.keyfile)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        print(f"ToDoListAPI: cannot load the TLS certificate and key: {reason}", file=sys.stderr)
        print("hint: give --certfile and --keyfile PEM files that exist", file=sys.stderr)
        return 3
    try:
        app = create_app(ApiSettings.from_file(args.settings))
        web.run_app(app, host=args.host, port=args.port, ssl_context=context, print=_say)
    except AioEntraError as error:
        print(f"ToDoListAPI: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 3
    except OSError as error:  # the port is taken, the host does not resolve
        print(
            f"ToDoListAPI: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
