"""Hypothesis strategies for the property tests: random convertible networks and shrunk cores.

``networks()`` draws a small float ANN (an IR graph) and calibration data for it: a first
convolution, then one to three blocks among convolution (stride 1 or 2), depthwise
convolution, a residual block (conv, conv, add, ReLU), two branches joined by a concat,
nearest upsampling (1-2 x 1-3, of maps up to 8 x 8), and average or max pooling (2x2 / stride 2, or overlapping 3x3 / stride 1; max pooling
only of spikes: after a ReLU or another max pool, as conversion requires); then a
flatten, optionally a hidden dense layer, and a dense output of 5 classes. Or, one time
in four, an MLP on a vector input.

``small_cores(name)`` is a target whose cores are shrunk (64 compartments, 96 input
axons, a synapse memory for a few hundred synapses), so that small networks exercise what
big ones meet on real cores: channel and spatial tiling with halos, input groups that
accumulate, cores shared between layers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import strategies as st

from snnconv import targets
from snnconv.ir import Add, Concat, Conv, Dense, Flatten, Graph, Input, Output, Pool, ReLU, Upsample

__all__ = ["networks", "small_cores"]

BLOCKS = ("conv", "depthwise", "residual", "concat", "upsample", "avg", "max")
CLASSES = 5
CALIBRATION_SAMPLES = 32


def small_cores(name: str):
    target = targets.get(name)
    neurons = 64 if not isinstance(target.core.neurons, tuple) else tuple(64 for _ in target.core.neurons)
    bits = max(target.precision.weight_bits, 8) * 600
    memory = bits if not isinstance(target.core.synapse_memory_bits, tuple) else \
        tuple(bits for _ in target.core.synapse_memory_bits)
    core = dataclasses.replace(target.core, neurons=neurons, input_axons=96, synapse_memory_bits=memory)
    return dataclasses.replace(target, core=core)


class _Net:
    """A graph under construction; every layer gets a unique name and its inferred shape."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]):
        self.rng = rng
        self.layers = [Input(name="x", inputs=(), shape=shape)]
        self.last, self.shape = "x", shape

    def add(self, layer) -> str:
        layer = dataclasses.replace(layer, name=f"{layer.name}{len(self.layers)}",
                                    shape=layer.infer_shape([self.shape_of(src) for src in layer.inputs]))
        self.layers.append(layer)
        self.last, self.shape = layer.name, layer.shape
        return layer.name

    def shape_of(self, name: str) -> tuple[int, ...]:
        return next(layer.shape for layer in self.layers if layer.name == name)

    def conv_relu(self, src: str, channels: int, kernel: int, stride: int, groups: int = 1) -> str:
        c_in = self.shape_of(src)[0]
        pad = kernel // 2
        weight = self.rng.normal(size=(channels, c_in // groups, kernel, kernel)) / math.sqrt(kernel * kernel * c_in)
        conv = self.add(Conv(name="conv", inputs=(src,), shape=(1,), weight=weight.astype(np.float32),
                             bias=self.rng.normal(scale=0.1, size=channels).astype(np.float32), stride=(stride, stride),
                             pads=(pad, pad, pad, pad), groups=groups))
        return self.add(ReLU(name="relu", inputs=(conv,), shape=(1,)))

    def dense(self, src: str, features: int, relu: bool) -> str:
        fan_in = self.shape_of(src)[0]
        dense = self.add(Dense(name="dense", inputs=(src,), shape=(1,),
                               weight=(self.rng.normal(size=(features, fan_in)) / math.sqrt(fan_in)).astype(np.float32),
                               bias=self.rng.normal(scale=0.1, size=features).astype(np.float32)))
        return self.add(ReLU(name="relu", inputs=(dense,), shape=(1,))) if relu else dense

    def output(self) -> Graph:
        self.add(Output(name="out", inputs=(self.last,), shape=(1,)))
        return Graph.from_layers(self.layers)


def _spikes(layer) -> bool:
    """Whether ``layer`` becomes a spiking population (what a max pool must read)."""
    return isinstance(layer, ReLU) or isinstance(layer, Pool) and layer.mode == "max"


def _block(draw, net: _Net, kind: str) -> None:
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
        net.add(Add(name="add", inputs=(start, body), shape=(1,)))
        net.add(ReLU(name="relu", inputs=(net.last,), shape=(1,)))
    elif kind == "concat":
        start = net.last
        left = net.conv_relu(start, draw(st.integers(1, 4)), draw(st.sampled_from([1, 3])), 1)
        right = net.conv_relu(start, draw(st.integers(1, 4)), 3, 1)
        net.add(Concat(name="concat", inputs=(left, right), shape=(1,)))
    elif kind == "upsample":
        if max(h, w) <= 8:
            net.add(Upsample(name="up", inputs=(net.last,), shape=(1,),
                             factor=(draw(st.integers(1, 2)), draw(st.integers(1, 3)))))
    elif min(h, w) >= 2:
        kernel, stride = draw(st.sampled_from([(2, 2), (3, 1)])) if min(h, w) >= 3 else (2, 2)
        net.add(Pool(name="pool", inputs=(net.last,), shape=(1,), mode=kind, kernel=(kernel, kernel),
                     stride=(stride, stride)))


@st.composite
def networks(draw):
    """A float ANN graph and ``CALIBRATION_SAMPLES`` calibration samples in [0, 1)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if draw(st.integers(0, 3)) == 0:
        net = _Net(rng, (draw(st.integers(4, 40)),))
        for _ in range(draw(st.integers(1, 2))):
            net.dense(net.last, draw(st.integers(4, 48)), relu=True)
    else:
        net = _Net(rng, (draw(st.integers(1, 3)), draw(st.integers(4, 10)), draw(st.integers(4, 10))))
        net.conv_relu("x", draw(st.integers(2, 6)), draw(st.sampled_from([1, 3])), 1)
        for _ in range(draw(st.integers(1, 3))):
            kinds = BLOCKS if _spikes(net.layers[-1]) else tuple(kind for kind in BLOCKS if kind != "max")
            _block(draw, net, draw(st.sampled_from(kinds)))
        net.add(Flatten(name="flat", inputs=(net.last,), shape=(1,)))
        if draw(st.booleans()):
            net.dense(net.last, draw(st.integers(4, 32)), relu=True)
    net.dense(net.last, CLASSES, relu=False)
    calibration = rng.random(size=(CALIBRATION_SAMPLES, *net.layers[0].shape)).astype(np.float32)
    return net.output(), calibration
