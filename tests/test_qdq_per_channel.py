"""Per-channel QDQ weights on the chip: the bundled MNIST CNN quantized by onnxruntime's quantize_static with
``per_channel=True`` (int8 weights, one scale per output channel, uint8 activations), compiled for loihi and
run on the chip model; and the same model with each channel's scale snapped to the nearest power of two and its
integers re-quantized (saturating at 127), as a fixed-point quantizer would write them.

Oracles: onnxruntime running each QDQ model, quantizers included, on the bundled test digits; the model's own
int8 initializers for what the chip stores; and, where the integers cannot be kept, the least-squares relative
difference between the chip's weights and the quantizer's (one free factor per layer), for the report's figure.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import onnx
import pytest
from helpers import calibration_reader, onnxruntime_output

import snnconv

quantization = pytest.importorskip("onnxruntime.quantization")
from onnxruntime.quantization.shape_inference import quant_pre_process

MODELS = resources.files("snnconv.models")
CALIBRATION = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))
TIMESTEPS = 32
HOST = "/0/Conv"  # the conv reading the input: the host computes it, in float


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``{"onnxruntime": per-channel QDQ model, "power_of_two": it with power-of-two channel scales}``."""
    folder = tmp_path_factory.mktemp("qdq_per_channel")
    quant_pre_process(str(MODELS.joinpath("mnist_cnn.onnx")), str(folder / "preprocessed.onnx"))
    quantization.quantize_static(str(folder / "preprocessed.onnx"), str(folder / "qdq.onnx"),
                                 calibration_reader(CALIBRATION), quant_format=quantization.QuantFormat.QDQ,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8, per_channel=True)
    model = onnx.load(folder / "qdq.onnx")
    return {"onnxruntime": model, "power_of_two": _power_of_two_scales(model)}


@pytest.fixture(scope="module")
def compiled(models):
    """Each model compiled for loihi at T = 32, with its predictions on the test digits."""
    result = {}
    for name, model in models.items():
        net = snnconv.compile(model, "loihi", CALIBRATION, timesteps=TIMESTEPS, tune="off")
        result[name] = net, net.run(TEST["x"], timesteps=TIMESTEPS).predictions
    return result


def _weight_quantizers(model: onnx.ModelProto) -> dict[str, tuple[np.ndarray, np.ndarray, int, str]]:
    """Per DequantizeLinear of a constant: (integers, scales, axis, the node reading the weights)."""
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    readers = {name: node.name for node in model.graph.node for name in node.input}
    found = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants and constants[node.input[0]].ndim > 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            found[node.name] = (constants[node.input[0]], constants[node.input[1]], axis, readers[node.output[0]])
    return found


