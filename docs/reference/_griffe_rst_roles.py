"""A griffe extension for the API reference: Sphinx roles in docstrings become code spans.

The docstrings cross-reference in Sphinx style (``:class:`~aioentra.TokenProvider```), which
Markdown would show as it is, role and backticks included. This turns each role into the
code span a reader expects: ``TokenProvider`` (a ``~`` keeps only the last name, as Sphinx
does), so the reference reads like the source. Loaded by mkdocs.yml (``extensions:``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`<]*?)(?:\s*<[^`>]*>)?`")


def _code_span(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def strip_roles(text: str) -> str:
    """``:meth:`~a.B.c``` -> ```c```, ``:class:`a.B``` -> ```a.B```."""
    return _ROLE.sub(_code_span, text)


class RstRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = strip_roles(obj.docstring.value)
