"""What counts as a secret in log output, and how to report one without printing it.

Two kinds of evidence, both checked over text rendered as a log handler would render it (the
message with its arguments, the exception's traceback, ``stack_info`` and the extra
attributes, see :func:`render_record`):

* **shape** -- :data:`SHAPES`, one combined regular expression: a JWT (three base64url
  segments, the header starting ``eyJ``), a PEM armour line (``-----BEGIN ...-----``), a
  ``client_secret`` / ``client_assertion`` field with a value, a ``Bearer`` or ``Basic``
  authorization value, and a managed-identity header (``X-IDENTITY-HEADER`` /
  ``IDENTITY_HEADER``) with a value;
* **value** -- :class:`KnownValues`: the exact strings a test knows are secret (what its
  emulators handed out or received, what its credentials were built with). Most of them have
  no shape at all: a generated client secret is 40 random characters.

The scan is linear in the text: one pass of :data:`SHAPES`, and for the known values one
dictionary probe every :data:`_STRIDE` characters (:class:`KnownValues`), however many values
there are. A finding carries a :func:`fingerprint`, never the secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_KNOWN_LENGTH",
    "SHAPES",
    "Finding",
    "KnownValues",
    "RenderedRecord",
    "fingerprint",
    "render_record",
    "report",
    "scan",
]

_MASK = r"(?i:none|null|\*+|\[?<?redacted>?\]?|\.\.\.|…)(?=[\"'&,;)}\s]|$)"
"""Values that stand in for a secret (``client_secret=***``, ``"REDACTED"``): not a leak."""


def _field_value(group: str) -> str:
    """``name=value``, ``"name": "value"`` and the like: the assignment and a value that is no
    mask, captured as ``group``."""
    return r"""["']?\s*[=:]\s*["']?(?!""" + _MASK + rf""")(?P<{group}>[^\s"'&,;)}}]+)"""


SHAPES = re.compile(
    r"(?P<jwt>eyJ[A-Za-z0-9_-]{8,}={0,2}\.[A-Za-z0-9_-]{8,}={0,2}\.[A-Za-z0-9_=-]*)"
    r"|(?P<pem>-----BEGIN[A-Z0-9 ]*-----)"
    r"|(?P<field>(?<![A-Za-z0-9])(?i:client_secret|client_assertion)\b"
    + _field_value("field_value")
    + r")"
    r"|(?P<managed_identity_header>(?<![A-Za-z0-9])(?i:x-identity-header|identity_header)\b"
    + _field_value("managed_identity_header_value")
    + r")"
    # RFC 6750's b64token, long enough not to be a word ("Bearer challenge") and not followed
    # by "=" + value, which makes it a challenge's auth-param ("Bearer authorization_uri=...").
    r"|(?P<authorization>(?<![A-Za-z0-9])(?i:bearer|basic)\s+"
    r"(?P<authorization_value>[A-Za-z0-9\-._~+/]{20,}=*)(?![A-Za-z0-9\-._~+/=]))"
)
"""One pattern for every secret recognisable by its shape; the group names say which shape,
and a ``*_value`` group, where there is one, is the secret part of the match."""

_SHAPE_NAMES = {
    "jwt": "a JWT",
    "pem": "a PEM block",
    "field": "a client_secret/client_assertion field",
    "managed_identity_header": "a managed-identity header value",
    "authorization": "an authorization header value",
}

MIN_KNOWN_LENGTH = 8
"""Known values shorter than this are not looked for: ``"s3cr3t"`` occurs in ordinary text."""

_GRAM = 8
_STRIDE = 8
_INDEXED = _GRAM + _STRIDE - 1  # the shortest value the stride index finds


def fingerprint(secret: str) -> str:
    """A masked fingerprint of ``secret``: a few leading characters and its length.

    At most 4 characters, and never more than a quarter of the value, are shown.
    """
    shown = secret[: min(4, len(secret) // 4)]
    return f"{shown!r}…({len(secret)} chars)"


def _pem_fragments(value: str) -> list[str]:
    """The private-key lines of a PEM value, to find a key however it is printed.

    A repr prints newlines as ``\\n``, a config joins the lines: each 64-character base64 line
    survives both. Only the second half of each ``PRIVATE KEY`` block is taken -- an RSA key's
    first lines hold its public modulus, which its public certificate may show too -- and no
    other block (certificates are public; the armour line is a shape of its own).
    """
    fragments: list[str] = []
    for block in re.finditer(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END [A-Z ]*PRIVATE KEY-----", value, re.S
    ):
        lines = [line.strip() for line in block.group(1).split("\n") if line.strip()]
        fragments += [line for line in lines[len(lines) // 2 :] if len(line) >= _INDEXED]
    return fragments


class KnownValues:
    """Exact secret values, found as substrings of any text in time linear in the text.

    Values of at least 15 characters are indexed by the 8-character grams at the 8 offsets
    ending their last 8 characters. Every occurrence of such a value spans exactly one text
    position that is a multiple of 8 at one of those offsets, so probing the text every 8
    characters finds every occurrence; a probe that hits is confirmed with ``startswith``.
    (The tail, not the head, is indexed: JWTs share their headers, not their signatures.)
    Shorter values (8-14 characters) are searched for one by one; shorter still, not at all.
    A PEM value is looked for by its private-key lines (:func:`_pem_fragments`).

    :meth:`replace` changes the values in time proportional to the change, so one instance
    can follow a long-running emulator's values from test to test.
    """

    def __init__(self, values: Mapping[str, str] | Iterable[str] = ()) -> None:
        self._given: dict[str, tuple[str, ...]] = {}  # value -> the items looked for
        # item -> [label, how many values have it, the first value it was found in]
        self._items: dict[str, list[Any]] = {}
        self._index: dict[str, list[tuple[str, int]]] = {}
        self._short: dict[str, None] = {}
        self.replace(values)

    def replace(self, values: Mapping[str, str] | Iterable[str]) -> None:
        """Look for exactly these values from now on (a mapping gives each one's label)."""
        labelled = values if isinstance(values, Mapping) else dict.fromkeys(values, "")
        for value in [value for value in self._given if value not in labelled]:
            self._forget(value)
        for value, label in labelled.items():
            if value not in self._given:
                self._learn(value, label)

    def _learn(self, value: str, label: str) -> None:
        found = _pem_fragments(value) if "-----BEGIN" in value else [value]
        items = tuple(item for item in found if len(item) >= MIN_KNOWN_LENGTH)
        self._given[value] = items
        for item in items:
            entry = self._items.get(item)
            if entry is not None:
                entry[1] += 1
                continue
            self._items[item] = [label, 1, value]
            if len(item) < _INDEXED:
                self._short[item] = None
            for gram, offset in _tail_grams(item):
                self._index.setdefault(gram, []).append((item, offset))

    def _forget(self, value: str) -> None:
        for item in self._given.pop(value):
            entry = self._items[item]
            entry[1] -= 1
            if entry[1]:
                continue
            del self._items[item]
            self._short.pop(item, None)
            for gram, offset in _tail_grams(item):
                probes = self._index[gram]
                probes.remove((item, offset))
                if not probes:
                    del self._index[gram]

    def __len__(self) -> int:
        return len(self._items)

    def label(self, item: str) -> str:
        """Where a found item's value came from, as given (``""`` if not said)."""
        entry = self._items.get(item)
        return str(entry[0]) if entry is not None else ""

    def value_of(self, item: str) -> str:
        """The value a found item belongs to: itself, or the PEM whose line it is."""
        entry = self._items.get(item)
        return str(entry[2]) if entry is not None else item

    def find(self, text: str) -> Iterator[tuple[int, str]]:
        """``(start, value)`` for every occurrence of a known value in ``text``."""
        index = self._index
        if index:
            found: set[tuple[int, str]] = set()
            for probe in range(0, len(text) - _GRAM + 1, _STRIDE):
                for value, offset in index.get(text[probe : probe + _GRAM], ()):
                    start = probe - offset
                    if start >= 0 and text.startswith(value, start):
                        found.add((start, value))
            yield from sorted(found)
        for value in self._short:
            start = text.find(value)
            while start >= 0:
                yield start, value
                start = text.find(value, start + 1)


def _tail_grams(item: str) -> list[tuple[str, int]]:
    """The grams :class:`KnownValues` indexes an item by, with their offsets (none if short)."""
    if len(item) < _INDEXED:
        return []
    end = len(item) - _GRAM
    return [(item[offset : offset + _GRAM], offset) for offset in range(end - _STRIDE + 1, end + 1)]


# -- rendering ---------------------------------------------------------------------------------

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.DEBUG, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_FORMATTER = logging.Formatter()


@dataclass(frozen=True)
class RenderedRecord:
    """A log record as text: ``parts`` are ``(where, text)`` -- ``message``, ``argument``,
    ``exception``, ``stack`` or ``extra <name>``."""

    logger: str
    level: str
    parts: tuple[tuple[str, str], ...]


def _text(value: object) -> str:
    try:
        shown = str(value)
        shown_repr = repr(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return shown if shown_repr == shown else f"{shown}\n{shown_repr}"


def render_record(record: logging.LogRecord) -> RenderedRecord:
    """Render ``record`` as a handler could print it, every part a formatter may show.

    The message with its arguments (``getMessage()``), and the ``str()`` and ``repr()`` of
    arguments that are not plain strings or numbers, where the message does not show them
    already (a structured handler may print those); the exception with its
    traceback and chained causes; ``stack_info``; and every extra attribute (``extra={...}``),
    as ``str()`` and ``repr()``.
    """
    try:
        message = record.getMessage()
    except Exception:
        message = f"{record.msg!r} % {record.args!r}"
    parts: list[tuple[str, str]] = [("message", message)]
    args = record.args
    arguments = args.values() if isinstance(args, Mapping) else args or ()
    for arg in arguments:
        if not isinstance(arg, str | int | float | bool | type(None)):
            shown = _text(arg)
            if shown not in message:
                parts.append(("argument", shown))
    if record.exc_info and isinstance(record.exc_info, tuple):
        parts.append(("exception", _FORMATTER.formatException(record.exc_info)))
    elif record.exc_text:
        parts.append(("exception", record.exc_text))
    if record.stack_info:
        parts.append(("stack", str(record.stack_info)))
    for name, value in record.__dict__.items():
        if name not in _STANDARD_ATTRIBUTES:
            parts.append((f"extra {name}", _text(value)))
    return RenderedRecord(record.name, record.levelname, tuple(parts))


# -- scanning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One secret in one part of one record: what kind, and its fingerprint."""

    logger: str
    level: str
    where: str
    kind: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.logger} {self.level} ({self.where}): {self.kind} {self.fingerprint}"


def _scan_text(text: str, known: KnownValues) -> Iterator[tuple[str, str]]:
    covered: list[tuple[int, int]] = []
    for match in SHAPES.finditer(text):
        kind = match.lastgroup or "jwt"
        value_group = f"{kind}_value"
        secret = match.group(value_group) if value_group in SHAPES.groupindex else None
        covered.append(match.span())
        yield _SHAPE_NAMES[kind], fingerprint(secret or match.group(0))
    reported: set[str] = set()
    for start, item in known.find(text):
        end = start + len(item)
        value = known.value_of(item)
        if value in reported or any(s <= start and end <= e for s, e in covered):
            continue  # a private key's next line, or a JWT already reported by its shape
        reported.add(value)
        label = known.label(item)
        yield f"a known secret{f' ({label})' if label else ''}", fingerprint(item)


def scan(records: Iterable[RenderedRecord], known: KnownValues) -> list[Finding]:
    """Every secret, by shape or by value, in every part of every record, in order."""
    findings: list[Finding] = []
    for record in records:
        for where, text in record.parts:
            for kind, shown in _scan_text(text, known):
                findings.append(Finding(record.logger, record.level, where, kind, shown))
    return findings


def report(findings: list[Finding], *, limit: int = 20) -> str:
    """A failure message listing the findings (logger, level, where, kind, fingerprint)."""
    lines = [f"{len(findings)} secret(s) in log records captured at DEBUG:"]
    lines += [f"  {finding}" for finding in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"  ... and {len(findings) - limit} more")
    return "\n".join(lines)
