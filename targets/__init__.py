"""Chip targets: one module per chip, each defining ``TARGET`` (a ``Target``).

``get("loihi")`` returns a built-in target; ``get("path/to/chip.toml")`` reads a user's
description. Adding a chip is adding one module here: it is found by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from snnconv.errors import BadTargetError
from snnconv.targets.target import Target, load_toml

__all__ = ["DEFAULT", "Target", "get", "names"]

DEFAULT = "loihi"
_NOT_TARGETS = {"target"}


def names() -> list[str]:
    """The built-in targets, the default first."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_TARGETS)
    return sorted(found, key=lambda name: name != DEFAULT)


def get(target: str | Path | Target) -> Target:
    """A built-in target by name, or a user's target from a file: anything with a suffix or a folder in it
    (``/dev/zero`` is a path, refused as one, not an unknown name)."""
    if isinstance(target, Target):
        return target
    text = str(target)
    if Path(text).suffix or Path(text).name != text:
        return load_toml(text)
    if text not in names():
        raise BadTargetError(f"unknown target {text!r}; known: {', '.join(names())} (or a path to a .toml file)")
    return importlib.import_module(f"{__name__}.{text}").TARGET
