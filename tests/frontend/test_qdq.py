"""Weight-only pre-quantized models: DequantizeLinear of constant int8 weights folds to float weights.

Oracle: onnxruntime running the same QDQ model.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TOLERANCE, make_model, onnxruntime_output
from onnx import helper as H

import snnconv

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
