"""A leak guard: capture every log record at DEBUG while it is open, then look for secrets.

While a :class:`SecretGuard` is open, every record of every logger, in every thread, is
captured at DEBUG and rendered as a handler would render it (:func:`render_record`) -- also
records that the logging configuration would drop: a logger whose level is set higher (the
CLI sets ``aioentra`` to INFO for ``-v``; ``caplog.set_level`` raises levels), a logger with
``propagate=False``, the root logger at its default WARNING. That is the output of a program
run with DEBUG logging everywhere, which is what a user who turns DEBUG on gets. When it
closes, :meth:`SecretGuard.findings` looks through that text for secrets by shape and by
value (:mod:`._secret_scan`): the values every emulator alive or created meanwhile knows
(``Emulator.known_secrets()``), the proofs of every credential built meanwhile, and whatever the
test passed to :meth:`~SecretGuard.add`.

How records are captured without changing what anyone sees: ``logging.Logger.isEnabledFor``
answers yes for DEBUG and above, so every logging call builds its record, and
``logging.Logger.handle`` hands each record to the open guards, then on to the logger's
handlers only if the original ``isEnabledFor`` would have let it be built. Handlers, levels,
``caplog`` and pytest's own log capture see exactly what they would have seen. (A record
passed to ``Logger.handle`` directly, below the logger's level -- no library here does that
-- is dropped while a guard is open.) The same hand-off learns the value of every
:class:`~aioentra.credentials.Proof` created: the client secrets and assertions of every
credential. Both patches are installed when the first guard opens and removed when the last
closes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from ._secret_scan import Finding, KnownValues, RenderedRecord, render_record, report, scan
from .credentials._base import Proof

__all__ = ["SecretGuard"]


class _SecretSource(Protocol):
    """What the guard asks of an emulator."""

    def known_secrets(self) -> frozenset[str]: ...


_Sources = Callable[[], "Sequence[_SecretSource]"]

_lock = threading.Lock()
_open: list[SecretGuard] = []
# One index for every check, updated by the difference between one test's values and the
# next's: a session's emulator knows hundreds of values, and most tests add only a few.
_index_lock = threading.Lock()
_index = KnownValues()
_inside = threading.local()  # a guard rendering a record logs nothing into itself

_is_enabled_for = logging.Logger.isEnabledFor
_handle = logging.Logger.handle
_proof_post_init = Proof.__post_init__


def _every_level_enabled(self: logging.Logger, level: int) -> bool:
    return level >= logging.DEBUG or _is_enabled_for(self, level)


def _handle_and_capture(self: logging.Logger, record: logging.LogRecord) -> None:
    if not getattr(_inside, "rendering", False):
        _inside.rendering = True
        try:
            for guard in tuple(_open):
                guard._capture(record)
        finally:
            _inside.rendering = False
    if _is_enabled_for(self, record.levelno):
        _handle(self, record)


def _post_init_and_learn(self: Proof) -> None:
    _proof_post_init(self)
    for guard in tuple(_open):
        guard._learn(self.value, "a credential's proof")


def _attach(guard: SecretGuard) -> None:
    with _lock:
        if not _open:
            logging.Logger.isEnabledFor = _every_level_enabled  # type: ignore[method-assign]
            logging.Logger.handle = _handle_and_capture  # type: ignore[method-assign]
            Proof.__post_init__ = _post_init_and_learn  # type: ignore[method-assign]
        _open.append(guard)


def _detach(guard: SecretGuard) -> None:
    with _lock:
        _open.remove(guard)
        if not _open:
            logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
            logging.Logger.handle = _handle  # type: ignore[method-assign]
            Proof.__post_init__ = _proof_post_init  # type: ignore[method-assign]


def _watch_emulators() -> contextlib.AbstractContextManager[_Sources]:
    """The emulators alive or created while the guard is open: the SDK does not import the
    emulator at module level (it stands apart), so it is loaded here, on first use."""
    from .emulator._registry import watching

    return watching()


class SecretGuard:
    """Capture every log record at DEBUG while open; then report any secret in them.

    >>> with SecretGuard() as guard:                       # doctest: +SKIP
    ...     guard.add(password)
    ...     run_the_code_under_test()
    >>> assert not guard.findings(), guard.report()        # doctest: +SKIP

    Guards nest (each sees every record). The pytest fixture ``aioentra_secret_guard``
    opens one per test and fails the test on a finding.
    """

    def __init__(self) -> None:
        self._records: list[RenderedRecord] = []
        self._values: dict[str, str] = {}
        self._sources: _Sources = list
        self._watch: contextlib.AbstractContextManager[_Sources] | None = None

    # -- what is secret ----------------------------------------------------------------------

    def add(self, *values: str | bytes) -> None:
        """Fail on these values too (a password the test made up, a key it read).

        Values shorter than 8 characters are not looked for: they occur in ordinary text.
        """
        for value in values:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            self._learn(text, "added")

    def _learn(self, value: str, label: str) -> None:
        self._values.setdefault(value, label)

    def known_values(self) -> dict[str, str]:
        """The values looked for, each with where it came from: every watched emulator's
        ``known_secrets()``, the proofs of credentials built while open, the added values."""
        values = dict(self._values)
        for source in self._sources():
            for value in source.known_secrets():
                values.setdefault(value, f"known to {type(source).__name__}")
        return values

    # -- capture -----------------------------------------------------------------------------

    def _capture(self, record: logging.LogRecord) -> None:
        try:
            rendered = render_record(record)
        except Exception as exc:
            rendered = RenderedRecord(
                record.name, record.levelname, (("message", f"<not rendered: {exc!r}>"),)
            )
        self._records.append(rendered)  # list.append is atomic: records come from any thread

    @property
    def records(self) -> tuple[RenderedRecord, ...]:
        """Every record captured so far, rendered."""
        return tuple(self._records)

    def __enter__(self) -> SecretGuard:
        if self._watch is not None:
            raise RuntimeError("this SecretGuard is already open")
        self._watch = _watch_emulators()
        self._sources = self._watch.__enter__()
        _attach(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _detach(self)
        watch, self._watch = self._watch, None
        sources = self._sources()  # keep what was watched: findings() asks them later
        self._sources = lambda: sources
        if watch is not None:
            watch.__exit__(exc_type, exc, tb)

    # -- verdict -----------------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        """Every secret in the captured records (logger, level, where, kind, fingerprint)."""
        records = self.records
        if not records:
            return []
        known = self.known_values()
        with _index_lock:
            _index.replace(known)
            return scan(records, _index)

    def report(self) -> str | None:
        """A failure message naming each finding by a masked fingerprint; ``None`` if clean."""
        findings = self.findings()
        return report(findings) if findings else None
