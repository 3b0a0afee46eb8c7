"""httpx stays optional: ``aioentra`` never imports it, and its absence is explained."""

from __future__ import annotations

import importlib
import subprocess
import sys

import aioentra.httpx


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_aioentra_and_the_middleware_loads_no_httpx() -> None:
    code = (
        "import sys, aioentra, aioentra.aiohttp\n"
        "from aioentra import TokenProvider, ClientSecret\n"
        "print('httpx' in sys.modules)"
    )
    assert _run(code) == "False"


def test_a_missing_httpx_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n    import aioentra.httpx\n"
        "except ImportError as error:\n    print(type(error).__name__, error.name, error)\n"
    )
    out = _run(code)
    assert out.startswith("ImportError httpx ")
    assert "pip install 'aioentra[httpx]'" in out


def test_every_public_name_imports() -> None:
    module = importlib.import_module("aioentra.httpx")
    assert module is aioentra.httpx
    for name in module.__all__:
        assert getattr(module, name) is not None, name
