"""The IR graph: a DAG of named layers kept in topological order.

A ``Graph`` is immutable. Passes build a new one (``Graph.from_layers`` sorts and checks),
and ``validate`` states every invariant the rest of snnconv relies on: one input, one
output, edges that point backwards only, shapes that follow from the layers' parameters,
finite parameters, and no layer whose result is never used.

Everything here costs time linear in the number of layers, so that passes which look
up readers or re-validate per layer stay linear in depth: readers are indexed once per
graph, a graph is checked once (its layers and their arrays are read-only, so it cannot
become invalid), and layers given in topological order are not sorted again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import networkx as nx
import numpy as np

from snnconv.errors import BadGraphError
from snnconv.ir.layers import Input, Layer, Output, ShapeError, one_d_shape

__all__ = ["Graph"]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Graph:
    """Layers in topological order; the first is the ``Input``, the last the ``Output``.

    ``facts`` records what passes established (e.g. ``{"normalized": ...}``), so a later
    pass can refuse a graph that skipped a step it relies on.
    """

    layers: tuple[Layer, ...]
    name: str = "graph"
    facts: tuple[tuple[str, object], ...] = ()

    @classmethod
    def from_layers(cls, layers: Iterable[Layer], name: str = "graph",
                    facts: tuple[tuple[str, object], ...] = ()) -> Graph:
        """Order ``layers`` topologically (stable: ties keep the given order) and validate."""
        layers = list(layers)
        by_name: dict[str, Layer] = {}
        for layer in layers:
            if layer.name in by_name:
                raise BadGraphError(f"graph {name!r}: layer name {layer.name!r} is used twice; rename one")
            by_name[layer.name] = layer
        for layer in layers:
            for src in layer.inputs:
                if src not in by_name:
                    raise BadGraphError(f"layer {layer.name!r} ({layer.kind}): reads {src!r}, which is not a layer")
        position = {layer.name: i for i, layer in enumerate(layers)}
        if all(position[src] < i for i, layer in enumerate(layers) for src in layer.inputs):
            return cls(tuple(layers), name, facts).validate()  # already in order: the stable sort keeps it
        dag = nx.DiGraph()
        dag.add_nodes_from(by_name)
        dag.add_edges_from((src, layer.name) for layer in layers for src in layer.inputs)
        try:
            order = list(nx.lexicographical_topological_sort(dag, key=position.__getitem__))
        except nx.NetworkXUnfeasible:
            cycle = " -> ".join(src for src, _ in nx.find_cycle(dag))
            raise BadGraphError(f"graph {name!r}: layers form a cycle ({cycle}); a network must be acyclic") from None
        return cls(tuple(by_name[n] for n in order), name, facts).validate()

    def fact(self, key: str, default=None):
        """What a pass recorded under ``key``."""
        return dict(self.facts).get(key, default)

    def rebuilt(self, layers: Iterable[Layer], **facts) -> Graph:
        """A new validated graph of ``layers`` with this graph's name and facts, plus ``facts``."""
        merged = {**dict(self.facts), **facts}
        return Graph.from_layers(layers, self.name, tuple(sorted(merged.items())))

    @functools.cached_property
    def _by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def __getitem__(self, name: str) -> Layer:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def input(self) -> Input:
        return self.layers[0]

    @property
    def output(self) -> Output:
        return self.layers[-1]

    def user_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A layer's ``shape`` as the source model sees it: ``(C, L)`` for a feature map of a 1-D network
        (``Input.one_d``, held as ``(C, 1, L)``), else ``shape``."""
        return one_d_shape(shape) if self.input.one_d else tuple(shape)

    def input_shapes(self, layer: Layer) -> list[tuple[int, ...]]:
        """The shapes of the tensors ``layer`` reads, in order."""
        return [self[src].shape for src in layer.inputs]

    def consumers(self, name: str) -> list[Layer]:
        """The layers that read ``name``, in topological order."""
        return list(self._readers.get(name, ()))

    @functools.cached_property
    def _readers(self) -> dict[str, list[Layer]]:
        readers: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for src in dict.fromkeys(layer.inputs):  # a layer reading ``src`` twice is one reader
                readers.setdefault(src, []).append(layer)
        return readers

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, once per graph and ``key``: what depends only on this (immutable) graph.

        Running a loaded network many times reuses, rather than recomputes, what every run
        needs: its synapse geometry, overflow bounds, metric constants. The values live as
        long as the graph.
        """
        memo = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def to_networkx(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph whose nodes carry the layers (``layer`` attribute)."""
        dag = nx.DiGraph()
        for layer in self.layers:
            dag.add_node(layer.name, layer=layer)
            dag.add_edges_from((src, layer.name) for src in layer.inputs)
        return dag

    def validate(self) -> Graph:
        """Check every invariant and return ``self``; raise ``BadGraphError`` naming the layer.

        The check runs once per graph: a graph that passed stays valid.
        """
        if not self.__dict__.get("_valid"):
            self._check()
            object.__setattr__(self, "_valid", True)  # frozen: set as the dataclass itself does
        return self

    def _check(self) -> None:
        if len(self.layers) < 2:
            raise BadGraphError(f"graph {self.name!r}: needs at least an input and an output layer")
        if not isinstance(self.layers[0], Input) or not isinstance(self.layers[-1], Output):
            raise BadGraphError(f"graph {self.name!r}: must start with its input layer and end with its output layer")
        seen: set[str] = set()
        for layer in self.layers:
            self._check_layer(layer, seen)
            seen.add(layer.name)
        self._check_all_used()

    def _check_layer(self, layer: Layer, seen: set[str]) -> None:
        where = f"layer {layer.name!r} ({layer.kind})"
        if layer.name in seen:
            raise BadGraphError(f"{where}: name used twice")
        if layer is not self.layers[0] and isinstance(layer, Input):
            raise BadGraphError(f"{where}: a graph has one input layer")
        if layer is not self.layers[-1] and isinstance(layer, Output):
            raise BadGraphError(f"{where}: a graph has one output layer")
        for src in layer.inputs:
            if src not in seen:
                raise BadGraphError(f"{where}: reads {src!r}, which is not an earlier layer")
        if not layer.shape or min(layer.shape) < 1:
            raise BadGraphError(f"{where}: shape {layer.shape} has an empty dimension")
        try:
            expected = layer.infer_shape(self.input_shapes(layer))
        except ShapeError as exc:
            raise BadGraphError(f"{where}: {exc}") from None
        if expected != layer.shape:
            raise BadGraphError(f"{where}: stored shape {layer.shape} but inputs give {expected}")
        for field, array in layer.arrays().items():
            if not np.all(np.isfinite(array)):
                raise BadGraphError(f"{where}: {field} holds NaN or infinite values")

    def _check_all_used(self) -> None:
        used = {src for layer in self.layers for src in layer.inputs}
        for layer in self.layers[:-1]:
            if layer.name not in used:
                raise BadGraphError(
                    f"layer {layer.name!r} ({layer.kind}): its result is never used; remove it or connect it"
                )
