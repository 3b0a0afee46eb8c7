"""The API reference covers the public API, and the emulator documents every public member.

The reference (``docs/reference/*.md``) is built by mkdocstrings from ``::: target`` lines;
CI runs ``mkdocs build --strict`` separately. These checks need no mkdocs: they read the
pages' targets and the package itself, so a new public module without a reference page, or
a public name no page renders, fails here. Members without a docstring are left out of the
rendered reference (``show_if_no_docstring: false``), hence the docstring check.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

import aioentra
import aioentra.emulator

PACKAGE = Path(aioentra.__file__).parent
ROOT = PACKAGE.parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

#: Public (no ``_`` part) modules that get no reference page, and why.
NO_REFERENCE_PAGE = {
    "aioentra.demo": "the ToDo sample behind `aioentra demo`, documented in docs/cli.md",
    "aioentra.emulator.identity": "a half of the emulator; import from aioentra.emulator",
    "aioentra.emulator.keyvault": "a half of the emulator; import from aioentra.emulator",
}

_TARGET = re.compile(r"^::: ([\w.]+)[ \t]*\n((?:[ \t]+\S.*\n?)*)", re.M)
_MEMBERS = re.compile(r"^\s+members:[ \t]*(.*)$", re.M)


def public_modules() -> list[str]:
    """Every module of the package whose dotted name has no ``_``-prefixed part, except the
    ones in (or under) ``NO_REFERENCE_PAGE``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        if any(part.startswith("_") for part in parts):
            continue
        if not any(module == m or module.startswith(m + ".") for m in NO_REFERENCE_PAGE):
            found.append(module)
    return found


def targets() -> dict[str, list[str] | None]:
    """``::: target`` of every reference page -> the member names its options restrict it to
    (``None``: no ``members:`` option, so every public member)."""
    found: dict[str, list[str] | None] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for match in _TARGET.finditer(page.read_text(encoding="utf-8")):
            target, options = match.group(1), match.group(2)
            members = _MEMBERS.search(options)
            if members is None:
                found[target] = None
            elif members.group(1).strip() in ("false", "[]", "no"):
                found[target] = []
            else:
                listed = members.group(1).strip().strip("[]")
                found[target] = [name.strip() for name in listed.split(",") if name.strip()]
    return found


