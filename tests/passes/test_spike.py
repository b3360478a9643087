"""Spike: ReLU -> IF with the conversion's parameters; refuses graphs that were not normalized."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Pool, ReLU
from snnconv.passes.normalize import Normalize
from snnconv.passes.spike import Spike

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


def _normalized(model: str) -> snnconv.Graph:
    return Normalize(CALIB_X).run(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))).graph


def test_relus_become_if_neurons_with_subtractive_reset_and_half_threshold_start():
    graph = _normalized("resnet")
    spiking = Spike().run(graph).graph
    relus = [layer.name for layer in graph if isinstance(layer, ReLU)]
    neurons = [layer for layer in spiking if isinstance(layer, IF)]
    assert [n.name for n in neurons] == relus
    assert all(n.threshold == 1.0 and n.reset == "subtract" and n.v_init == 0.5 for n in neurons)
    assert spiking.fact("spiking") and spiking.fact("encoding") == "current"
    assert any(isinstance(layer, Pool) and layer.mode == "max" for layer in spiking)


def test_max_pool_as_average_option():
    spiking = Spike(max_pool="average").run(_normalized("resnet")).graph
    assert not any(isinstance(layer, Pool) and layer.mode == "max" for layer in spiking)


def test_refuses_a_graph_that_was_not_normalized():
    with pytest.raises(BadGraphError, match="normalize"):
        Spike().run(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))))


def test_dither_spreads_only_the_populations_driven_by_the_input_current():
    spiking = Spike(v_init="dither").run(_normalized("cnn")).graph
    first, second = [layer for layer in spiking if isinstance(layer, IF)]
    assert first.v_init.shape == first.shape
    assert 0.25 <= first.v_init.min() and first.v_init.max() < 0.75
    assert abs(float(first.v_init.mean()) - 0.5) < 0.01  # unbiased on average
    assert second.v_init == 0.5
