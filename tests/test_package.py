"""The package's shape: public names, the one-way layering, and typed user code."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import aioentra

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
