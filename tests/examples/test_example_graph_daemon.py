"""examples/graph_daemon: a parameters.json daemon listing users through a local fake Graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from aioentra.emulator import App, Emulator

from .conftest import EXAMPLES, Handler, bearer_claims, https_api, run_example

pytestmark = pytest.mark.anyio

DAEMON = EXAMPLES / "graph_daemon" / "daemon.py"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Graph's access tokens carry its resource URI as the audience (not its app id,
# 00000003-0000-0000-c000-000000000000), and so do the emulator's.
GRAPH_AUDIENCE = "https://graph.microsoft.com"

USERS = [["Adele Vance", "Alex Wilber"], ["Megan Bowen"]]  # two pages


def write_parameters(path: Path, emu: Emulator, app: App, endpoint: str, secret: str) -> Path:
    """A parameters.json as msal's sample has it, pointed at the emulator and the fake Graph."""
    path.write_text(
        json.dumps(
            {
                "authority": emu.authority,
                "client_id": app.client_id,
                "scope": [GRAPH_SCOPE],
                "secret": secret,
                "endpoint": endpoint,
            }
        )
    )
    return path


def fake_graph(emu: Emulator, callers: list[str]) -> dict[str, Handler]:
    """``/v1.0/users`` in two pages, for Graph tokens only; ``callers`` gets each ``azp``."""

    async def users(request: web.Request) -> web.Response:
        claims = bearer_claims(emu, request, GRAPH_AUDIENCE)
        callers.append(str(claims["azp"]))
        page = int(request.query.get("page", "0"))
        body: dict[str, object] = {"value": [{"displayName": name} for name in USERS[page]]}
        if page + 1 < len(USERS):
            body["@odata.nextLink"] = str(request.url.with_query(page=str(page + 1)))
        return web.json_response(body)

    return {"/v1.0/users": users}


def test_committed_parameters_are_msal_sample_placeholders() -> None:
    parameters = json.loads((DAEMON.parent / "parameters.json").read_text())
    assert parameters == {
        "authority": "https://login.microsoftonline.com/Enter_the_Tenant_Name_Here",
        "client_id": "Enter_the_Application_Id_Here",
        "scope": [GRAPH_SCOPE],
        "secret": "Enter_the_Client_Secret_Here",
        "endpoint": "https://graph.microsoft.com/v1.0/users",
    }


async def test_lists_every_page_of_users_with_one_token(
    aioentra_isolated: Emulator, aioentra_app: App, base_env: dict[str, str], tmp_path: Path
) -> None:
    emu, app = aioentra_isolated, aioentra_app
    assert app.secret is not None
    callers: list[str] = []
    async with https_api(emu, fake_graph(emu, callers)) as graph:
        parameters = write_parameters(
            tmp_path / "parameters.json", emu, app, f"{graph}/v1.0/users", app.secret
        )
        run = await run_example(DAEMON, str(parameters), env=base_env)

    assert run.returncode == 0, run.stderr
    assert run.lines == ["Adele Vance", "Alex Wilber", "Megan Bowen", "3 users"]
    assert callers == [app.client_id, app.client_id]  # both pages, with the app's token
    assert emu.requests.count("token", client_id=app.client_id) == 1  # one token, two calls
    run.assert_nothing_leaked(app.secret)


async def test_wrong_secret_exits_with_the_hint(
    aioentra_isolated: Emulator, aioentra_app: App, base_env: dict[str, str], tmp_path: Path
) -> None:
    emu, app = aioentra_isolated, aioentra_app
    wrong = "not-the-secret-" + "x" * 20
    callers: list[str] = []
    async with https_api(emu, fake_graph(emu, callers)) as graph:
        parameters = write_parameters(
            tmp_path / "parameters.json", emu, app, f"{graph}/v1.0/users", wrong
        )
        run = await run_example(DAEMON, str(parameters), env=base_env)

    assert run.returncode == 1
    assert run.stdout == ""
    assert "AADSTS7000215: Invalid client secret provided." in run.error
    assert run.hint == "the client secret is wrong: use the secret's Value, not its Secret ID."
    assert callers == []  # Graph was never called without a token
    assert emu.requests.count("token", client_id=app.client_id, status=401) == 1
    run.assert_nothing_leaked(wrong)
