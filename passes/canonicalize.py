"""Canonicalize: rewrite equivalent forms into the one later passes expect.

Rules, applied until none fires; each is exact in float arithmetic:
- ``Pad -> Conv``: zero padding merges into the convolution's own pads.
- ``ReLU -> ReLU``: one ReLU with the smaller ceiling.
- ``MaxPool -> ReLU`` becomes ``ReLU -> MaxPool``: ``relu(max(x)) = max(relu(x))``
  since ReLU is monotone, and spiking max pooling needs spikes (ReLU outputs) to pool.
(Identity and Dropout never reach the IR: the frontend aliases them away.)
"""

from __future__ import annotations

import dataclasses

from snnconv.ir import Conv, Graph, Layer, Pad, Pool, ReLU
from snnconv.ir.rewrite import PassResult, bypass, rewire

__all__ = ["Canonicalize"]


class Canonicalize:
    name = "canonicalize"

    def run(self, graph: Graph) -> PassResult:
        layers = list(graph.layers)
        fired: dict[str, int] = {}
        while True:
            for rule in (_merge_pad_into_conv, _merge_relus, _relu_before_max_pool):
                rewritten = rule(layers)
                if rewritten is not None:
                    layers = rewritten
                    fired[rule.__name__.strip("_")] = fired.get(rule.__name__.strip("_"), 0) + 1
                    break
            else:
                break
        return PassResult(graph.rebuilt(layers) if fired else graph, bool(fired), {"rewrites": fired})


def _readers(layers: list[Layer], name: str) -> list[Layer]:
    return [layer for layer in layers if name in layer.inputs]


def _only_reader(layers: list[Layer], name: str, kind: type) -> Layer | None:
    readers = _readers(layers, name)
    return readers[0] if len(readers) == 1 and isinstance(readers[0], kind) else None


def _merge_pad_into_conv(layers: list[Layer]) -> list[Layer] | None:
    for pad in layers:
        conv = _only_reader(layers, pad.name, Conv) if isinstance(pad, Pad) else None
        if conv is not None:
            pads = tuple(a + b for a, b in zip(conv.pads, pad.pads))
            merged = dataclasses.replace(conv, pads=pads)
            return bypass([merged if layer is conv else layer for layer in layers], pad.name)
    return None


def _merge_relus(layers: list[Layer]) -> list[Layer] | None:
    by_name = {layer.name: layer for layer in layers}
    for outer in layers:
        inner = by_name.get(outer.inputs[0]) if isinstance(outer, ReLU) else None
        if isinstance(inner, ReLU):
            ceilings = [m for m in (inner.max_value, outer.max_value) if m is not None]
            merged = dataclasses.replace(outer, inputs=inner.inputs, max_value=min(ceilings) if ceilings else None)
            layers = [merged if layer is outer else layer for layer in layers]
            return layers if _readers(layers, inner.name) else [layer for layer in layers if layer is not inner]
    return None


def _relu_before_max_pool(layers: list[Layer]) -> list[Layer] | None:
    by_name = {layer.name: layer for layer in layers}
    for pool in layers:
        if not (isinstance(pool, Pool) and pool.mode == "max") or isinstance(by_name[pool.inputs[0]], ReLU):
            continue
        relu = _only_reader(layers, pool.name, ReLU)
        if relu is None:
            continue
        new_relu = dataclasses.replace(relu, inputs=pool.inputs, shape=by_name[pool.inputs[0]].shape)
        new_pool = dataclasses.replace(pool, inputs=(relu.name,))
        swapped = [new_relu if layer is pool else new_pool if layer is relu else layer for layer in layers]
        # readers of the old ReLU now read the pool, which comes after it
        return [layer if layer is new_pool else _reading(layer, relu.name, pool.name) for layer in swapped]
    return None


def _reading(layer: Layer, old: str, new: str) -> Layer:
    return rewire([layer], old, new)[0]
