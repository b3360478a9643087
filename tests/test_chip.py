"""The chip model against the literal per-core reference, bit for bit, and against the float SNN."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest
from reference_sim import Reference

import snnconv
from snnconv import targets
from snnconv.compiled import CompiledNetwork
from snnconv.pipeline import convert, to_cores, to_target
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))
INTEGER_TARGETS = [name for name in targets.names() if not targets.get(name).precision.is_float]


@functools.cache
def mapped(model: str, target: str) -> snnconv.Graph:
    chip = targets.get(target)
    conversion = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X, target=chip)
    return to_cores(conversion, chip, chips=64).graph


def _fast_membranes(graph: snnconv.Graph, x: np.ndarray, timesteps: int) -> dict[str, list[np.ndarray]]:
    seen: dict[str, list[np.ndarray]] = {}
    simulate(graph, x, timesteps, probe=lambda name, current, v: seen.setdefault(name, []).append(
        v.reshape(len(x), -1).double().numpy().astype(np.int64)))
    return seen


@pytest.mark.parametrize("target", INTEGER_TARGETS)
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_chip_model_equals_the_literal_per_core_reference_bit_for_bit(model, target):
    graph = mapped(model, target)
    x = np.concatenate([TEST["x"][:6], CALIB_X[:2] * 3.0])  # some inputs far beyond the calibration range
    fast = _fast_membranes(graph, x, 12)
    reference = Reference(graph).run(x, 12)
    assert set(fast) == set(reference)
    for name, steps in reference.items():
        for step, (mine, literal) in enumerate(zip(fast[name], steps)):
            np.testing.assert_array_equal(mine, literal, err_msg=f"{name} at step {step + 1}")


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_chip_predictions_agree_with_the_float_snn_on_99_percent_of_digits_at_t32(model):
    graph = snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))
    float_snn = convert(graph, CALIB_X, timesteps=32)
    loihi = targets.get("loihi")
    net = CompiledNetwork(to_cores(to_target(float_snn, loihi, 32), loihi).graph, loihi, {"timesteps": 32})
    chip = net.run(TEST["x"], 32).predictions
    agreement = float((chip == simulate(float_snn.graph, TEST["x"], 32).predictions()).mean())
    assert agreement >= 0.99, agreement
