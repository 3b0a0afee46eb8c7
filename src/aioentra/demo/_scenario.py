"""``aioentra demo``: the ToDo daemon and API against the embedded emulator, offline.

What an administrator would set up once in a tenant, done here in a few lines:

1. the ToDoListAPI registration, exposing the app roles ``ToDoList.Read.All`` and
   ``ToDoList.ReadWrite.All``;
2. the ToDoListClient daemon registration with a certificate credential, granted both roles
   (admin consent) -- or none with the ``no-consent`` scenario;
3. the certificate stored in Key Vault, readable by this machine's managed identity.

Then the two programs run from ``appsettings.json`` files written for the emulator: the API
on HTTPS loopback, the daemon loading its certificate from the vault at startup.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiohttp import web

from . import todo_daemon
from .todo_api import READ_ROLES, WRITE_ROLES, ApiSettings, create_app

__all__ = ["DAEMON_OBJECT_ID", "Scenario", "Summary", "run_offline"]

Scenario = Literal["default", "no-consent"]
DAEMON_OBJECT_ID = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
"""The daemon's service principal (the tutorial's "User ID" of every to-do)."""
CERTIFICATE_NAME = "todo-daemon-certificate"


@dataclass(frozen=True)
class Summary:
    """What the run cost."""

    api_calls: int
    token_requests: int
    """Token requests the daemon sent to the identity provider."""
    managed_identity_requests: int
    """Token requests to the managed-identity endpoint (for Key Vault)."""
    elapsed: float

    @property
    def cache_hits(self) -> int:
        """API calls whose token came from the provider's cache."""
        return max(self.api_calls - self.token_requests, 0)

    def lines(self) -> list[str]:
        return [
            f"Token requests sent: {self.token_requests} (daemon), "
            f"{self.managed_identity_requests} (managed identity, for Key Vault)",
            f"Cache hits: {self.cache_hits} of {self.api_calls} API calls",
            f"Elapsed: {self.elapsed:.2f} s",
        ]


async def run_offline(
    *, scenario: Scenario = "default", out: Callable[[str], None] = print
) -> Summary:
    """Run the ToDo daemon against the ToDo API and the emulator; the daemon prints through
    ``out``. A refused call raises the daemon's typed error (the no-consent scenario's
    :class:`~aioentra.InsufficientPermissionsError`)."""
    from aioentra.emulator import MANAGED_IDENTITY_VARIABLES, Emulator

    started = time.perf_counter()
    async with Emulator() as emu:
        api_id = str(uuid.uuid4())
        api = emu.add_api(
            f"api://{api_id}", roles=[*READ_ROLES, *WRITE_ROLES], app_id=api_id, name="ToDoListAPI"
        )
        daemon = emu.add_app(
            "ToDoListClient", secret=False, certificate=True, object_id=DAEMON_OBJECT_ID
        )
        if scenario == "default":
            emu.grant(daemon, api, [*READ_ROLES, *WRITE_ROLES])
        material = daemon.certificate
        assert material is not None
        assert material.private_key_pem is not None
        emu.vault.set_certificate(
            CERTIFICATE_NAME, key_pem=material.private_key_pem, cert_pem=material.certificate_pem
        )
        identity = emu.managed_identity.system_assigned
        emu.vault.grant(identity, ["get"], certificates=["get"])

        with tempfile.TemporaryDirectory(prefix="aioentra-demo-") as folder:
            api_settings = _write(
                Path(folder, "ToDoListAPI", "appsettings.json"),
                {
                    "AzureAd": {
                        "Instance": emu.base_url + "/",
                        "TenantId": emu.tenant_id,
                        "ClientId": api.app_id,
                        "AppPermissions": {"Read": list(READ_ROLES), "Write": list(WRITE_ROLES)},
                    }
                },
            )
            runner = web.AppRunner(
                create_app(ApiSettings.from_file(api_settings), ca_file=emu.ca_file),
                access_log=None,
            )
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=emu.server_ssl_context())
                await site.start()
                port = runner.addresses[0][1]
                client_settings = _write(
                    Path(folder, "ToDoListClient", "appsettings.json"),
                    {
                        "AzureAd": {
                            "Instance": emu.base_url + "/",
                            "TenantId": emu.tenant_id,
                            "ClientId": daemon.client_id,
                            "ClientCredentials": [
                                {
                                    "SourceType": "KeyVault",
                                    "KeyVaultUrl": emu.vault.url,
                                    "KeyVaultCertificateName": CERTIFICATE_NAME,
                                }
                            ],
                        },
                        "DownstreamApi": {
                            "BaseUrl": f"https://localhost:{port}/",
                            "RelativePath": "api/todolist",
                            "Scopes": [f"{api.identifier_uri}/.default"],
                        },
                    },
                )
                with _environment(emu.managed_identity.environ, MANAGED_IDENTITY_VARIABLES):
                    # Offline: a proxy the environment names (HTTPS_PROXY) must not be used.
                    calls = await todo_daemon.run(
                        client_settings, out=out, ca_file=emu.ca_file, trust_env=False
                    )
            finally:
                await runner.cleanup()
        return Summary(
            api_calls=calls,
            token_requests=emu.requests.count("token", client_id=daemon.client_id),
            managed_identity_requests=emu.requests.count("managed_identity"),
            elapsed=time.perf_counter() - started,
        )


def _write(path: Path, document: Mapping[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@contextlib.contextmanager
def _environment(variables: Mapping[str, str], sources: Sequence[str]) -> Iterator[None]:
    """This process's managed identity is the emulator's, for the ``with`` block only
    (``sources``: every variable that could name another one)."""
    saved = {name: os.environ.get(name) for name in sources}
    for name in sources:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
