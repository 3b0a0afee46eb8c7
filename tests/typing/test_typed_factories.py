"""The factories' keyword options are typed: a misspelt option is a type-checker error.

``factory_typos.py`` holds one mistake per marked line; mypy (``--strict``) must report each
of them, and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MARK = re.compile(r"#\s*E:\s*(?P<text>.+)$")


def expected_errors(path: Path) -> dict[int, str]:
    return {
        number: match["text"].strip()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (match := MARK.search(line))
    }


def test_a_misspelt_factory_option_is_a_type_error(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = HERE / "factory_typos.py"
    expected = expected_errors(source)
    assert len(expected) >= 10
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--python-version",
            "3.10",
            "--no-error-summary",
            "--hide-error-context",
            str(source),
        ]
    )
    assert status == 1, stdout + stderr
    reported: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        found = re.match(rf"(?:.*[/\\])?{re.escape(source.name)}:(\d+): (error|note): (.*)$", line)
        assert found, line  # only that file's lines
        if found[2] == "note":  # e.g. where the called factory is defined
            continue
        reported.setdefault(int(found[1]), []).append(found[3])
    assert set(reported) == set(expected), stdout
    for number, text in expected.items():
        assert any(text in message for message in reported[number]), (number, reported[number])
