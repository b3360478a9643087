"""Pre-quantized QDQ models: DequantizeLinear of constant int8 weights folds to float weights, and
QuantizeLinear -> DequantizeLinear pairs on activations become capped ReLUs or go.

Oracle: onnxruntime running the same QDQ model; where a pair's rounding to its scale's grid
is dropped, within half a step per pair.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from helpers import TOLERANCE, assert_matches_onnxruntime, make_model, onnxruntime_output
from onnx import TensorProto
from onnx import helper as H

import snnconv
from snnconv.errors import UnsupportedOpError

try:
    import torch
except ImportError:  # the exporter tests skip
    torch = None

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("opset", [13, 19, 21])
def test_per_axis_int8_conv_and_dense_weights_fold_and_match_onnxruntime(opset):
    conv_q = RNG.integers(-128, 128, (4, 2, 3, 3), dtype=np.int8)
    dense_q = RNG.integers(0, 256, (4 * 5 * 5, 3), dtype=np.uint8)
    nodes = [H.make_node("DequantizeLinear", ["conv_q", "conv_scale", "conv_zero"], ["conv_w"], name="dq_conv", axis=0),
             H.make_node("Conv", ["x", "conv_w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             H.make_node("Relu", ["c"], ["r"], name="relu"),
             H.make_node("Flatten", ["r"], ["f"], name="flatten"),
             H.make_node("DequantizeLinear", ["dense_q", "dense_scale", "dense_zero"], ["dense_w"], name="dq_dense",
                         axis=1),
             H.make_node("MatMul", ["f", "dense_w"], ["y"], name="dense")]
    weights = {"conv_q": conv_q, "conv_scale": RNG.uniform(0.001, 0.02, 4).astype(np.float32),
               "conv_zero": np.zeros(4, np.int8), "dense_q": dense_q,
               "dense_scale": RNG.uniform(0.001, 0.01, 3).astype(np.float32),
               "dense_zero": np.array([128, 120, 131], np.uint8)}
    model = make_model(nodes, (1, 2, 5, 5), weights, opset=opset, output_rank=2)
    x = RNG.random((4, 2, 5, 5), dtype=np.float32)
    graph = snnconv.load_onnx(model)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x), onnxruntime_output(model, x), atol=TOLERANCE, rtol=0)


# --- activation quantizers: QuantizeLinear -> DequantizeLinear pairs -------------------------------------------


def _pair(tensor: str, out: str, name: str, **attributes) -> list:
    """A QuantizeLinear -> DequantizeLinear pair on ``tensor`` with the initializers ``scale`` and ``zero``."""
    return [H.make_node("QuantizeLinear", [tensor, "scale", "zero"], [f"{name}_q"], name=f"{name}_quantize",
                        **attributes),
            H.make_node("DequantizeLinear", [f"{name}_q", "scale", "zero"], [out], name=name, **attributes)]


def _conv(out: str = "c") -> H.NodeProto:
    return H.make_node("Conv", ["x", "w", "b"], [out], name="conv", pads=[1, 1, 1, 1])


def _conv_weights(scale: float, zero: np.ndarray) -> dict:
    return {"w": RNG.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), "b": RNG.normal(0, 0.2, 3).astype(np.float32),
            "scale": np.array(scale, np.float32), "zero": zero}


def _actions(graph) -> list[str]:
    return [entry["action"] for entry in graph.fact("fake_quant")]


def _compare(model, x, scale: float, roundings: int = 1) -> snnconv.Graph:
    """The IR against onnxruntime, which also rounds to the scale's grid: each pair moves a value by s/2 at most."""
    graph = snnconv.load_onnx(model)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x), onnxruntime_output(model, x), rtol=0,
                               atol=roundings * scale / 2 + TOLERANCE)
    return graph


