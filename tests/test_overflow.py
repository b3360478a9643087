"""Overflow analysis: simulated currents and membranes never leave its bounds; the bounds are attained."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest
import torch

import snnconv
from snnconv import overflow, targets
from snnconv.ir import IF, Dense, Graph, Input, Output
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
INTEGER_TARGETS = [name for name in targets.names() if not targets.get(name).precision.is_float]
T = 24


@functools.cache
def compiled(model: str, target: str) -> Graph:
    graph = snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))
    return convert(graph, CALIB_X, target=targets.get(target)).graph


def _random_inputs(rng: np.random.Generator, graph: Graph, n: int) -> np.ndarray:
    """Inputs anywhere in the calibration range, many at its extremes, unlike any digit."""
    low, high = graph.fact("input_range")
    x = rng.uniform(low, high, size=(n, *graph.input.shape))
    extremes = rng.random(size=x.shape) < 0.3
    x[extremes] = np.where(rng.random(size=int(extremes.sum())) < 0.5, low, high)
    return x.astype(np.float32)


@pytest.mark.parametrize("target", INTEGER_TARGETS)
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_simulated_currents_and_membranes_stay_within_the_bounds(model, target, rng):
    graph = compiled(model, target)
    per_neuron = overflow.current_bounds(graph, graph.fact("input_range"))
    worst = {b.name: b for b in overflow.analyze(graph, T, graph.fact("input_range"))}
    seen = {name: [np.inf, -np.inf] for name in worst}

    def probe(name: str, current: torch.Tensor, v: torch.Tensor) -> None:
        bounds = per_neuron[name]
        assert torch.all(current >= bounds.lo.to(current.dtype)), name
        assert torch.all(current <= bounds.hi.to(current.dtype)), name
        seen[name] = [min(seen[name][0], float(v.min())), max(seen[name][1], float(v.max()))]

    x = np.concatenate([_random_inputs(rng, graph, 48), CALIB_X[:16]])
    simulate(graph, x, T, probe=probe)
    for name, (low, high) in seen.items():
        assert worst[name].membrane[0] <= low and high <= worst[name].membrane[1], (name, low, high, worst[name])


def _one_dense_population(weight: np.ndarray, bias: np.ndarray, threshold: float = 4.0) -> Graph:
    n_out, n_in = weight.shape
    layers = [Input(name="x", inputs=(), shape=(n_in,)),
              IF(name="spikes", inputs=("x",), shape=(n_in,), threshold=1.0, v_init=0.0),
              Dense(name="d", inputs=("spikes",), shape=(n_out,), weight=weight, bias=bias),
              IF(name="n", inputs=("d",), shape=(n_out,), threshold=threshold, v_init=0.5),
              Output(name="out", inputs=("n",), shape=(n_out,))]
    return Graph.from_layers(layers, facts=(("spiking", True), ("encoding", "current")))


def test_bounds_are_attained_by_all_or_no_excitatory_inputs_spiking():
    weight = np.array([[3.0, -2.0, 1.0], [-1.0, -1.0, 5.0]], np.float32)
    bias = np.array([0.5, -1.0], np.float32)
    graph = _one_dense_population(weight, bias)
    bounds = overflow.current_bounds(graph, (0.0, 2.0))["n"]
    np.testing.assert_array_equal(bounds.hi.numpy()[0], [4.5, 4.0])
    np.testing.assert_array_equal(bounds.lo.numpy()[0], [-1.5, -3.0])
    np.testing.assert_array_equal(bounds.magnitude.numpy()[0], [6.5, 8.0])
    seen = {}
    every_pattern = np.array(list(np.ndindex(2, 2, 2)), np.float32)  # v_init 0, threshold 1: spikes at step 1
    simulate(graph, every_pattern, 1, probe=lambda name, current, v: seen.setdefault(name, current.numpy().copy()))
    np.testing.assert_array_equal(seen["n"].max(axis=0), bounds.hi.numpy()[0])
    np.testing.assert_array_equal(seen["n"].min(axis=0), bounds.lo.numpy()[0])


def test_membrane_bound_grows_with_t_when_the_input_outruns_the_threshold():
    """Constant input 5 against threshold 4: one spike per step removes 4, v grows by 1 a step."""
    graph = _one_dense_population(np.array([[5.0]], np.float32), np.zeros(1, np.float32))
    for steps in (1, 5, 20):
        upper = {b.name: b for b in overflow.analyze(graph, steps, (0.0, 1.0))}["n"].membrane[1]
        peak = []
        simulate(graph, np.ones((1, 1), np.float32), steps,
                 probe=lambda name, current, v: peak.append(float(v.max())) if name == "n" else None)
        assert max(peak) == 2 + 5 + (steps - 1) * (5 - 4)  # v0 = 2
        assert upper == max(max(peak), 4 - 1 + 5)  # tight once the growth term dominates


def test_saturation_is_counted_and_clamps_like_the_chip():
    graph = _one_dense_population(np.array([[-100.0]], np.float32), np.zeros(1, np.float32))
    layers = [layer if layer.name != "n" else type(layer)(**{**layer.__dict__, "state_bits": 8}) for layer in graph]
    graph = Graph.from_layers(layers, facts=graph.facts)
    lowest = []
    result = simulate(graph, np.ones((1, 1), np.float32), 4,
                      probe=lambda name, current, v: lowest.append(float(v.min())) if name == "n" else None)
    assert lowest == [-98.0, -128.0, -128.0, -128.0]
    assert result.saturations == {"n": 3}
    assert {b.name: b for b in overflow.analyze(graph, 4, (0.0, 1.0))}["n"].may_saturate


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_the_chosen_dtype_is_exact(model):
    """float32 where the analysis allows it gives the very same run as float64."""
    graph = compiled(model, "loihi")
    assert graph.fact("dtype") == "float32"
    wide = graph.rebuilt(graph.layers, dtype="float64")
    x = CALIB_X[:64]
    narrow_run, wide_run = simulate(graph, x, T), simulate(wide, x, T)
    np.testing.assert_array_equal(narrow_run.outputs[T], wide_run.outputs[T])
    for name, counts in narrow_run.spike_counts.items():
        np.testing.assert_array_equal(counts, wide_run.spike_counts[name])
