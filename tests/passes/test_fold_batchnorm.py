"""BN folding is exact against the float evaluator (1e-5), folds where it can, keeps where it must."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import snnconv
from snnconv.passes.fold_batchnorm import FoldBatchNorm

H = helper.make_node
R = np.random.default_rng(2)
X = R.standard_normal((4, 3, 8, 8)).astype(np.float32)


def bn(name, inp, out, channels):
    inits = {f"{name}_g": R.uniform(0.5, 2, channels), f"{name}_b": R.standard_normal(channels),
             f"{name}_m": R.standard_normal(channels), f"{name}_v": R.uniform(0.2, 2, channels)}
    node = H("BatchNormalization", [inp, *inits], [out], name=name)
    return node, {k: v.astype(np.float32) for k, v in inits.items()}


def conv(name, inp, out, cin, cout, **attrs):
    inits = {f"{name}_w": R.standard_normal((cout, cin, 3, 3)).astype(np.float32) * 0.3,
             f"{name}_b": R.standard_normal(cout).astype(np.float32)}
    return H("Conv", [inp, *inits], [out], name=name, **attrs), inits


def _fold(nodes_and_inits, output_rank=4):
    nodes = [n for n, _ in nodes_and_inits]
    inits = {k: v for _, i in nodes_and_inits for k, v in i.items()}
    graph = snnconv.load_onnx(make_model(nodes, X.shape, inits, output_rank=output_rank))
    result = FoldBatchNorm().run(graph)
    result.graph.validate()
    np.testing.assert_allclose(snnconv.ann.evaluate(result.graph, X), snnconv.ann.evaluate(graph, X), rtol=0, atol=1e-5)
    return result


def test_bn_after_conv_folds_backward():
    result = _fold([conv("c1", "x", "a", 3, 5, pads=[1, 1, 1, 1]), bn("bn", "a", "b", 5), (H("Relu", ["b"], ["y"]), {})])
    assert [layer.kind for layer in result.graph] == ["input", "conv", "relu", "output"]
    assert result.notes["folded"] == ["bn"]


def test_input_bn_folds_forward_through_zero_padding_exactly():
    """A shift folded through a padded conv makes a per-neuron bias: exact at the borders."""
    result = _fold([bn("bn", "x", "a", 3), conv("c1", "a", "b", 3, 4, pads=[1, 1, 1, 1]), (H("Relu", ["b"], ["y"]), {})])
    conv_layer = next(layer for layer in result.graph if layer.kind == "conv")
    assert conv_layer.bias.shape == (4, 8, 8)


def test_bn_after_pool_folds_into_strided_grouped_conv():
    result = _fold([conv("c1", "x", "a", 3, 4, pads=[1, 1, 1, 1]), (H("Relu", ["a"], ["r"]), {}),
                    (H("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), {}),
                    bn("bn", "p", "q", 4),
                    (H("Conv", ["q", "gw"], ["y"], group=2, strides=[2, 2], pads=[1, 0, 1, 0]),
                     {"gw": R.standard_normal((4, 2, 3, 3)).astype(np.float32)})])
    assert "affine" not in [layer.kind for layer in result.graph]


def test_bn_before_flatten_and_dense_folds():
    result = _fold([(H("Relu", ["x"], ["r"]), {}), bn("bn", "r", "b", 3), (H("Flatten", ["b"], ["f"]), {}),
                    (H("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
                     {"fw": R.standard_normal((5, 192)).astype(np.float32), "fb": np.zeros(5, np.float32)})],
                   output_rank=2)
    assert [layer.kind for layer in result.graph] == ["input", "relu", "flatten", "dense", "output"]


def test_bn_between_add_and_relu_is_kept_as_affine():
    result = _fold([(H("Relu", ["x"], ["r"]), {}), conv("c1", "r", "a", 3, 3, pads=[1, 1, 1, 1]),
                    (H("Add", ["a", "r"], ["s"]), {}), bn("bn", "s", "b", 3), (H("Relu", ["b"], ["y"]), {})])
    assert result.notes["kept_affine"] == ["bn"]
    assert "affine" in [layer.kind for layer in result.graph]


@pytest.mark.parametrize("model", ["cnn", "resnet", "mlp"])
def test_bundled_models_lose_all_batchnorms(model):
    from importlib import resources

    path = resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx")
    graph = snnconv.load_onnx(str(path))
    folded = FoldBatchNorm().run(graph).graph
    assert not [layer for layer in folded if layer.kind in ("batchnorm", "affine")]
    x = np.load(resources.files("snnconv.models").joinpath("mnist_test.npz"))["x"][:100]
    np.testing.assert_allclose(snnconv.ann.evaluate(folded, x), snnconv.ann.evaluate(graph, x), rtol=0, atol=1e-4)
