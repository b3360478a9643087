"""What folding a QDQ model's activation quantizers changes in its ANN, measured at compile time (fake_quant)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_model, onnxruntime_output
from onnx import helper as H

import snnconv
from snnconv import fake_quant

pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(3)


def _model(scale: float):
    """Dense -> a uint8 pair (a ReLU capped at 255 * scale) -> dense: the pair rounds to multiples of ``scale``."""
    nodes = [H.make_node("MatMul", ["x", "w1"], ["h"], name="hidden"),
             H.make_node("QuantizeLinear", ["h", "scale", "zero"], ["hq"], name="quantize"),
             H.make_node("DequantizeLinear", ["hq", "scale", "zero"], ["r"], name="relu_pair"),
             H.make_node("MatMul", ["r", "w2"], ["y"], name="classes")]
    weights = {"w1": RNG.normal(0, 1, (6, 8)).astype(np.float32), "w2": RNG.normal(0, 1, (8, 4)).astype(np.float32),
               "scale": np.array(scale, np.float32), "zero": np.array(0, np.uint8)}
    return make_model(nodes, (1, 6), weights, output_rank=2)


def test_the_effect_is_the_difference_between_onnxruntime_and_the_imported_graph_on_the_first_samples():
    model = _model(0.05)
    graph = snnconv.load_onnx(model)
    x = RNG.random((300, 6), dtype=np.float32)
    effect = fake_quant.effect(graph, model, x)
    first = x[:fake_quant.SAMPLES]
    quantized, folded = onnxruntime_output(model, first), snnconv.ann.evaluate(graph, first)
    assert effect["measured"] and effect["samples"] == fake_quant.SAMPLES
    assert effect["top1_agreement"] == pytest.approx((quantized.argmax(1) == folded.argmax(1)).mean(), abs=1e-6)
    assert effect["relative_rms"] == pytest.approx(np.linalg.norm(folded - quantized) / np.linalg.norm(quantized),
                                                   rel=1e-5)
    assert 0 < effect["relative_rms"] < 0.1  # rounding to 0.05 steps moves each hidden value by 0.025 at most
    assert fake_quant.effect(graph, model, x) == effect  # one thread: the same figures on every compilation


def test_the_effect_is_not_measured_on_a_one_shot_stream_which_normalization_still_has_to_read():
    model = _model(0.05)
    effect = fake_quant.effect(snnconv.load_onnx(model), model, iter([RNG.random((10, 6), dtype=np.float32)]))
    assert effect == {"measured": False, "reason": "the calibration data is a one-shot stream"}
