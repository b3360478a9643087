"""Legalize fan-in: give an average pool its own neurons when its readers' fan-in exceeds a core's axons.

A layer reading an average pool (often through a flatten: global average pooling before
the classifier) receives spikes from every neuron of every pooling window: fan-in
``window * inputs``, e.g. 4 x 4 x 1,024 = 16,384 source neurons for each class neuron of
MobileNet at 128 x 128, beyond the 4,096 input axons of a Loihi core. An IF population
after the pool (threshold 1, like every converted layer) fires at the pool's mean rate,
so its readers see ``inputs`` axons instead: the spiking average pooling of SNN
Toolbox and NxTF, paid for with one neuron per pooled value. It is inserted only where
needed; fan-in that no pool explains is left for partitioning to refuse. Where the pool
reads neurons firing several spikes per step (graded, burst: a stated ``spikes_per_step``),
the relay fires as they do: their mean is up to that many per step, which a binary relay
would cap at 1.
"""

from __future__ import annotations

import math

from snnconv.ir import IF, Affine, Conv, Dense, Flatten, Graph, Input, Layer, Pool
from snnconv.ir.rewrite import PassResult, rewire
from snnconv.targets.target import Target

__all__ = ["LegalizeFanIn"]


class LegalizeFanIn:
    name = "legalize_fan_in"

    def __init__(self, target: Target):
        self.target = target

    def run(self, graph: Graph) -> PassResult:
        axons = self.target.core.input_axons
        layers = list(graph.layers)
        spiked = []
        for pool in graph:
            if isinstance(pool, Pool) and pool.mode == "avg" and (_fan_in_through(graph, pool) > axons
                                                                  or _read_by_max_pool(graph, pool)):
                several = _several_per_step(graph, pool)
                neurons = IF(name=f"{pool.name}/neurons", inputs=(pool.name,), shape=pool.shape, threshold=1.0,
                             reset="subtract", v_init=0.5, model=several.model if several else "if",
                             spikes_per_step=several.spikes_per_step if several else None)
                layers = rewire(layers, pool.name, neurons.name) + [neurons]
                spiked.append(pool.name)
        if not spiked:
            return PassResult(graph, False, {"spiking_pools": []})
        return PassResult(graph.rebuilt(layers), True, {"spiking_pools": spiked})


def _several_per_step(graph: Graph, pool: Pool) -> IF | None:
    """The population whose spikes the pool averages (through layers without weights), where it fires a stated
    number of spikes per step (graded, burst); None for binary neurons or currents."""
    layer = graph[pool.inputs[0]]
    while not isinstance(layer, (IF, Input, Conv, Dense, Affine)):
        layer = graph[layer.inputs[0]]
    return layer if isinstance(layer, IF) and layer.spikes_per_step is not None else None


def _fan_in_through(graph: Graph, pool: Pool) -> int:
    """Source neurons one neuron reading this pool (through flattens) depends on: fan-in x window."""
    window = math.prod(pool.kernel)
    fan_in = 0
    for reader in _readers_through_flatten(graph, pool):
        if isinstance(reader, (Dense, Conv)):
            fan_in = max(fan_in, reader.fan_in(graph.input_shapes(reader)) * window)
    return fan_in


def _read_by_max_pool(graph: Graph, pool: Pool) -> bool:
    return any(isinstance(r, Pool) and r.mode == "max" for r in graph.consumers(pool.name))


def _readers_through_flatten(graph: Graph, layer: Layer) -> list[Layer]:
    readers = []
    for reader in graph.consumers(layer.name):
        readers += _readers_through_flatten(graph, reader) if isinstance(reader, Flatten) else [reader]
    return readers
