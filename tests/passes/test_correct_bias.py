"""Bias correction: measured mean rates move to the ANN's, and the SNN gets closer to the ANN.

The oracle for the layer-by-layer sweep is the definition run literally: each IF layer
measured by simulating the whole network with the layers before it already corrected.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.passes.correct_bias import CorrectBias
from snnconv.pipeline import convert
from snnconv.snn import simulate, sweep

MODELS = resources.files("snnconv.models")
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"][:200]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))


def _spiking(model: str) -> snnconv.Graph:
    graph = snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))
    return convert(graph, CALIB, percentile=99.9, v_init="half").graph


def _rate_error(graph, reference, timesteps):
    names = [layer.name for layer in graph if layer.kind == "if"]
    target = ann.activations(reference, CALIB, names)
    counts = simulate(graph, CALIB, timesteps).spike_counts
    return [abs(float((counts[n] / timesteps).mean() - target[n].mean())) for n in names]


def test_corrected_layers_fire_at_the_ann_mean_rate():
    graph = _spiking("resnet")
    corrected = CorrectBias(CALIB, 8).run(graph)
    before, after = _rate_error(graph, graph, 8), _rate_error(corrected.graph, graph, 8)
    assert not corrected.notes["not_correctable"]
    assert sum(after) < 0.5 * sum(before), (before, after)


def test_correction_brings_predictions_closer_to_the_ann():
    graph = _spiking("resnet")
    corrected = CorrectBias(CALIB, 8).run(graph).graph
    x = TEST["x"][:300]
    target = ann.evaluate(graph, x).argmax(1)
    agree = [(simulate(g, x, 8).predictions() == target).mean() for g in (graph, corrected)]
    assert agree[1] > agree[0]


def test_refuses_a_graph_that_is_not_spiking():
    with pytest.raises(BadGraphError, match="spike pass"):
        CorrectBias(CALIB, 8).run(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))))


def _one_layer_at_a_time(graph, samples, timesteps):
    """Li et al.'s correction by its definition: one whole simulation per IF layer, biases changed in between.

    For networks whose IF layers read a conv or dense layer directly (the bundled MLP and CNN).
    """
    names = [layer.name for layer in graph if layer.kind == "if"]
    targets = ann.activations(graph, samples, names)
    axes = {name: (0, *range(2, targets[name].ndim)) for name in names}
    for name in names:
        counts = simulate(graph, samples, timesteps).spike_counts[name]
        delta = targets[name].mean(axis=axes[name]) - (counts / timesteps).mean(axis=axes[name])
        producer = graph[graph[name].inputs[0]]
        bias = producer.bias + delta.reshape(-1, *([1] * (producer.bias.ndim - 1)))
        shifted = dataclasses.replace(producer, bias=bias.astype(np.float32))
        graph = graph.rebuilt([shifted if layer.name == producer.name else layer for layer in graph])
    return graph


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_matches_correcting_one_layer_at_a_time(model):
    graph = _spiking(model)
    corrected = CorrectBias(CALIB, 8).run(graph).graph
    reference = _one_layer_at_a_time(graph, CALIB, 8)
    for layer in graph:
        if layer.kind in ("dense", "conv"):
            # the sweep adds the correction to the current, the reference to the bias; float
            # rounding may flip a spike on a tie: 1 / (8 steps x 200 samples) = 6e-4 of one
            # neuron's rate (corrections are around 1e-2)
            np.testing.assert_allclose(corrected[layer.name].bias, reference[layer.name].bias, rtol=0, atol=1e-3)


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_sweep_measures_what_simulate_counts(model):
    graph = _spiking(model)
    measured = {}

    def keep_counts(name, counts):
        measured[name] = counts

    sweep(graph, CALIB, 8, keep_counts)
    expected = simulate(graph, CALIB, 8).spike_counts
    assert list(measured) == [layer.name for layer in graph if layer.kind == "if"]
    for name, counts in measured.items():
        np.testing.assert_array_equal(counts, expected[name])


def test_a_small_budget_uses_fewer_samples_and_says_so():
    graph = _spiking("cnn")
    result = CorrectBias(CALIB, 8, budget=8 * 50 * (16 * 28 * 28 + 32 * 14 * 14)).run(graph)
    assert result.notes["samples"] == 50 and result.notes["samples_given"] == len(CALIB)
    assert "samples_given" not in CorrectBias(CALIB, 8).run(graph).notes
