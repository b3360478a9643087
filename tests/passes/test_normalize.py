"""Normalization keeps the float network's outputs up to the recorded output scale."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import snnconv
from snnconv.errors import BadDataError, BadGraphError
from snnconv.ir import Affine
from snnconv.passes.fold_batchnorm import FoldBatchNorm
from snnconv.passes.normalize import LogHistogram, Normalize

MODELS = resources.files("snnconv.models")
TEST_X = np.load(MODELS.joinpath("mnist_test.npz"))["x"][:200]
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


def _folded(model: str) -> snnconv.Graph:
    return FoldBatchNorm().run(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))).graph


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("calibrated", [True, False])
def test_outputs_unchanged_up_to_output_scale(model, per_channel, calibrated):
    graph = _folded(model)
    result = Normalize(CALIB_X if calibrated else None, per_channel=per_channel).run(graph)
    normalized = result.graph.validate()
    expected = snnconv.ann.evaluate(graph, TEST_X)
    actual = snnconv.ann.evaluate(normalized, TEST_X) * normalized.output.scale
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert normalized.fact("normalized")
    if not calibrated:
        assert "warning" in result.notes


def test_relu_activations_are_at_most_one_below_the_percentile():
    graph = _folded("cnn")
    normalized = Normalize(CALIB_X, percentile=100.0).run(graph).graph
    relus = [layer.name for layer in normalized if layer.kind == "relu"]
    acts = snnconv.ann.activations(normalized, CALIB_X, relus)
    for name in relus:  # the max over the calibration data maps to 1 (within the histogram's bin)
        assert 0.98 < acts[name].max() <= 1.0 + 1e-5


def test_capped_relus_get_a_scale_per_channel_and_a_ceiling_per_channel():
    """ReLU6 after a conv whose channels' ranges differ 100-fold: each channel's scale is its own percentile (capped at
    6, the large channel), not one for the layer, and the normalized network still computes the original's outputs
    up to the output scale: each channel's ceiling became ``6 / lam``."""
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(torch.tensor([0.05, 1.0, 40.0]).view(3, 1, 1, 1))
    model = torch.nn.Sequential(conv, torch.nn.ReLU6(), torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 10))
    graph = snnconv.load_torch(model, torch.zeros(1, 1, 28, 28), exporter="legacy")
    result = Normalize(CALIB_X, per_channel=True).run(graph)
    scales = result.notes["scales"][next(name for name in result.notes["scales"] if name.startswith("0"))]
    assert scales["max"] == 6.0 and scales["min"] < 0.1 * scales["max"]
    expected = snnconv.ann.evaluate(graph, TEST_X)
    actual = snnconv.ann.evaluate(result.graph, TEST_X) * result.graph.output.scale
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_streaming_batches_give_the_same_scales_as_one_array():
    graph = _folded("cnn")
    whole = Normalize(CALIB_X, per_channel=True).run(graph).graph
    streamed = Normalize((CALIB_X[i:i + 37] for i in range(0, len(CALIB_X), 37)), per_channel=True).run(graph).graph
    for a, b in zip(whole, streamed):
        for field, array in a.arrays().items():
            np.testing.assert_array_equal(array, b.arrays()[field])


def test_log_histogram_percentile_within_its_bin_width(rng):
    values = rng.lognormal(0, 2, size=(3, 20011))  # a prime count: no rank lands on a float rounding edge
    histogram = LogHistogram(3)
    histogram.add(values[:, :7000])
    histogram.add(values[:, 7000:])
    for p in (50, 99, 99.9, 100):
        exact = np.percentile(values, p, axis=1, method="inverted_cdf")
        np.testing.assert_allclose(histogram.percentile(p), exact, rtol=2 ** (1 / 64) - 1 + 1e-9)


def test_residual_branches_agree_through_a_scaling_affine():
    """The shortcut of a residual add carries another scale than the add: it gets rescaled."""
    r = np.random.default_rng(3)
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Conv", ["a", "W"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, (8, 2, 5, 5), {"W": r.standard_normal((2, 2, 3, 3)).astype(np.float32)})
    graph = snnconv.load_onnx(model)
    x = r.standard_normal((64, 2, 5, 5)).astype(np.float32) * 3
    normalized = Normalize(x, percentile=100.0).run(graph).graph
    assert any(isinstance(layer, Affine) for layer in normalized)
    np.testing.assert_allclose(snnconv.ann.evaluate(normalized, x) * normalized.output.scale, snnconv.ann.evaluate(graph, x),
                               rtol=1e-5, atol=1e-5)


def test_refusals():
    graph = _folded("mlp")
    normalized = Normalize(CALIB_X).run(graph).graph
    with pytest.raises(BadGraphError, match="already normalized"):
        Normalize(CALIB_X).run(normalized)
    with pytest.raises(BadDataError, match="no samples"):
        Normalize(CALIB_X[:0]).run(graph)
    with pytest.raises(BadDataError, match="does not match"):
        Normalize(np.zeros((4, 3, 28, 28), np.float32)).run(graph)


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_calibration_data_of_one_value_is_refused(value):
    """All-zero calibration images (a failed preprocessing) gave the bundled CNN chance accuracy with exit 0: every
    ReLU's scale came from its bias alone."""
    with pytest.raises(BadDataError, match=f"every value of its 16 samples is {value:g}; pass real samples"):
        Normalize(np.full((16, *CALIB_X.shape[1:]), value, np.float32)).run(_folded("cnn"))