@pytest.mark.parametrize("opset, zero, scale", [(13, np.array(0, np.uint8), 0.01), (13, np.array(-128, np.int8), 0.01),
                                                (19, np.array(0, np.uint8), 0.01),
                                                (21, np.array(0, np.uint16), 1e-4),
                                                (21, np.array(-32768, np.int16), 1e-4)])
def test_a_pair_whose_range_starts_at_zero_is_a_relu_capped_at_its_top(opset, zero, scale):
    """onnxruntime's quantizer removes a Relu before a uint8 pair with zero point 0: the pair clips at 0 itself."""
    model = make_model([_conv(), *_pair("c", "y", "fq")], (1, 2, 5, 5), _conv_weights(scale, zero), opset=opset)
    x = RNG.normal(0, 2, (4, 2, 5, 5)).astype(np.float32)
    graph = _compare(model, x, scale)
    top = scale * (np.iinfo(zero.dtype).max - int(zero))
    relu = graph["fq"]
    assert relu.kind == "relu" and relu.max_value == pytest.approx(top)
    assert snnconv.ann.evaluate(graph, x).max() == pytest.approx(top, rel=1e-6)  # the data reach the ceiling
    assert _actions(graph) == ["ceiling"]


def test_a_signed_pair_after_a_relu_caps_it_and_canonicalize_merges_the_two():
    from snnconv.passes.canonicalize import Canonicalize

    nodes = [_conv(), H.make_node("Relu", ["c"], ["r"], name="relu"), *_pair("r", "y", "fq")]
    model = make_model(nodes, (1, 2, 5, 5), _conv_weights(0.01, np.array(0, np.int8)))  # int8 symmetric: [-1.28, 1.27]
    graph = _compare(model, RNG.normal(0, 2, (4, 2, 5, 5)).astype(np.float32), 0.01)
    assert _actions(graph) == ["ceiling"]
    merged = Canonicalize().run(graph).graph
    assert [(layer.kind, layer.max_value) for layer in merged if layer.kind == "relu"] == [("relu", pytest.approx(1.27))]


def test_a_pair_on_values_already_within_its_range_only_rounds_and_goes():
    """onnxruntime quantizes a pool's output with its input's scale: the pool of a capped ReLU stays within it."""
    nodes = [_conv(), *_pair("c", "r", "fq_relu"), H.make_node("AveragePool", ["r"], ["p"], name="pool",
                                                               kernel_shape=[2, 2], strides=[2, 2]),
             *_pair("p", "y", "fq_pool")]
    model = make_model(nodes, (1, 2, 6, 6), _conv_weights(0.01, np.array(0, np.uint8)))
    graph = _compare(model, RNG.normal(0, 2, (4, 2, 6, 6)).astype(np.float32), 0.01, roundings=2)
    assert _actions(graph) == ["ceiling", "rounding dropped"]
    assert [layer.kind for layer in graph] == ["input", "conv", "relu", "pool", "output"]


def test_a_pair_on_a_signed_tensor_is_dropped_and_recorded_with_its_range():
    """Within the range the quantizer's calibration chose, dropping the pair changes only the rounding."""
    model = make_model([_conv(), *_pair("c", "y", "fq")], (1, 2, 5, 5), _conv_weights(0.05, np.array(128, np.uint8)))
    x = RNG.normal(0, 0.5, (4, 2, 5, 5)).astype(np.float32)
    graph = _compare(model, x, 0.05)
    assert np.abs(snnconv.ann.evaluate(graph, x)).max() < 6.35  # inside [lo, hi]: no clipping was dropped
    (entry,) = graph.fact("fake_quant")
    assert entry["action"] == "dropped: signed"
    assert (entry["low"], entry["high"]) == (pytest.approx(-6.4), pytest.approx(6.35))
    assert [layer.kind for layer in graph] == ["input", "conv", "output"]


