"""Canonicalize: each rewrite is exact against the float evaluator, and refuses where it must."""

from __future__ import annotations

import numpy as np
from helpers import make_model
from onnx import helper

import snnconv
from snnconv.passes.canonicalize import Canonicalize

H = helper.make_node
R = np.random.default_rng(1)
X = R.standard_normal((4, 3, 8, 8)).astype(np.float32)


def _run(nodes, inits=None):
    graph = snnconv.load_onnx(make_model(nodes, X.shape, inits or {}))
    result = Canonicalize().run(graph)
    result.graph.validate()
    np.testing.assert_allclose(snnconv.ann.evaluate(result.graph, X), snnconv.ann.evaluate(graph, X), rtol=0, atol=1e-5)
    return graph, result


def test_zero_pad_merges_into_conv():
    weights = {"W": R.standard_normal((4, 3, 3, 3)).astype(np.float32),
               "p": np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64)}
    _, result = _run([H("Pad", ["x", "p"], ["a"]), H("Conv", ["a", "W"], ["y"], pads=[1, 1, 1, 1])], weights)
    conv = next(layer for layer in result.graph if layer.kind == "conv")
    assert conv.pads == (2, 3, 1, 2) and "pad" not in [layer.kind for layer in result.graph]


def test_pad_read_twice_is_kept():
    weights = {"W": R.standard_normal((3, 3, 3, 3)).astype(np.float32),
               "p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}
    nodes = [H("Pad", ["x", "p"], ["a"]), H("Conv", ["a", "W"], ["b"]), H("Relu", ["a"], ["c"]),
             H("Conv", ["c", "W"], ["d"]), H("Add", ["b", "d"], ["y"])]
    _, result = _run(nodes, weights)
    assert "pad" in [layer.kind for layer in result.graph] and not result.changed


def test_relu_after_max_pool_moves_before_it_and_relus_merge():
    nodes = [H("MaxPool", ["x"], ["a"], kernel_shape=[2, 2], strides=[2, 2]), H("Relu", ["a"], ["b"]),
             H("Clip", ["b", "lo", "hi"], ["y"])]
    _, result = _run(nodes, {"lo": np.float32(0), "hi": np.float32(0.5)})
    assert [layer.kind for layer in result.graph] == ["input", "relu", "pool", "output"]
    assert result.graph.layers[1].max_value == 0.5


def test_max_pool_of_relu_output_is_left_alone():
    _, result = _run([H("Relu", ["x"], ["a"]), H("MaxPool", ["a"], ["y"], kernel_shape=[2, 2])])
    assert not result.changed
