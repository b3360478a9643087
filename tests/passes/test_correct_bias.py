"""Bias correction: measured mean rates move to the ANN's, and the SNN gets closer to the ANN."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.passes.correct_bias import CorrectBias
from snnconv.pipeline import convert
from snnconv.snn import simulate

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
