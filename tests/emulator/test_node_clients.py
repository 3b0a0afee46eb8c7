"""The unmodified ``@azure/msal-node`` against the emulator, from a real Node.js process.

The client (``node_clients/acquire.mjs``, its version pinned by ``package-lock.json``) is set
up as docs/emulator.md says: ``authority`` = ``emu.authority``, the emulator's host in
``knownAuthorities`` and the CA in ``NODE_EXTRA_CA_CERTS``. Needs Node.js and
``npm ci --prefix tests/emulator/node_clients``; skipped without them, unless
``AIOENTRA_REQUIRE_NODE_CLIENTS=1`` makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aioentra.emulator import Emulator

CLIENTS = Path(__file__).parent / "node_clients"
REQUIRE = "AIOENTRA_REQUIRE_NODE_CLIENTS"
SCOPE = "api://node-orders/.default"


def _node() -> str:
    node = shutil.which("node")
    missing = (
        "Node.js (node) is not on PATH"
        if node is None
        else "@azure/msal-node is not installed (npm ci --prefix tests/emulator/node_clients)"
        if not (CLIENTS / "node_modules" / "@azure" / "msal-node").is_dir()
        else None
    )
    if missing is not None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{missing}, and {REQUIRE}=1")
        pytest.skip(missing)
    assert node is not None
    return node


def acquire(emu: Emulator, client_id: str, secret: str) -> dict[str, Any]:
    """Run ``acquire.mjs`` with only what Node needs in its environment: PATH and the CA."""
    request = {
        "authority": emu.authority,
        "clientId": client_id,
        "clientSecret": secret,
        "scope": SCOPE,
    }
    result = subprocess.run(
        [_node(), str(CLIENTS / "acquire.mjs"), json.dumps(request)],
        env={"PATH": os.environ.get("PATH", ""), "NODE_EXTRA_CA_CERTS": emu.ca_file},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_msal_node_gets_a_token_and_caches_it(threaded_emu: Emulator) -> None:
    api = threaded_emu.add_api("api://node-orders", ["Orders.Read"])
    app = threaded_emu.add_app("node-daemon")
    threaded_emu.grant(app, api, ["Orders.Read"])
    result = acquire(threaded_emu, app.client_id, str(app.secret))
    assert "errorCode" not in result, result
    claims = threaded_emu.verify_access_token(result["token"])
    assert (claims["aud"], claims["azp"], claims["roles"]) == (
        api.app_id,
        app.client_id,
        ["Orders.Read"],
    )
    assert (result["tokenType"], result["second"]) == ("Bearer", "cache")
    assert threaded_emu.requests.count("token", client_id=app.client_id) == 1
    # no instance discovery: the authority's own OpenID document only
    assert threaded_emu.requests.count("discovery") == 1


def test_msal_node_sees_an_expired_secret_as_7000222(threaded_emu: Emulator) -> None:
    threaded_emu.add_api("api://node-orders")
    app = threaded_emu.add_app("node-expired", secret="old", secret_expires_at=time.time() - 60)
    result = acquire(threaded_emu, app.client_id, "old")
    assert result["errorCode"] == "invalid_client", result
    assert "AADSTS7000222" in result["errorMessage"]
    assert threaded_emu.requests.count("token", client_id=app.client_id, status=401) == 1
