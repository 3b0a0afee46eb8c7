"""examples/todo: the ToDo API and daemon as separate programs, from appsettings.json files."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from pathlib import Path

import pytest
import trustme

from aioentra.emulator import App, Emulator

from .conftest import EXAMPLES, run_example
from .test_demo import TRANSCRIPT
from .test_example_web_service import free_port

pytestmark = pytest.mark.anyio

API = EXAMPLES / "todo" / "ToDoListAPI" / "app.py"
DAEMON = EXAMPLES / "todo" / "ToDoListClient" / "daemon.py"
ROLES = ["ToDoList.Read.All", "ToDoList.ReadWrite.All"]


def test_the_committed_settings_are_the_tutorials_placeholders() -> None:
    client = json.loads((DAEMON.parent / "appsettings.json").read_text())
    api = json.loads((API.parent / "appsettings.json").read_text())
    assert client["AzureAd"]["ClientId"] == "Enter_the_Application_Id_Here"
    assert client["DownstreamApi"]["RelativePath"] == "api/todolist"
    assert api["AzureAd"]["AppPermissions"]["Write"] == ["ToDoList.ReadWrite.All"]


def _files(
    emu: Emulator, trust_bundle: Path, folder: Path, daemon: App, api_id: str, port: int
) -> Path:
    """Settings for both programs, the API's TLS certificate and a bundle trusting its CA."""
    ca = trustme.CA()  # the API's own certificate, from another CA the daemon trusts too
    server = ca.issue_cert("localhost")
    server.cert_chain_pems[0].write_to_path(folder / "localhost.pem")
    server.private_key_pem.write_to_path(folder / "localhost-key.pem")
    bundle = folder / "bundle.pem"
    bundle.write_text(trust_bundle.read_text() + "\n" + ca.cert_pem.bytes().decode())
    azure_ad = {"Instance": emu.base_url + "/", "TenantId": emu.tenant_id}
    (folder / "api.json").write_text(json.dumps({"AzureAd": azure_ad | {"ClientId": api_id}}))
    credential = {"SourceType": "ClientSecret", "ClientSecret": daemon.secret}
    client = {
        "AzureAd": azure_ad | {"ClientId": daemon.client_id, "ClientCredentials": [credential]},
        "DownstreamApi": {
            "BaseUrl": f"https://localhost:{port}/",
            "RelativePath": "api/todolist",
            "Scopes": [f"api://{api_id}/.default"],
        },
    }
    (folder / "client.json").write_text(json.dumps(client))
    return bundle


async def test_the_api_and_the_daemon_run_as_programs_from_their_settings(
    aioentra_isolated: Emulator, base_env: dict[str, str], trust_bundle: Path, tmp_path: Path
) -> None:
    emu = aioentra_isolated
    api_id = str(uuid.uuid4())
    api = emu.add_api(f"api://{api_id}", roles=ROLES, app_id=api_id)
    object_id = str(uuid.uuid4())
    daemon = emu.add_app("todo-example", object_id=object_id)
    emu.grant(daemon, api, ROLES)
    port = free_port()
    bundle = _files(emu, trust_bundle, tmp_path, daemon, api_id, port)
    env = base_env | {"SSL_CERT_FILE": str(bundle)}
    api_settings, client_settings = tmp_path / "api.json", tmp_path / "client.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(API),
        str(api_settings),
        "--port",
        str(port),
        "--certfile",
        str(tmp_path / "localhost.pem"),
        "--keyfile",
        str(tmp_path / "localhost-key.pem"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 30)
        assert f"https://localhost:{port}" in ready.decode()
        run = await run_example(DAEMON, str(client_settings), env=env)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(process.communicate(), 30)
    assert run.returncode == 0, run.stderr
    demo_id = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    expected = [line.replace(demo_id, object_id) for line in TRANSCRIPT]
    assert run.lines == expected
    assert emu.requests.count("token", client_id=daemon.client_id) == 1
    assert process.returncode == 0, errors.decode()
    run.assert_nothing_leaked(daemon.secret or "")
