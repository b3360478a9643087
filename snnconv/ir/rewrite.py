"""What every pass returns, and the small edits passes make to lists of layers.

Passes never edit a graph: they build a new list of layers (``dataclasses.replace`` for
changed ones) and call ``Graph.rebuilt``, which orders and validates it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from snnconv.ir.graph import Graph
from snnconv.ir.layers import Layer

__all__ = ["PassResult", "rewire", "bypass"]


@dataclass(frozen=True)
class PassResult:
    """A pass's new graph, whether it changed anything, and notes for the report."""

    graph: Graph
    changed: bool
    notes: dict = field(default_factory=dict)


def rewire(layers: list[Layer], old: str, new: str) -> list[Layer]:
    """``layers`` with every read of ``old`` turned into a read of ``new``."""
    return [
        dataclasses.replace(layer, inputs=tuple(new if src == old else src for src in layer.inputs))
        if old in layer.inputs else layer
        for layer in layers
    ]


def bypass(layers: list[Layer], name: str) -> list[Layer]:
    """Remove the single-input layer ``name``; its readers read its input instead."""
    removed = next(layer for layer in layers if layer.name == name)
    return rewire([layer for layer in layers if layer.name != name], name, removed.inputs[0])