def test_a_pair_on_the_input_is_dropped_and_exact_for_data_on_its_grid():
    """MNIST's pixels are k / 255, the grid of a uint8 input quantizer over [0, 1]."""
    weights = _conv_weights(1 / 255, np.array(0, np.uint8))
    model = make_model([*_pair("x", "xq", "fq_input"), H.make_node("Conv", ["xq", "w", "b"], ["y"], name="conv")],
                       (1, 2, 5, 5), weights)
    x = (RNG.integers(0, 256, (4, 2, 5, 5)) / 255).astype(np.float32)
    graph = assert_matches_onnxruntime(model, x)
    assert _actions(graph) == ["dropped: input"]


def test_a_pair_after_the_output_softmax_is_dropped_and_the_host_applies_the_softmax():
    """onnxruntime's quantizer writes a Softmax's probabilities on a grid of 1/256."""
    nodes = [H.make_node("MatMul", ["x", "w"], ["logits"], name="classes"),
             H.make_node("Softmax", ["logits"], ["p"], name="softmax", axis=1), *_pair("p", "y", "fq_probabilities")]
    weights = {"w": RNG.normal(0, 1, (6, 4)).astype(np.float32), "scale": np.array(1 / 256, np.float32),
               "zero": np.array(0, np.uint8)}
    graph = _compare(make_model(nodes, (1, 6), weights, output_rank=2), RNG.normal(0, 1, (8, 6)).astype(np.float32),
                     1 / 256)
    assert graph.output.activation == "softmax"
    assert _actions(graph) == ["dropped: after the output function"]


def test_a_requantizing_pair_is_refused():
    nodes = [_conv(), *_pair("c", "y", "fq")]
    nodes[-1] = H.make_node("DequantizeLinear", ["fq_q", "other_scale", "zero"], ["y"], name="fq")
    weights = {**_conv_weights(0.01, np.array(0, np.uint8)), "other_scale": np.array(0.02, np.float32)}
    with pytest.raises(UnsupportedOpError, match=r"node 'fq' \(DequantizeLinear.*a requantization"):
        snnconv.load_onnx(make_model(nodes, (1, 2, 5, 5), weights))


def test_a_float8_activation_grid_is_refused():
    model = make_model([_conv(), *_pair("c", "y", "fq")], (1, 2, 5, 5),
                       {k: v for k, v in _conv_weights(0.01, np.array(0, np.uint8)).items() if k != "zero"}, opset=19)
    model.graph.initializer.append(H.make_tensor("zero", TensorProto.FLOAT8E4M3FN, [], [0.0]))
    with pytest.raises(UnsupportedOpError, match=r"fq_quantize.*to float8_e4m3fn, not an integer grid"):
        snnconv.load_onnx(model)


class _FakeQuantized(torch.nn.Module if torch else object):
    """Quantization-aware training's fake quantizers, as torch exports them: input, weights, activation."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)

    def forward(self, x):
        x = torch.fake_quantize_per_tensor_affine(x, 1 / 255, 0, 0, 255)
        weight = torch.fake_quantize_per_channel_affine(self.conv.weight, torch.full((4,), 0.01),
                                                        torch.zeros(4, dtype=torch.int32), 0, -128, 127)
        y = torch.relu(torch.nn.functional.conv2d(x, weight, self.conv.bias))
        return torch.fake_quantize_per_tensor_affine(y, 0.002, 0, 0, 255)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_torch_fake_quantized_modules_from_either_exporter_match_onnxruntime(exporter):
    torch.manual_seed(0)
    x = (torch.randint(0, 256, (4, 1, 8, 8)) / 255).float()
    graph = _compare(_exported(_FakeQuantized().eval(), x, exporter), x.numpy(), 0.002)
    assert _actions(graph) == ["dropped: input", "ceiling"]


def _exported(module, x, exporter: str) -> onnx.ModelProto:
    """``module`` in ONNX; torch's dynamo exporter has no fake kernel of the fake quantizers for a dynamic batch,
    so it exports this batch's shape."""
    if exporter == "legacy":
        from snnconv.frontend.torch_export import export_module

        return export_module(module, x, "legacy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(module, (x,), dynamo=True, verbose=False).model_proto
