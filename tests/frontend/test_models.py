"""The bundled MNIST models: the IR evaluator equals onnxruntime on all 1,000 test digits,
and the recorded test accuracy is what the model really scores."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import onnx
import pytest
from helpers import onnxruntime_output

import snnconv

MODELS = resources.files("snnconv.models")
CATALOG = json.loads(MODELS.joinpath("models.json").read_text())


def _test_digits():
    with np.load(MODELS.joinpath("mnist_test.npz"), allow_pickle=False) as data:
        return data["x"], data["y"]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_bundled_model_matches_onnxruntime(name):
    entry = CATALOG[name]
    path = MODELS.joinpath(entry["file"])
    assert path.stat().st_size < 2_000_000
    x, y = _test_digits()
    graph = snnconv.load_onnx(str(path))
    actual = snnconv.ann.evaluate(graph, x)
    expected = onnxruntime_output(onnx.load(str(path)), x)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)
    accuracy = float((actual.argmax(1) == y).mean())
    assert accuracy == pytest.approx(entry["test_accuracy"], abs=1e-4)
    assert accuracy > 0.95


def test_bundled_data_is_the_documented_split():
    x, y = _test_digits()
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [100] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0
    with np.load(MODELS.joinpath("mnist_calib.npz"), allow_pickle=False) as calib:
        assert calib["x"].shape == (500, 1, 28, 28)
        # calibration digits come from the training part: none equals a test digit
        test_rows = {row.tobytes() for row in x.reshape(len(x), -1)}
        assert not any(row.tobytes() in test_rows for row in calib["x"].reshape(500, -1))
