"""BN folding is exact against the float evaluator (1e-5 absolute plus float32 rounding, 1e-6 relative, of outputs
that chained convs make large), folds where it can, keeps where it must."""

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
    np.testing.assert_allclose(snnconv.ann.evaluate(result.graph, X), snnconv.ann.evaluate(graph, X), rtol=1e-6, atol=1e-5)
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


def test_bn_between_add_and_relu_with_a_spiking_shortcut_becomes_a_depthwise_conv():
    """relu(s (conv(r) + r) + t): the conv branch is scaled, the ReLU branch gets a 1x1 depthwise conv (s, t)."""
    result = _fold([(H("Relu", ["x"], ["r"]), {}), conv("c1", "r", "a", 3, 3, pads=[1, 1, 1, 1]),
                    (H("Add", ["a", "r"], ["s"]), {}), bn("bn", "s", "b", 3), (H("Relu", ["b"], ["y"]), {})])
    assert not result.notes["kept_affine"]
    shortcut = result.graph["bn/1"]
    assert shortcut.kind == "conv" and shortcut.groups == 3 and shortcut.weight.shape == (3, 1, 1, 1)


def test_bn_after_add_with_other_readers_and_no_relu_is_kept():
    """The sum also feeds the output and the BN feeds no ReLU: copying is not tried, the affine stays."""
    result = _fold([(H("Relu", ["x"], ["r"]), {}), conv("c1", "r", "a", 3, 3, pads=[1, 1, 1, 1]),
                    (H("Add", ["a", "r"], ["s"]), {}), bn("bn", "s", "b", 3), (H("Add", ["b", "s"], ["y"]), {})])
    assert result.notes["kept_affine"] == ["bn"]
    assert [layer.name for layer in result.graph if layer.kind == "affine"] == ["bn"]


@pytest.mark.parametrize("model", ["cnn", "resnet", "mlp"])
def test_bundled_models_lose_all_batchnorms(model):
    from importlib import resources

    path = resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx")
    graph = snnconv.load_onnx(str(path))
    folded = FoldBatchNorm().run(graph).graph
    assert not [layer for layer in folded if layer.kind in ("batchnorm", "affine")]
    x = np.load(resources.files("snnconv.models").joinpath("mnist_test.npz"))["x"][:100]
    np.testing.assert_allclose(snnconv.ann.evaluate(folded, x), snnconv.ann.evaluate(graph, x), rtol=0, atol=1e-4)


def _kinds(result):
    return [layer.kind for layer in result.graph]


def _relu_conv(name, inp, out, cin, cout):
    """A spiking source for the structures below: conv then ReLU."""
    node, inits = conv(name, inp, f"{name}_pre", cin, cout, pads=[1, 1, 1, 1])
    return [(node, inits), (H("Relu", [f"{name}_pre"], [out]), {})]


