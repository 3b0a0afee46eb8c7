"""The ToDo daemon: gets an app token and posts, lists, edits and deletes to-dos.

    python daemon.py [appsettings.json]

Configured from ``appsettings.json``: ``AzureAd`` (Instance, TenantId, ClientId and one
``ClientCredentials`` entry: a client secret, a certificate file, or a certificate in Key
Vault, ``"SourceType": "KeyVault"``, read with the machine's managed identity) and
``DownstreamApi`` (the ToDo API's BaseUrl and scope). The code is
``aioentra.demo.todo_daemon``; ``aioentra demo`` runs it against the offline emulator.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aioentra import AioEntraError
from aioentra.demo import todo_daemon


def main() -> int:
    settings = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("appsettings.json")
    )
    try:
        asyncio.run(todo_daemon.run(settings))
    except AioEntraError as error:
        print(f"ToDoListClient: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
