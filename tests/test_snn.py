"""The float SNN simulator: rates converge to the normalized ANN as 1/T; accuracy follows the ANN."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import snnconv
from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")


def _tiny_spiking_network(rng):
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["s"]),
             helper.make_node("Gemm", ["s", "W3", "b3"], ["y"], transB=1)]
    inits = {"W1": rng.standard_normal((12, 6)) * 0.6, "b1": rng.standard_normal(12) * 0.1,
             "W2": rng.standard_normal((8, 12)) * 0.4, "b2": rng.standard_normal(8) * 0.1,
             "W3": rng.standard_normal((4, 8)), "b3": np.zeros(4)}
    model = make_model(nodes, (16, 6), {k: v.astype(np.float32) for k, v in inits.items()})
    x = rng.uniform(0, 1, (16, 6)).astype(np.float32)
    return convert(snnconv.load_onnx(model), x, percentile=100.0).graph, x


def test_spike_rates_converge_to_normalized_activations_as_one_over_t(rng):
    graph, x = _tiny_spiking_network(rng)
    layers = [layer.name for layer in graph if layer.kind == "if"]
    target = ann.activations(graph, x, layers)  # IF layers evaluate to clip(x, 0, 1): the rate limit
    errors = {}
    for steps in (32, 128, 512, 2048):
        result = _rates(graph, x, steps, layers)
        errors[steps] = max(np.abs(result[name] - target[name]).max() for name in layers)
    # first layer: constant current, the count is within half a spike of T * rate
    first = _rates(graph, x, 100, layers[:1])[layers[0]]
    assert np.abs(first - target[layers[0]]).max() <= 0.5 / 100 + 1e-6
    slope = np.polyfit(np.log(list(errors)), np.log(list(errors.values())), 1)[0]
    assert slope < -0.8, errors
    assert errors[2048] < 5e-3


def _rates(graph, x, steps, layers):
    counts = simulate(graph, x, steps).spike_counts
    return {name: counts[name] / steps for name in layers}


def test_cnn_accuracy_at_32_steps_is_close_to_the_ann():
    graph = snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx")))
    test = np.load(MODELS.joinpath("mnist_test.npz"))
    calib = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
    spiking = convert(graph, calib).graph
    result = simulate(spiking, test["x"], 32)
    ann_accuracy = (snnconv.ann.evaluate(graph, test["x"]).argmax(1) == test["y"]).mean()
    snn_accuracy = (result.predictions() == test["y"]).mean()
    assert snn_accuracy >= ann_accuracy - 0.005


def test_simulation_is_deterministic_for_a_seed():
    graph = snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx")))
    test = np.load(MODELS.joinpath("mnist_test.npz"))["x"][:50]
    spiking = convert(graph, test, encoding="rate").graph
    a, b = simulate(spiking, test, 16, seed=7), simulate(spiking, test, 16, seed=7)
    np.testing.assert_array_equal(a.outputs[16], b.outputs[16])
    assert not np.array_equal(a.outputs[16], simulate(spiking, test, 16, seed=8).outputs[16])


def test_refuses_a_graph_that_is_not_spiking():
    with pytest.raises(BadGraphError, match="spike pass"):
        simulate(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))), np.zeros((1, 1, 28, 28), np.float32), 4)


def _with_burn_in(graph, burn_in):
    return graph.rebuilt(dataclasses.replace(layer, burn_in=burn_in) if layer is graph.output else layer
                         for layer in graph)


@pytest.mark.parametrize("burn_in", [1, 5, 12])
def test_a_burn_in_reads_the_integral_after_it_and_every_step_of_a_shorter_run(rng, burn_in):
    """The oracle: the same network read at every step, the burn-in's integral taken off by hand."""
    graph, x = _tiny_spiking_network(rng)
    plain = simulate(graph, x, 12, checkpoints=range(1, 13)).outputs
    skipped = simulate(_with_burn_in(graph, burn_in), x, 12, checkpoints=range(1, 13)).outputs
    for stop in range(1, 13):
        expected = ((stop * plain[stop] - burn_in * plain[burn_in]) / (stop - burn_in) if stop > burn_in
                    else plain[stop])
        np.testing.assert_allclose(skipped[stop], expected, rtol=1e-9, atol=1e-12)


def test_a_burn_in_must_be_a_positive_number_of_steps(rng):
    graph, _ = _tiny_spiking_network(rng)
    with pytest.raises(BadGraphError, match="burn_in 0"):
        _with_burn_in(graph, 0)
