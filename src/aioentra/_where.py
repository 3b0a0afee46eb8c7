"""Where a setting came from, so that an error names what the user wrote.

A setting read from a file is named by the file and its key path, as a .NET developer reads
it (``appsettings.json: AzureAd.TenantId``, ``appsettings.json: AzureAd.ClientCredentials[0]``);
one read from the environment by its variable (``AZURE_TENANT_ID``). Validators elsewhere in
aioentra know neither: their errors are *relocated* to the setting, and a hint that names an
environment variable is replaced when the setting came from a file (it would send the user to
fix a variable they never set).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ._errors import AioEntraError, ConfigurationError, fresh

__all__ = ["Where", "naming", "relocated"]

_VARIABLE = re.compile(r"\b(?:AZURE|AIOENTRA)_[A-Z_]+\b")


@dataclass(frozen=True)
class Where:
    """A setting's name: the file (as the caller gave it) and the key path in it, or an
    environment variable (``path``, with ``variable=True``)."""

    file: str | None
    path: str = ""
    variable: bool = False

    @classmethod
    def environment(cls, name: str) -> Where:
        return cls(None, name, variable=True)

    def at(self, key: str) -> Where:
        """The key ``key`` inside this section."""
        return Where(self.file, f"{self.path}.{key}" if self.path else key)

    def item(self, index: int) -> Where:
        """Entry ``index`` (from 0, as .NET's ``AzureAd:ClientCredentials:0``) of this list."""
        return Where(self.file, f"{self.path}[{index}]")

    def inside(self) -> Where:
        """The same key path without the file's name: for details listed under an error
        that names the file already."""
        return Where(None, self.path)

    def __str__(self) -> str:
        if self.file is None:
            return self.path
        return f"{self.file}: {self.path}" if self.path else self.file


def relocated(error: AioEntraError, where: Where, hint: str | None = None) -> AioEntraError:
    """A copy of ``error`` whose message starts with ``where``.

    ``hint`` replaces the error's own hint when that one names an environment variable and
    the setting came from a file; otherwise the error's hint stays.
    """
    clone = fresh(error)
    clone.message = f"{where}: {error.message}" if str(where) else error.message
    if not where.variable and error.hint and _VARIABLE.search(error.hint):
        clone.hint = hint
    clone.args = (clone._render(),)
    return clone


@contextmanager
def naming(where: Where, hint: str | None = None) -> Iterator[None]:
    """Relocate the :class:`ConfigurationError` raised inside the block to ``where``."""
    try:
        yield
    except ConfigurationError as error:
        raise relocated(error, where, hint) from None
