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


# -- failures are errors with hints, never tracebacks -------------------------------------------


async def test_the_daemon_says_when_the_api_is_not_running(
    aioentra_isolated: Emulator, base_env: dict[str, str], trust_bundle: Path, tmp_path: Path
) -> None:
    emu = aioentra_isolated
    api_id = str(uuid.uuid4())
    api = emu.add_api(f"api://{api_id}", roles=ROLES, app_id=api_id)
    daemon = emu.add_app("todo-example-no-api")
    try:
        emu.grant(daemon, api, ROLES)
        port = free_port()  # nothing listens there
        bundle = _files(emu, trust_bundle, tmp_path, daemon, api_id, port)
        env = base_env | {"SSL_CERT_FILE": str(bundle)}
        run = await run_example(DAEMON, str(tmp_path / "client.json"), env=env)
    finally:
        emu.remove_app(daemon)
        emu.remove_api(api)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.lines == ["Posting a to-do..."]
    message, hint = run.stderr.splitlines()
    assert message.startswith(f"ToDoListClient: POST https://localhost:{port}/api/todolist failed")
    assert hint.startswith(f"hint: is the ToDo API running at https://localhost:{port}? ")
    run.assert_nothing_leaked(daemon.secret or "")


@pytest.mark.parametrize(
    ("downstream", "says"),
    [
        ({"BaseUrl": 5}, "'DownstreamApi.BaseUrl' must be the API's https URL"),
        ({"BaseUrl": "localhost:44351"}, "'DownstreamApi.BaseUrl' must be the API's https URL"),
        ({"RelativePath": 5}, "'DownstreamApi.RelativePath' must be a string"),
        ({"RelativePath": ["api"]}, "'DownstreamApi.RelativePath' must be a string"),
        ({"Scopes": "api://x/.default"}, "'DownstreamApi.Scopes' must hold one scope"),
        ({"Scopes": [5]}, "'DownstreamApi.Scopes' must hold one scope"),
    ],
)
def test_the_daemons_downstream_settings_are_checked(
    tmp_path: Path, downstream: dict[str, object], says: str
) -> None:
    from aioentra import ConfigurationError
    from aioentra.demo.todo_daemon import ClientSettings

    good = {
        "BaseUrl": "https://localhost:44351/",
        "RelativePath": "api/todolist",
        "Scopes": ["api://x/.default"],
    }
    settings = tmp_path / "appsettings.json"
    settings.write_text(json.dumps({"DownstreamApi": good}))
    assert ClientSettings.from_file(settings).url == "https://localhost:44351/api/todolist"
    settings.write_text(json.dumps({"DownstreamApi": good | downstream}))
    with pytest.raises(ConfigurationError) as info:
        ClientSettings.from_file(settings)
    assert says in info.value.message and info.value.hint


async def test_the_daemon_with_bad_settings_is_a_clean_error(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    settings = tmp_path / "client.json"
    downstream = {
        "BaseUrl": "https://localhost:1/",
        "RelativePath": 5,
        "Scopes": ["api://x/.default"],
    }
    settings.write_text(json.dumps({"DownstreamApi": downstream}))
    run = await run_example(DAEMON, str(settings), env=base_env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "'DownstreamApi.RelativePath' must be a string" in run.stderr


@pytest.mark.parametrize("missing", ["certfile", "keyfile"])
async def test_the_api_without_its_certificate_is_a_clean_error(
    base_env: dict[str, str], tmp_path: Path, missing: str
) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("localhost")
    files = {"certfile": tmp_path / "localhost.pem", "keyfile": tmp_path / "localhost-key.pem"}
    server.cert_chain_pems[0].write_to_path(files["certfile"])
    server.private_key_pem.write_to_path(files["keyfile"])
    files[missing] = tmp_path / "nonexistent.pem"
    args = ["--certfile", str(files["certfile"]), "--keyfile", str(files["keyfile"])]
    run = await run_example(API, str(API.parent / "appsettings.json"), *args, env=base_env)
    assert run.returncode == 3
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[0].startswith(
        "ToDoListAPI: cannot load the TLS certificate and key: "
    )
    assert "hint: give --certfile and --keyfile" in run.stderr


@pytest.mark.parametrize(
    "azure_ad",
    [
        {"Instance": 5, "TenantId": "t", "ClientId": "c"},
        {"Instance": "https://x.ciamlogin.com/", "TenantId": ["t"], "ClientId": {"a": 1}},
    ],
)
async def test_the_api_with_settings_of_the_wrong_type_is_a_clean_error(
    base_env: dict[str, str], tmp_path: Path, azure_ad: dict[str, object]
) -> None:
    from aioentra import ConfigurationError
    from aioentra.demo.todo_api import ApiSettings

    settings = tmp_path / "api.json"
    settings.write_text(json.dumps({"AzureAd": azure_ad}))
    with pytest.raises(ConfigurationError, match="must be strings"):
        ApiSettings.from_file(settings)
    ca = trustme.CA()
    server = ca.issue_cert("localhost")
    server.cert_chain_pems[0].write_to_path(tmp_path / "localhost.pem")
    server.private_key_pem.write_to_path(tmp_path / "localhost-key.pem")
    args = ["--certfile", str(tmp_path / "localhost.pem")]
    args += ["--keyfile", str(tmp_path / "localhost-key.pem"), "--port", str(free_port())]
    run = await run_example(API, str(settings), *args, env=base_env)
    assert run.returncode == 3
    assert "Traceback" not in run.stderr
    assert "must be strings" in run.stderr
