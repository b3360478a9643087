"""Progress on stderr for long work: calibration, compilation stages, simulation.

Shown only when stderr is a terminal and not silenced (``--quiet``, or
``SNNCONV_QUIET=1``), so pipes, logs and scripts reading ``--json`` see nothing of it.
A bar redraws one line in place and ends it when the work is done::

    simulating  [##########..........]  500/1,000 samples  3.1 s

Library code deep in the pipeline reports stages with ``stage(name)``; they show only
inside ``reporting(label)``, which the CLI and the API open around long work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO

__all__ = ["Progress", "enabled", "silence", "reporting", "stage"]

_WIDTH = 20
_silenced = os.environ.get("SNNCONV_QUIET", "") not in ("", "0")
_current: ContextVar[Progress | None] = ContextVar("snnconv_progress", default=None)


def silence(quiet: bool = True) -> None:
    """Turn every progress display off (the CLI's ``--quiet``)."""
    global _silenced
    _silenced = quiet


def enabled(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return not _silenced and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """A bar for ``total`` units of ``unit`` (call it with the number done), or stage lines (``stage``)."""

    def __init__(self, label: str, total: int = 0, unit: str = "", stream: TextIO | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.shown = enabled(self.stream)
        self.start = time.perf_counter()
        self.stages: set[str] = set()

    def __call__(self, done: int) -> None:
        if not self.shown:
            return
        fraction = min(1.0, done / self.total) if self.total else 1.0
        filled = round(fraction * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        line = f"\r{self.label:<12} [{bar}] {done:,}/{self.total:,} {self.unit}  {self._elapsed()}"
        self.stream.write(line + ("\n" if done >= self.total else ""))
        self.stream.flush()

    def stage(self, name: str) -> None:
        """One line per stage of work whose size is unknown (compilation passes), each shown once."""
        if self.shown and name not in self.stages:
            self.stages.add(name)
            self.stream.write(f"{self.label:<12} {name} ...  {self._elapsed()}\n")
            self.stream.flush()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self.start:.1f} s"


@contextlib.contextmanager
def reporting(label: str) -> Iterator[Progress]:
    """Show the ``stage`` calls made inside, prefixed with ``label``."""
    token = _current.set(Progress(label))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def stage(name: str) -> None:
    """Report a stage of the work in progress, if someone is showing it."""
    progress = _current.get()
    if progress is not None:
        progress.stage(name)
