"""Property test: random convertible networks, partitioned for every target shrunk to small cores.

Shrinking the cores (64 compartments, 96 input axons, a synapse memory for a few hundred
synapses) makes small networks exercise what big ones meet on real cores: channel and
spatial tiling with halos, input groups that accumulate, cores shared between layers.
The independent checker must accept every partition, or partitioning must refuse with
DoesNotFitError naming a layer.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mapping_checker import check

from snnconv import targets
from snnconv.errors import DoesNotFitError
from snnconv.ir import Add, Conv, Dense, Flatten, Graph, Input, Output, Pool, ReLU
from snnconv.passes.partition import Partition
from snnconv.passes.place import Place
from snnconv.pipeline import convert

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def small_cores(name: str):
    target = targets.get(name)
    neurons = 64 if not isinstance(target.core.neurons, tuple) else tuple(64 for _ in target.core.neurons)
    bits = max(target.precision.weight_bits, 8) * 600
    memory = bits if not isinstance(target.core.synapse_memory_bits, tuple) else \
        tuple(bits for _ in target.core.synapse_memory_bits)
    core = dataclasses.replace(target.core, neurons=neurons, input_axons=96, synapse_memory_bits=memory)
    return dataclasses.replace(target, core=core)


class _Net:
    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]):
        self.rng = rng
        self.layers = [Input(name="x", inputs=(), shape=shape)]
        self.last, self.shape = "x", shape

    def add(self, layer) -> str:
        layer = dataclasses.replace(layer, shape=layer.infer_shape([self.shape_of(src) for src in layer.inputs]))
        self.layers.append(layer)
        self.last, self.shape = layer.name, layer.shape
        return layer.name

    def shape_of(self, name: str) -> tuple[int, ...]:
        return next(layer.shape for layer in self.layers if layer.name == name)

    def conv_relu(self, src: str, channels: int, kernel: int, stride: int, groups: int = 1) -> str:
        c_in = self.shape_of(src)[0]
        pad = kernel // 2
        weight = self.rng.normal(size=(channels, c_in // groups, kernel, kernel)) / math.sqrt(kernel * kernel * c_in)
        conv = self.add(Conv(name=f"conv{len(self.layers)}", inputs=(src,), shape=(1,), weight=weight.astype(np.float32),
                             bias=self.rng.normal(scale=0.1, size=channels).astype(np.float32), stride=(stride, stride),
                             pads=(pad, pad, pad, pad), groups=groups))
        return self.add(ReLU(name=f"relu{len(self.layers)}", inputs=(conv,), shape=(1,)))


@st.composite
def networks(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    net = _Net(rng, (draw(st.integers(1, 3)), draw(st.integers(4, 10)), draw(st.integers(4, 10))))
    net.conv_relu("x", draw(st.integers(2, 6)), draw(st.sampled_from([1, 3])), 1)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "depthwise", "residual", "avg", "max"]))
        c, h, w = net.shape
        if kind == "conv":
            net.conv_relu(net.last, draw(st.integers(2, 8)), draw(st.sampled_from([1, 3])),
                          draw(st.sampled_from([1, 2])) if min(h, w) > 3 else 1)
        elif kind == "depthwise":
            net.conv_relu(net.last, c, 3, 1, groups=c)
        elif kind == "residual":
            start = net.last
            net.conv_relu(start, c, 3, 1)
            body = net.conv_relu(net.last, c, 1, 1)
            net.add(Add(name=f"add{len(net.layers)}", inputs=(start, body), shape=(1,)))
            net.add(ReLU(name=f"relu{len(net.layers)}", inputs=(net.last,), shape=(1,)))
        elif min(h, w) >= 2:
            net.add(Pool(name=f"pool{len(net.layers)}", inputs=(net.last,), shape=(1,), mode=kind, kernel=(2, 2),
                         stride=(2, 2)))
    flat = net.add(Flatten(name="flat", inputs=(net.last,), shape=(1,)))
    features = net.shape[0]
    dense = net.add(Dense(name="dense", inputs=(flat,), shape=(1,),
                          weight=(rng.normal(size=(5, features)) / math.sqrt(features)).astype(np.float32),
                          bias=np.zeros(5, np.float32)))
    net.add(Output(name="out", inputs=(dense,), shape=(1,)))
    return Graph.from_layers(net.layers), rng.random(size=(32, *net.layers[0].shape)).astype(np.float32)


@pytest.mark.parametrize("target", targets.names())
@SETTINGS
@given(case=networks())
def test_random_networks_partition_within_limits_for_every_target(target, case):
    graph, calibration = case
    chip = small_cores(target)
    quantized = convert(graph, calibration, target=chip).graph
    try:
        partitioned = Partition(chip).run(quantized).graph
    except DoesNotFitError as error:
        event("refused")
        assert "layer '" in str(error) and "needs more than a core has" in str(error)
        return
    event("partitioned")
    placed = Place(chip, chips=10_000).run(partitioned).graph
    check(placed, chip)
