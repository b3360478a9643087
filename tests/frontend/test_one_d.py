"""1-D convolutions and pooling over [N, C, L] (audio, time series) against onnxruntime (max abs 1e-4).

snnconv holds 1-D data as 2-D of height 1: the input layer is (C, 1, L), kernels (1, k),
and records the source's (C, L) (``Input.source_shape``). The IR evaluator takes data as
(N, C, L) or (N, C, 1, L) and a 1-D result comes out as (N, C, 1, L'); the comparisons
reshape onnxruntime's (N, C, L') to match. tests/test_one_d_end_to_end.py compiles and runs
with (N, C, L) data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TOLERANCE, make_model, onnxruntime_output
from onnx import helper
from torch import nn

import snnconv
from snnconv.errors import UnsupportedOpError

H = helper.make_node
R = np.random.default_rng(1)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32) * 0.4


def held(graph: snnconv.Graph, x: np.ndarray) -> np.ndarray:
    """``x`` of shape (N, C, L) as the graph takes it, (N, C, 1, L)."""
    return x.reshape(len(x), *graph.input.shape)


def matches_onnxruntime_1d(model, x: np.ndarray) -> snnconv.Graph:
    graph = snnconv.load_onnx(model).validate()
    expected = onnxruntime_output(model, x)
    actual = snnconv.ann.evaluate(graph, held(graph, x))
    assert actual.size == expected.size
    np.testing.assert_allclose(actual.reshape(expected.shape), expected, rtol=0, atol=TOLERANCE)
    return graph


def conv_case(opset=13, **attrs):
    groups = attrs.get("group", 1)
    return make_model([H("Conv", ["x", "W", "B"], ["y"], **attrs)], (2, 4, 17), {"W": w(6, 4 // groups, 3), "B": w(6)},
                      opset=opset)


def pool_case(op, opset=13, **attrs):
    return make_model([H(op, ["x"], ["y"], **attrs)], (2, 3, 15), opset=opset)


CASES = {
    "conv_plain": conv_case(),
    "conv_opset9_strided_dilated_padded": conv_case(9, strides=[2], dilations=[2], pads=[1, 3]),
    "conv_same_upper_stride2": conv_case(auto_pad="SAME_UPPER", strides=[3]),
    "conv_same_lower": conv_case(22, auto_pad="SAME_LOWER"),
    "conv_groups": conv_case(group=2, pads=[1, 1]),
    "maxpool_pads_ceil": pool_case("MaxPool", 10, kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1),
    "maxpool_dilated": pool_case("MaxPool", 12, kernel_shape=[2], dilations=[3]),
    "avgpool_include_pad": pool_case("AveragePool", 11, kernel_shape=[4], strides=[2], pads=[2, 1],
                                     count_include_pad=1),
    "avgpool_exclude_pad_same": pool_case("AveragePool", 19, kernel_shape=[3], strides=[2], auto_pad="SAME_UPPER"),
    "global_average_pool": pool_case("GlobalAveragePool"),
    "global_max_pool": pool_case("GlobalMaxPool"),
    "reducemean_last_axis_flat": make_model([H("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=0)], (2, 3, 15),
                                            output_rank=2),
    "pad_conv_bn_relu_constant": make_model(
        [H("Pad", ["x", "p"], ["xp"]), H("Conv", ["xp", "W"], ["c"]),
         H("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"]), H("Relu", ["n"], ["r"]),
         H("Mul", ["r", "k"], ["s"]), H("Add", ["s", "t"], ["y"])],
        (2, 3, 12), {"p": np.array([0, 0, 2, 0, 0, 1], np.int64), "W": w(5, 3, 3), "g": w(5), "b": w(5), "m": w(5),
                     "v": np.abs(w(5)) + 0.5, "k": w(5, 1), "t": w(13)}),
    "residual_concat": make_model(
        [H("Conv", ["x", "W"], ["a"], pads=[1, 1]), H("Relu", ["a"], ["r"]), H("Add", ["r", "x"], ["s"]),
         H("Concat", ["s", "r"], ["y"], axis=1)], (2, 3, 9), {"W": w(3, 3, 3)}),
    "unsqueeze_2d_pool_squeeze": make_model(
        [H("Unsqueeze", ["x", "ax"], ["u"]), H("AveragePool", ["u"], ["p"], kernel_shape=[1, 3], strides=[1, 2]),
         H("Squeeze", ["p", "ax"], ["q"]), H("Conv", ["q", "W"], ["y"])],
        (2, 3, 13), {"ax": np.array([2], np.int64), "W": w(4, 3, 2)}),
    "classifier_gap_softmax_flatten": make_model(
        [H("Conv", ["x", "W", "B"], ["c"], pads=[2, 2]), H("Relu", ["c"], ["r"]),
         H("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]), H("Conv", ["p", "W2"], ["c2"]),
         H("GlobalAveragePool", ["c2"], ["g"]), H("Softmax", ["g"], ["s"], axis=1), H("Flatten", ["s"], ["y"])],
        (2, 2, 20), {"W": w(6, 2, 5), "B": w(6), "W2": w(7, 6, 3)}, opset=11, output_rank=2),
    "conv_flatten_gemm": make_model(
        [H("Conv", ["x", "W"], ["c"], strides=[2]), H("Relu", ["c"], ["r"]), H("Flatten", ["r"], ["f"]),
         H("Gemm", ["f", "G"], ["y"], transB=1)], (2, 3, 11), {"W": w(4, 3, 3), "G": w(5, 20)}, output_rank=2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_1d_op_matches_onnxruntime(name):
    model = CASES[name]
    shape = [2 if d.dim_param else d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    matches_onnxruntime_1d(model, R.standard_normal(shape).astype(np.float32))


def test_1d_is_2d_of_height_one():
    graph = snnconv.load_onnx(CASES["conv_opset9_strided_dilated_padded"])
    conv = graph.layers[1]
    assert graph.input.shape == (4, 1, 17) and graph.input.source_shape == (4, 17)
    assert (conv.weight.shape, conv.stride, conv.dilation, conv.pads) == ((6, 4, 1, 3), (1, 2), (1, 2), (0, 1, 0, 3))
    assert graph.output.shape == (6, 1, 9)  # (17 + 1 + 3 - 2 * 2 - 1) // 2 + 1
    assert graph.output.activation is None
    assert snnconv.load_onnx(CASES["classifier_gap_softmax_flatten"]).output.activation == "softmax"


def test_rank3_input_without_spatial_ops_keeps_its_shape(matches_onnxruntime):
    model = make_model([H("Relu", ["x"], ["r"]), H("Flatten", ["r"], ["y"])], (2, 3, 5), output_rank=2)
    graph = matches_onnxruntime(model, R.standard_normal((2, 3, 5)).astype(np.float32))
    assert graph.input.shape == (3, 5) and graph.input.source_shape is None


@pytest.mark.parametrize("model, advice", [
    (make_model([H("Unsqueeze", ["x", "ax"], ["u"], name="to_column"),
                 H("AveragePool", ["u"], ["y"], kernel_shape=[3, 1])], (1, 3, 9), {"ax": np.array([3], np.int64)}),
     r"'to_column'.*only 1-D data \(N, C, L\) at axis 2"),
    (make_model([H("Conv", ["x", "W"], ["y"], name="volume")], (1, 2, 4, 4, 4), {"W": w(3, 2, 2, 2, 2)}),
     r"'volume'.*supports 1-D \(N, C, L\) and 2-D \(N, C, H, W\)"),
    (make_model([H("Conv", ["x", "W"], ["c"]), H("Softmax", ["c"], ["y"], name="per_step", axis=1)], (1, 2, 6),
                {"W": w(3, 2, 3)}),
     r"'per_step'.*only over the class scores"),
], ids=["unsqueeze_axis_3", "conv_3d", "softmax_over_channels_per_step"])
def test_refused_1d_structures_say_why(model, advice):
    with pytest.raises(UnsupportedOpError, match=advice):
        snnconv.load_onnx(model)


class KeywordSpotter(nn.Module):
    """A small 1-D CNN as audio and time-series models build them."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(2, 6, 5, padding=2), nn.BatchNorm1d(6), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(6, 8, 3, stride=2, dilation=2, padding=1), nn.ReLU(), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1),
        )
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_torch_conv1d_network_matches_torch(exporter):
    torch.manual_seed(0)
    module = KeywordSpotter().eval()
    with torch.no_grad():
        module.features[1].running_mean.uniform_(-0.3, 0.3)
        module.features[1].running_var.uniform_(0.5, 1.5)
    graph = snnconv.load_torch(module, torch.randn(2, 2, 32), exporter=exporter)
    assert graph.input.shape == (2, 1, 32)
    x = torch.randn(5, 2, 32)
    with torch.no_grad():
        expected = module(x).numpy()
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, held(graph, x.numpy())), expected, rtol=0, atol=TOLERANCE)


def test_a_1d_network_compiles_and_runs_on_the_chip_model():
    """End to end with data as (N, C, 1, L); the SNN agrees with the ANN on most samples at T = 32."""
    model = CASES["conv_flatten_gemm"]
    graph = snnconv.load_onnx(model)
    x = held(graph, R.standard_normal((64, 3, 11)).astype(np.float32))
    net = snnconv.compile(model, "loihi", x, timesteps=32)
    result = net.run(x, timesteps=32)
    ann = snnconv.ann.evaluate(graph, x).argmax(1)
    assert np.mean(result.predictions == ann) >= 0.8