def _power_of_two_scales(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with each weight channel's scale ``s`` at the nearest power of two ``s'`` (in log2) and its integers
    re-quantized, ``q' = clip(round(q s / s'), -127, 127)``. (Raising every scale to the next power of two would
    give this net one scale per layer: its channels' scales lie within one octave.)"""
    snapped = onnx.ModelProto()
    snapped.CopyFrom(model)
    initializers = {t.name: t for t in snapped.graph.initializer}
    for node in snapped.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers:
            continue
        q = onnx.numpy_helper.to_array(initializers[node.input[0]])
        scale = onnx.numpy_helper.to_array(initializers[node.input[1]])
        if q.ndim < 2:  # a bias: int32 under the product of the input's and the weight's scales; left as it is
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        power = (2.0 ** np.round(np.log2(scale))).astype(np.float32)
        shape = [1] * q.ndim
        shape[axis] = -1
        requantized = np.clip(np.round(q * (scale / power).reshape(shape)), -127, 127).astype(q.dtype)
        initializers[node.input[0]].CopyFrom(onnx.numpy_helper.from_array(requantized, node.input[0]))
        initializers[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(power, node.input[1]))
    return snapped


def _chip_rows(weight: np.ndarray, q: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The chip's weights and the quantizer's integers, one row per output channel."""
    q = np.moveaxis(q, axis, 0)
    if q.shape != weight.shape:  # Gemm's B without transB: (in, out), channels along axis 1
        q = q.reshape(weight.shape)
    return weight.reshape(len(weight), -1), q.reshape(len(q), -1).astype(np.float64)


def test_the_scales_are_per_channel_and_differ_within_each_layer(models):
    """The oracle for what follows: onnxruntime's scales are not powers of two apart, so they cannot share one
    threshold; the snapped ones are, and still differ (a per-channel grid, not one scale per layer)."""
    for scale in (s for _, s, _, _ in _weight_quantizers(models["onnxruntime"]).values()):
        assert scale.size > 1 and np.ptp(np.log2(scale) % 1) > 0.1
    for scale in (s for _, s, _, _ in _weight_quantizers(models["power_of_two"]).values()):
        assert len(np.unique(scale)) > 1 and np.all(np.log2(scale) == np.round(np.log2(scale)))


@pytest.mark.parametrize("name", ["onnxruntime", "power_of_two"])
def test_the_snn_on_the_chip_model_agrees_with_the_qdq_model_at_t32(models, compiled, name):
    """Measured on the 1,000 test digits: 99.0% agreement with onnxruntime running the QDQ model for both (SNN
    98.6% vs QDQ 98.5% accurate with onnxruntime's scales, 98.3% vs 98.3% with power-of-two scales)."""
    _, predictions = compiled[name]
    expected = onnxruntime_output(models[name], TEST["x"]).argmax(axis=1)
    assert (predictions == expected).mean() >= 0.98
    assert (predictions == TEST["y"]).mean() >= (expected == TEST["y"]).mean() - 0.01


def test_power_of_two_channel_scales_keep_the_quantizers_integers(models, compiled):
    """Each chip layer's weights are its channels' int8 integers, each channel times one power of two."""
    net, _ = compiled["power_of_two"]
    kept = net.graph.fact("integer_weights")
    checked = 0
    for q, _, axis, reader in _weight_quantizers(models["power_of_two"]).values():
        if reader == HOST:
            assert kept[reader]["kept"] and kept[reader]["reason"].startswith("on the host")
            continue
        chip, integers = _chip_rows(net.graph[reader].weight, q, axis)
        largest = np.argmax(np.abs(integers), axis=1)
        factor = chip[np.arange(len(chip)), largest] / integers[np.arange(len(chip)), largest]
        assert np.all(factor == 2.0 ** np.round(np.log2(factor))), reader
        np.testing.assert_array_equal(chip, integers * factor[:, None])
        assert kept[reader] == {"grid": "per channel", "kept": True, "relative_rms": kept[reader]["relative_rms"],
                                "reason": "kept: each channel's integers times one power of two"}
        checked += 1
    assert checked == 2  # the second conv and the dense layer


def test_onnxruntime_channel_scales_are_re_rounded_and_the_report_says_by_how_much(models, compiled):
    """Not powers of two apart, so no threshold keeps every channel; the recorded difference is the chip's weights
    against the quantizer's, within 2% of the least-squares fit with one free factor per layer."""
    net, _ = compiled["onnxruntime"]
    kept = net.graph.fact("integer_weights")
    checked = 0
    for q, scale, axis, reader in _weight_quantizers(models["onnxruntime"]).values():
        if reader == HOST:
            continue
        chip, integers = _chip_rows(net.graph[reader].weight, q, axis)
        quantizer = integers * scale.astype(np.float64)[:, None]
        factor = (chip * quantizer).sum() / (chip * chip).sum()
        least = np.linalg.norm(factor * chip - quantizer) / np.linalg.norm(quantizer)
        record = kept[reader]
        assert record["grid"] == "per channel" and not record["kept"]
        assert "not powers of two apart" in record["reason"]
        assert least <= record["relative_rms"] <= 1.02 * least + 1e-6
        checked += 1
    assert checked == 2
    text = net.report.render()
    assert "Quantizer's integer weights on the chip:" in text and "not powers of two apart" in text
    assert net.report.to_dict()["integer_weights"] == [{"layer": name, **r} for name, r in kept.items()]
