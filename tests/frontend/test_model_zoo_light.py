"""Model-zoo networks from onnx's backend test data (``light``: the real architectures with
random weights), read as a user who downloads them would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import TOLERANCE, onnxruntime_output

import snnconv
from snnconv.errors import UnsupportedOpError

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def test_squeezenet_head_softmax_over_pooled_class_scores_matches_onnxruntime():
    """SqueezeNet ends Conv -> Relu -> GlobalAveragePool -> Softmax over [N, 1000, 1, 1]."""
    model = onnx.load(LIGHT / "light_squeezenet.onnx")
    graph = snnconv.load_onnx(model).validate()
    assert graph.output.activation == "softmax"
    assert graph.output.shape == (1000, 1, 1)
    x = np.random.default_rng(0).standard_normal((1, *graph.input.shape)).astype(np.float32)
    expected = onnxruntime_output(model, x)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", ["light_bvlc_alexnet", "light_inception_v1"])
def test_lrn_models_are_refused_at_the_lrn_with_the_reason(name):
    with pytest.raises(UnsupportedOpError, match=r"node '\w+' \(LRN, opset \d+\): LRN divides each value"):
        snnconv.load_onnx(LIGHT / f"{name}.onnx")
