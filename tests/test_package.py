"""The package's shape: public names, the one-way layering, and typed user code."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import aioentra
from aioentra.emulator import Api, App, Emulator

PACKAGE = Path(aioentra.__file__).parent
ROOT = PACKAGE.parent.parent


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level?) for every import in ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []
    top_level = {id(node) for node in tree.body}
    type_checking = {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in node.body
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [base]
        else:
            continue
        eager = id(node) in top_level and id(node) not in type_checking
        found.extend((name, eager) for name in names)
    return found


def test_every_public_name_imports_and_all_is_one_list() -> None:
    for name in aioentra.__all__:
        assert getattr(aioentra, name) is not None, name
    assert sorted(aioentra.__all__) == aioentra.__all__
    assert set(dir(aioentra)) == set(aioentra.__all__)
    # The TYPE_CHECKING imports (for type checkers) name exactly the lazy public names.
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    checked = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    } - {"TYPE_CHECKING", "Any", "annotations"}
    assert checked == set(aioentra.__all__) - {"__version__"}


@pytest.mark.parametrize(
    "module", ["aioentra.aiohttp", "aioentra.credentials", "aioentra.emulator", "aioentra.testing"]
)
def test_every_public_submodule_name_imports(module: str) -> None:
    imported = importlib.import_module(module)
    for name in imported.__all__:
        assert getattr(imported, name) is not None, f"{module}.{name}"


def test_the_emulator_uses_nothing_private_of_the_sdk() -> None:
    for path in (PACKAGE / "emulator").rglob("*.py"):
        for module, _ in _imports(path):
            if module.startswith("aioentra.") and not module.startswith("aioentra.emulator"):
                pytest.fail(f"{path.name} imports {module}: the emulator must stand alone")


def test_the_sdk_imports_the_emulator_only_lazily() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        for module, eager in _imports(path):
            if module.startswith("aioentra.emulator"):
                assert not eager, f"{path.name} imports the emulator at module level"


def test_the_core_layers_point_one_way() -> None:
    """cell / engine / credentials never import the provider, the middleware or the CLI."""
    upper = {"aioentra._provider", "aioentra.aiohttp", "aioentra._cli", "aioentra._config"}
    lower = ["_flight.py", "_engine.py", "_transport.py", "_workers.py", "_policy.py", "_token.py"]
    paths = [PACKAGE / name for name in lower] + list((PACKAGE / "credentials").glob("*.py"))
    for path in paths:
        for module, _ in _imports(path):
            assert module not in upper, f"{path.name} imports {module}"
    for module, _ in _imports(PACKAGE / "_flight.py"):
        assert not module.startswith(("msal", "aiohttp")), "the cell does no HTTP"


def test_importing_aioentra_loads_no_network_stack() -> None:
    code = "import sys, aioentra; print(sorted(m for m in ('aiohttp', 'msal') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_provider_without_telemetry_never_imports_opentelemetry() -> None:
    """OpenTelemetry is installed here; only ``telemetry=`` may load it (the warm path and
    every fetch stay as they are without it)."""
    code = """
import asyncio, sys
from aioentra import ClientSecret, TokenProvider
from aioentra.emulator import Emulator

async def main():
    async with Emulator() as emu:
        api = emu.add_api("api://otel-free")
        app = emu.add_app("otel-free")
        emu.grant(app, api, [])
        async with TokenProvider(
            ClientSecret(app.secret), tenant_id=emu.tenant_id, client_id=app.client_id,
            authority=emu.base_url, ca_file=emu.ca_file,
        ) as provider:
            await provider.get_token("api://otel-free/.default")
            provider.stats()
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout


# What a process that only builds a provider must not load (each name with its submodules).
HEAVY = (
    "aiohttp",
    "azure.core",
    "azure.identity",
    "azure.keyvault",
    "cryptography",
    "jwt",
    "msal",
    "requests",
)

# Run in a fresh interpreter: prints, as JSON lines, the heavy modules loaded at each step, and
# which thread imported aiohttp and msal. The emulator (the test's own, in this process) is
# described on stdin, so no secret is on a command line.
_FRESH_PROCESS = """
import asyncio, json, sys, threading

HEAVY = %r
importers = {}

def audit(event, args):
    if event == "import" and args[0] in ("aiohttp", "msal"):
        importers.setdefault(args[0], threading.current_thread().name)

sys.addaudithook(audit)

def loaded():
    return sorted(h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in sys.modules))

from aioentra import ClientSecret, TokenProvider

where = json.load(sys.stdin)
provider = TokenProvider(
    ClientSecret(where["secret"]), tenant_id=where["tenant_id"], client_id=where["client_id"],
    authority=where["authority"], ca_file=where["ca_file"],
)
print(json.dumps({"built": loaded()}), flush=True)

async def main():
    async with provider:
        print(json.dumps({"entered": loaded()}), flush=True)
        for _ in range(2):
            try:
                token = await provider.get_token(where["scope"])
            except Exception as error:
                print(json.dumps({"error": [type(error).__name__, error.message]}), flush=True)
            else:
                print(json.dumps({"token": loaded(), "has_token": bool(token.token)}), flush=True)
    print(json.dumps({"importers": importers}), flush=True)

asyncio.run(main())
"""


