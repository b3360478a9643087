"""Spike: turn the normalized ReLU network into integrate-and-fire neurons.

- Every ReLU becomes an ``IF`` population: threshold 1 (the scale normalization gave the
  weights), reset by subtraction (the residue carries over, so the spike count tracks
  the integrated input to within one spike), membrane starting at half the threshold
  (rounds the rate to nearest instead of down, halving the mean error at small T).
- The layers between IF populations (conv, dense, average pooling, add, concat,
  flatten, affine) stay linear maps of spikes to synaptic current.
- Max pooling stays "max" and is simulated as a spiking max: the pooled neuron's spike
  count at every step equals the largest spike count in its window. With
  ``max_pool="average"`` it becomes average pooling instead (cheaper on chips, less exact).
- The output layer integrates its input current without spiking; its membrane gives the
  prediction. Input enters as a constant current (``encoding="current"``, the default)
  or as Bernoulli rate-coded spikes of probability ``x`` (``"rate"``, inputs in [0, 1]).
"""

from __future__ import annotations

import dataclasses

from snnconv.errors import BadGraphError
from snnconv.ir import IF, Graph, Pool, ReLU
from snnconv.ir.rewrite import PassResult

__all__ = ["Spike"]

ENCODINGS = ("current", "rate")
MAX_POOL_MODES = ("spiking", "average")


class Spike:
    name = "spike"

    def __init__(self, max_pool: str = "spiking", encoding: str = "current", v_init: float = 0.5):
        if max_pool not in MAX_POOL_MODES:
            raise ValueError(f"max_pool must be one of {MAX_POOL_MODES}, got {max_pool!r}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.max_pool = max_pool
        self.encoding = encoding
        self.v_init = v_init

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("normalized"):
            raise BadGraphError(f"graph {graph.name!r} is not normalized; run the normalize pass before spike")
        layers, converted, averaged = [], 0, 0
        for layer in graph:
            if isinstance(layer, ReLU):
                layer = IF(name=layer.name, inputs=layer.inputs, shape=layer.shape, threshold=1.0,
                           reset="subtract", v_init=self.v_init)
                converted += 1
            elif isinstance(layer, Pool) and layer.mode == "max" and self.max_pool == "average":
                layer = dataclasses.replace(layer, mode="avg", count_include_pad=False)
                averaged += 1
            layers.append(layer)
        notes = {"if_layers": converted, "max_pools_averaged": averaged, "encoding": self.encoding}
        return PassResult(graph.rebuilt(layers, spiking=True, encoding=self.encoding), True, notes)
