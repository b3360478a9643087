"""Spike: turn the normalized ReLU network into integrate-and-fire neurons.

- Every ReLU becomes a spiking population (``IF``) of the neuron model asked for
  (``snnconv.neurons``: integrate-and-fire by default, or leaky with ``decay``, or firing up
  to ``spikes_per_step`` per step): threshold 1 (the scale normalization gave the
  weights), reset by subtraction (the residue carries over, so the spike count tracks
  the integrated input to within one spike), membrane starting at half the threshold
  (rounds the rate to nearest instead of down, halving the mean error at small T).
  With ``v_init="dither"``, the populations driven by the constant input current start
  instead at ``0.5 + 0.5 * (frac(n * phi) - 0.5)`` for neuron ``n`` (a golden-ratio
  sequence over [0.25, 0.75)): their rounding errors stop being in phase, so the next
  layer does not see all of them fire in the same steps. Deeper populations keep 0.5,
  since their input is not constant and an early start would fire them spuriously.
- The layers between IF populations (conv, dense, average pooling, add, concat,
  flatten, affine) stay linear maps of spikes to synaptic current.
- Max pooling stays "max" and is simulated as a spiking max: the pooled neuron's spike
  count at every step equals the largest spike count in its window. With
  ``max_pool="average"`` it becomes average pooling instead (cheaper on chips, less exact).
- Max pooling of a concat (SqueezeNet's fire modules: concat of two IF layers -> max
  pool) becomes a concat of max pools, one per branch (pooling is per channel, so this
  is exact), so that every spiking max pool reads spikes of one IF layer.
- The output layer integrates its input current without spiking; its membrane gives the
  prediction. Input enters as a constant current (``encoding="current"``, the default)
  or as Bernoulli rate-coded spikes of probability ``x`` (``"rate"``, inputs in [0, 1]).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnconv import neurons
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Concat, Graph, Layer, Pool, ReLU
from snnconv.ir.rewrite import PassResult

__all__ = ["Spike"]

ENCODINGS = ("current", "rate")
MAX_POOL_MODES = ("spiking", "average")
V_INITS = ("half", "dither")
GOLDEN = (5 ** 0.5 - 1) / 2


class Spike:
    name = "spike"

    def __init__(self, max_pool: str = "spiking", encoding: str = "current", v_init: str = "half",
                 model: str = "if", decay: int = 0, spikes_per_step: int | None = None):
        for name, value, allowed in (("max_pool", max_pool, MAX_POOL_MODES), ("encoding", encoding, ENCODINGS),
                                     ("v_init", v_init, V_INITS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        self.max_pool = max_pool
        self.encoding = encoding
        self.v_init = v_init
        self.model, self.decay, self.spikes_per_step = model, decay, spikes_per_step

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("normalized"):
            raise BadGraphError(f"graph {graph.name!r} is not normalized; run the normalize pass before spike")
        layers, converted, averaged = [], 0, 0
        constant = _driven_by_constant_current(graph) if self.encoding == "current" else set()
        pushed, dropped = _max_pools_through_concats(graph, self.max_pool)
        for layer in (layer for old in graph for layer in pushed.get(old.name, [old]) if layer.name not in dropped):
            if isinstance(layer, ReLU):
                dither = self.v_init == "dither" and layer.name in constant
                layer = IF(name=layer.name, inputs=layer.inputs, shape=layer.shape, model=self.model, threshold=1.0,
                           reset="subtract", v_init=_dithered(layer.shape) if dither else 0.5, decay=self.decay,
                           spikes_per_step=self.spikes_per_step)
                neurons.of(layer)
                converted += 1
            elif isinstance(layer, Pool) and layer.mode == "max" and self.max_pool == "average":
                layer = dataclasses.replace(layer, mode="avg", count_include_pad=False)
                averaged += 1
            layers.append(layer)
        notes = {"if_layers": converted, "max_pools_averaged": averaged, "encoding": self.encoding,
                 "v_init": self.v_init, "neuron": self.model, "decay": self.decay,
                 "spikes_per_step": self.spikes_per_step}
        if pushed:
            notes["max_pools_through_concat"] = sorted(pushed)
        return PassResult(graph.rebuilt(layers, spiking=True, encoding=self.encoding), True, notes)


def _max_pools_through_concats(graph: Graph, max_pool: str) -> tuple[dict[str, list[Layer]], set[str]]:
    """Per max pool reading a concat: one pool per branch and a concat of them under the pool's name;
    and the concats left without readers."""
    if max_pool != "spiking":
        return {}, set()
    pushed, readers_left = {}, {}
    for layer in graph:
        if not (isinstance(layer, Pool) and layer.mode == "max" and isinstance(graph[layer.inputs[0]], Concat)):
            continue
        concat = graph[layer.inputs[0]]
        pools = [dataclasses.replace(layer, name=f"{layer.name}/{src}", inputs=(src,),
                                     shape=(graph[src].shape[0], *layer.shape[1:])) for src in concat.inputs]
        pushed[layer.name] = [*pools, Concat(name=layer.name, inputs=tuple(p.name for p in pools), shape=layer.shape)]
        readers_left.setdefault(concat.name, len(graph.consumers(concat.name)))
        readers_left[concat.name] -= 1
    return pushed, {name for name, left in readers_left.items() if left == 0}


def _driven_by_constant_current(graph: Graph) -> set[str]:
    """The ReLUs whose input depends on the network input through linear layers only."""
    linear, first = {graph.input.name}, set()
    for layer in graph.layers[1:]:
        if layer.inputs and all(src in linear for src in layer.inputs):
            (first if isinstance(layer, ReLU) else linear).add(layer.name)
    return first


def _dithered(shape: tuple[int, ...]) -> np.ndarray:
    """Initial membranes spread over [0.25, 0.75) by the golden-ratio sequence."""
    n = np.arange(int(np.prod(shape)))
    return (0.5 + 0.5 * ((n * GOLDEN) % 1.0 - 0.5)).reshape(shape).astype(np.float32)