def _fresh_process(
    emulator: Emulator, app: App, scope: str, prelude: str = ""
) -> list[dict[str, Any]]:
    where = {
        "secret": app.secret,
        "tenant_id": emulator.tenant_id,
        "client_id": app.client_id,
        "authority": emulator.base_url,
        "ca_file": emulator.ca_file,
        "scope": scope,
    }
    result = subprocess.run(
        [sys.executable, "-c", prelude + _FRESH_PROCESS % (HEAVY,)],
        input=json.dumps(where),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_building_a_provider_loads_no_heavy_dependency_and_a_secret_token_no_crypto(
    aioentra_isolated: Emulator, aioentra_app: App, aioentra_api: Api
) -> None:
    """Importing and building a secret provider loads none of HEAVY. aiohttp loads when it
    starts, msal (with requests) on the first token request, both in a worker thread; a
    client secret never loads cryptography, PyJWT or the Azure SDKs (msal does not either)."""
    aioentra_isolated.grant(aioentra_app, aioentra_api, [])
    scope = f"{aioentra_api.identifier_uri}/.default"
    built, entered, first, second, importers = _fresh_process(
        aioentra_isolated, aioentra_app, scope
    )
    assert built == {"built": []}
    assert entered == {"entered": ["aiohttp"]}
    assert first == second == {"token": ["aiohttp", "msal", "requests"], "has_token": True}
    assert importers["importers"].keys() == {"aiohttp", "msal"}
    assert all(name.startswith("aioentra-msal") for name in importers["importers"].values())
    assert aioentra_isolated.requests.count(endpoint="token", client_id=aioentra_app.client_id) == 1


def test_a_secret_from_the_environment_loads_no_heavy_dependency() -> None:
    """``from_environment`` (the settings module) with a client secret loads what building
    the provider by hand loads: none of HEAVY."""
    code = f"""
import json, sys
from aioentra import TokenProvider
TokenProvider.from_environment({{
    "AZURE_TENANT_ID": "contoso.onmicrosoft.com",
    "AZURE_CLIENT_ID": "0" * 8,
    "AZURE_CLIENT_SECRET": "x" * 40,
}})
heavy = [h for h in {HEAVY!r} if any(m == h or m.startswith(h + ".") for m in sys.modules)]
print(json.dumps(heavy))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


def test_a_missing_msal_is_a_configuration_error_on_every_request(
    aioentra_isolated: Emulator, aioentra_app: App
) -> None:
    """msal is imported at the first token request: without it, that request (and the next)
    fails with a typed error saying what to install, and nothing is sent."""
    lines = _fresh_process(
        aioentra_isolated,
        aioentra_app,
        "api://unused/.default",
        "import sys\nsys.modules['msal'] = None\n",
    )
    errors = [line["error"] for line in lines if "error" in line]
    assert len(errors) == 2
    for kind, message in errors:
        assert kind == "ConfigurationError"
        assert message == "msal could not be imported: ModuleNotFoundError (no module named 'msal')"
    assert aioentra_isolated.requests.count(client_id=aioentra_app.client_id) == 0


def test_msal_is_imported_once_whichever_threads_ask_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first token requests of several providers (or keys) at once share one import."""
    from aioentra import _engine

    monkeypatch.setattr(_engine, "_msal_loaded", [])
    monkeypatch.setattr(_engine, "_msal_failure", [])
    barrier = threading.Barrier(8)

    def load() -> object:
        barrier.wait()
        return _engine.load_msal()

    with ThreadPoolExecutor(8) as pool:
        modules = list(pool.map(lambda _: load(), range(8)))
    assert len({id(module) for module in modules}) == 1
    assert modules[0].__name__ == "aioentra._msal"
    assert len(_engine._msal_loaded) == 1


def test_user_code_type_checks_against_the_public_api(tmp_path: Path) -> None:
    """mypy --strict over tests/typing/user_code.py: the Azure SDK protocols, the keyword
    options of from_file/from_environment, the middleware's TokenSource."""
    api = pytest.importorskip("mypy.api")
    user_code = ROOT / "tests" / "typing" / "user_code.py"
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--python-version",
            "3.10",
            str(user_code),
        ]
    )
    assert status == 0, stdout + stderr
    # and the checker does see mistakes in that file's style of code
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from aioentra import TokenProvider\n"
        "TokenProvider.from_file('appsettings.json', max_wokers=2)\n"
    )
    stdout, _, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c2"), str(wrong)]
    )
    assert status == 1 and "max_wokers" in stdout


def test_the_guarantees_page_names_tests_that_exist() -> None:
    import re

    page = (ROOT / "docs" / "guarantees.md").read_text()
    named = 0
    for row in page.splitlines():
        current: Path | None = None
        for path, name in re.findall(r"`(?:(tests/[\w/]+\.py))?(?:::(\w+))?[^`]*`", row):
            if path:
                current = ROOT / path
                assert current.is_file(), path
            if name:
                assert current is not None, f"{name}: no file named before it in: {row}"
                assert re.search(rf"^(async )?def {name}\(", current.read_text(), re.M), name
                named += 1
    assert named > 40