@pytest.mark.parametrize("pool", [
    H("AveragePool", ["q"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1,
      ceil_mode=1),
    H("AveragePool", ["q"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]),
    H("MaxPool", ["q"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
], ids=["avg_counting_pads_ceil", "avg_uneven_pads", "max_padded"])
def test_bn_after_relu_folds_forward_through_pooling_into_the_next_conv(pool):
    """conv -> ReLU -> BN -> pool -> conv: the BN moves past the pool into the conv (scales are positive here)."""
    result = _fold([*_relu_conv("c1", "x", "r", 3, 4), bn("bn", "r", "q", 4), (pool, {}),
                    conv("c2", "p", "y", 4, 5, pads=[1, 1, 1, 1])])
    assert _kinds(result) == ["input", "conv", "relu", "pool", "conv", "output"]
    assert result.notes == {"folded": ["bn"], "kept_affine": []}


def test_bn_after_relu_folds_through_pool_and_flatten_into_dense():
    result = _fold([*_relu_conv("c1", "x", "r", 3, 4), bn("bn", "r", "q", 4),
                    (H("MaxPool", ["q"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), {}),
                    (H("Flatten", ["p"], ["f"]), {}),
                    (H("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
                     {"fw": R.standard_normal((5, 64)).astype(np.float32), "fb": np.zeros(5, np.float32)})],
                   output_rank=2)
    assert _kinds(result) == ["input", "conv", "relu", "pool", "flatten", "dense", "output"]


def test_bn_with_a_negative_scale_does_not_move_past_max_pooling():
    """max(s x + t) = s max(x) + t needs s >= 0: with one negative gamma the BN is kept, the graph unchanged."""
    node, inits = bn("bn", "r", "q", 4)
    inits["bn_g"] = np.array([1.0, -0.5, 2.0, 0.7], np.float32)
    result = _fold([*_relu_conv("c1", "x", "r", 3, 4), (node, inits),
                    (H("MaxPool", ["q"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), {}),
                    conv("c2", "p", "y", 4, 5, pads=[1, 1, 1, 1])])
    assert result.notes["kept_affine"] == ["bn"]
    assert _kinds(result) == ["input", "conv", "relu", "affine", "pool", "conv", "output"]


def test_two_affines_after_relu_merge_and_fold_forward():
    """ReLU -> Mul by a constant -> BN -> max pool -> conv: the BN merges into the Mul, the pair folds forward."""
    result = _fold([*_relu_conv("c1", "x", "r", 3, 4),
                    (H("Mul", ["r", "m"], ["rm"]), {"m": R.uniform(0.5, 2, (4, 1, 1)).astype(np.float32)}),
                    bn("bn", "rm", "q", 4), (H("MaxPool", ["q"], ["p"], kernel_shape=[2, 2], strides=[2, 2]), {}),
                    conv("c2", "p", "y", 4, 5, pads=[1, 1, 1, 1])])
    assert "affine" not in _kinds(result) and not result.notes["kept_affine"]


def test_bn_after_concat_splits_into_its_branches():
    """Pre-activation (DenseNet order): concat(conv, conv) -> BN -> ReLU, each channel range into its conv."""
    result = _fold([*_relu_conv("c0", "x", "r", 3, 3), conv("a", "r", "ya", 3, 2, pads=[1, 1, 1, 1]),
                    conv("b", "r", "yb", 3, 3, pads=[1, 1, 1, 1]), (H("Concat", ["ya", "yb"], ["c"], axis=1), {}),
                    bn("bn", "c", "n", 5), (H("Relu", ["n"], ["y"]), {})])
    assert _kinds(result) == ["input", "conv", "relu", "conv", "conv", "concat", "relu", "output"]


def test_bn_after_add_scales_both_branches_and_shifts_one():
    """Pre-activation (ResNet-v2 order): s (a + b) + t = (s a + t) + s b."""
    result = _fold([*_relu_conv("c0", "x", "r", 3, 3), conv("a", "r", "ya", 3, 3, pads=[1, 1, 1, 1]),
                    conv("b", "r", "yb", 3, 3, pads=[1, 1, 1, 1]), (H("Add", ["ya", "yb"], ["s"]), {}),
                    bn("bn", "s", "n", 3), (H("Relu", ["n"], ["y"]), {})])
    assert _kinds(result) == ["input", "conv", "relu", "conv", "conv", "add", "relu", "output"]


def test_bn_after_nested_add_and_concat_folds_into_every_branch():
    result = _fold([*_relu_conv("c0", "x", "r", 3, 3), conv("a", "r", "ya", 3, 2, pads=[1, 1, 1, 1]),
                    conv("b", "r", "yb", 3, 1, pads=[1, 1, 1, 1]), (H("Concat", ["ya", "yb"], ["c"], axis=1), {}),
                    conv("d", "r", "yd", 3, 3, pads=[1, 1, 1, 1]), (H("Add", ["c", "yd"], ["s"]), {}),
                    bn("bn", "s", "n", 3), (H("Relu", ["n"], ["y"]), {})])
    assert "affine" not in _kinds(result)


def test_pre_activation_sums_that_feed_the_next_sum_are_copied_per_bn():
    """ResNet-v2 stage: x1 = r + c1(r) feeds bn2 and x2 = x1 + c2(...); bn2 folds into copies of x1's layers."""
    result = _fold([(H("Relu", ["x"], ["r"]), {}), conv("c1", "r", "a", 3, 3, pads=[1, 1, 1, 1]),
                    (H("Add", ["r", "a"], ["x1"]), {}), bn("bn2", "x1", "n", 3), (H("Relu", ["n"], ["h"]), {}),
                    conv("c2", "h", "b", 3, 3, pads=[1, 1, 1, 1]), (H("Add", ["x1", "b"], ["y"]), {})])
    assert not result.notes["kept_affine"]
    kinds = [layer.kind for layer in result.graph]
    assert kinds.count("add") == 3 and kinds.count("conv") == 4  # x1, its copy, x2; c1, its copy, bn2's 1x1, c2


def test_bn_after_concat_with_a_shared_spiking_branch_folds_into_a_copy_and_a_depthwise_conv():
    """DenseNet block: concat(conv(r), r) also read elsewhere; the BN before the ReLU gets its own concat."""
    result = _fold([*_relu_conv("c0", "x", "r", 3, 3), conv("a", "r", "ya", 3, 2, pads=[1, 1, 1, 1]),
                    (H("Concat", ["ya", "r"], ["c"], axis=1), {}), bn("bn", "c", "n", 5), (H("Relu", ["n"], ["m"]), {}),
                    conv("e", "m", "ye", 5, 5, pads=[1, 1, 1, 1]), (H("Add", ["ye", "c"], ["y"]), {})])
    assert not result.notes["kept_affine"]
    assert [layer.kind for layer in result.graph].count("concat") == 2


@pytest.mark.parametrize("relu_between", [True, False])
def test_depthwise_separable_bn_folds_into_the_depthwise_conv(relu_between):
    """MobileNet order: depthwise conv -> BN [-> ReLU] -> pointwise conv -> BN -> ReLU."""
    dw = H("Conv", ["r", "dw_w", "dw_b"], ["d"], group=3, pads=[1, 1, 1, 1], name="dw")
    dw_inits = {"dw_w": R.standard_normal((3, 1, 3, 3)).astype(np.float32),
                "dw_b": R.standard_normal(3).astype(np.float32)}
    between = [(H("Relu", ["dn"], ["dr"]), {})] if relu_between else [(H("Identity", ["dn"], ["dr"]), {})]
    pw = H("Conv", ["dr", "pw_w"], ["p"], name="pw")
    pw_inits = {"pw_w": R.standard_normal((4, 3, 1, 1)).astype(np.float32)}
    result = _fold([*_relu_conv("c0", "x", "r", 3, 3), (dw, dw_inits), bn("bn1", "d", "dn", 3), *between,
                    (pw, pw_inits), bn("bn2", "p", "pn", 4), (H("Relu", ["pn"], ["y"]), {})])
    assert "affine" not in _kinds(result)
    assert result.notes["folded"] == ["bn1", "bn2"]
    depthwise = [layer for layer in result.graph if layer.kind == "conv" and layer.groups == 3]
    assert len(depthwise) == 1 and depthwise[0].weight.shape == (3, 1, 3, 3)