def resolve(target: str) -> object:
    """The object a ``:::`` target names: a module, or an attribute of one."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        module, _, name = target.rpartition(".")
        return getattr(importlib.import_module(module), name)


def rendered_objects() -> list[object]:
    """Every object some reference page renders (a module target renders its ``__all__``)."""
    rendered: list[object] = []
    for target, members in targets().items():
        value = resolve(target)
        rendered.append(value)
        if inspect.ismodule(value):
            names = members if members is not None else getattr(value, "__all__", [])
            rendered.extend(getattr(value, name) for name in names)
    return rendered


def test_every_target_resolves_and_every_page_is_in_the_nav() -> None:
    for target in targets():
        assert resolve(target) is not None, target
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.rglob("*.md")):
        assert page.relative_to(DOCS).as_posix() in nav, f"{page.name} is not in mkdocs.yml's nav"


def test_every_public_module_has_a_reference_page() -> None:
    pages = set(targets())
    for module in public_modules():
        assert module in pages, f"{module} has no `::: {module}` page in docs/reference/"


@pytest.mark.parametrize("module", [m for m in public_modules() if m != "aioentra"])
def test_every_public_name_of_a_module_is_rendered(module: str) -> None:
    rendered = {id(value) for value in rendered_objects()}
    imported = importlib.import_module(module)
    for name in getattr(imported, "__all__", []):
        assert id(getattr(imported, name)) in rendered, f"{module}.{name} is on no reference page"


def test_every_name_of_aioentra_all_is_rendered() -> None:
    rendered = {id(value) for value in rendered_objects()}
    for name in aioentra.__all__:
        if name.startswith("__"):
            continue  # __version__: the version string, not an API to document
        assert id(getattr(aioentra, name)) in rendered, f"aioentra.{name} is on no reference page"


# -- the emulator's public members --------------------------------------------------------------


def _is_docstring(node: ast.stmt | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and bool(node.value.value.strip())
    )


def _assigned_names(node: ast.stmt, *, on_self: bool) -> list[str]:
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, ast.AnnAssign)
        else []
    )
    names = []
    for target in targets:
        if on_self:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.append(target.attr)
        elif isinstance(target, ast.Name):
            names.append(target.id)
    return names


def attributes_section(docstring: str | None) -> set[str]:
    """The names a Google-style ``Attributes:`` section of ``docstring`` describes."""
    names: set[str] = set()
    lines = inspect.cleandoc(docstring or "").splitlines()
    for index, line in enumerate(lines):
        if line.strip() != "Attributes:":
            continue
        indent = None
        for item in lines[index + 1 :]:
            if item.strip() and len(item) - len(item.lstrip()) <= len(line) - len(line.lstrip()):
                break
            entry = re.match(r"^(\s+)(\w+)(?: \(.*\))?:\s", item)
            if entry is not None and (indent is None or len(entry.group(1)) == indent):
                indent = len(entry.group(1))
                names.add(entry.group(2))
    return names


def _undocumented_attributes(
    body: list[ast.stmt], *, on_self: bool, described: Collection[str] = ()
) -> Iterator[str]:
    """Public attributes assigned in ``body`` with neither a docstring right after them nor an
    entry in the class docstring's ``Attributes:`` section (``described``)."""
    for index, node in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else None
        for name in _assigned_names(node, on_self=on_self):
            if name.startswith("_") or name in described or _is_docstring(following):
                continue
            yield name


def _is_setter(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter")
        for d in node.decorator_list
    )


def undocumented_members(cls: type, package: str = "aioentra.emulator") -> list[str]:
    """``Class.member`` for each public method, property or attribute without a docstring,
    in ``cls`` and in its bases that are part of ``package``."""
    missing = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith(package):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        node = tree.body[0]
        assert isinstance(node, ast.ClassDef)
        if ast.get_docstring(node) is None:
            missing.append(klass.__name__)
        described = attributes_section(ast.get_docstring(node))
        for name in _undocumented_attributes(node.body, on_self=False, described=described):
            missing.append(f"{klass.__name__}.{name}")
        for member in node.body:
            if not isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if member.name == "__init__":
                for name in _undocumented_attributes(
                    member.body, on_self=True, described=described
                ):
                    missing.append(f"{klass.__name__}.{name}")
            elif (
                not member.name.startswith("_")
                and not _is_setter(member)
                and ast.get_docstring(member) is None
            ):
                missing.append(f"{klass.__name__}.{member.name}")
    return missing


def test_every_public_emulator_member_has_a_docstring() -> None:
    missing = []
    for name in aioentra.emulator.__all__:
        value = getattr(aioentra.emulator, name)
        if inspect.isclass(value):
            missing += undocumented_members(value)
        elif not callable(value):
            # a constant: documented by a docstring after its assignment in its module
            module = next(
                m
                for m in (PACKAGE / "emulator").rglob("*.py")
                if re.search(rf"^{name}\b.*=", m.read_text(encoding="utf-8"), re.M)
            )
            tree = ast.parse(module.read_text(encoding="utf-8"))
            if name in _undocumented_attributes(tree.body, on_self=False):
                missing.append(name)
    assert not missing, "no docstring: " + ", ".join(missing)


def test_the_member_check_sees_a_missing_docstring() -> None:
    class Sample:
        """A sample."""

        documented: int = 1
        """An attribute with a docstring."""
        bare: int = 2

        def __init__(self) -> None:
            self.seen = 1
            """Documented."""
            self.unseen = 2

        def method(self) -> None:
            pass

    assert undocumented_members(Sample, Sample.__module__) == [
        "Sample.bare",
        "Sample.unseen",
        "Sample.method",
    ]
