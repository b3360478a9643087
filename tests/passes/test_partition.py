"""Partition and place: the independent checker passes on every bundled model for every target."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest
from mapping_checker import check

import snnconv
from snnconv import targets
from snnconv.errors import DoesNotFitError
from snnconv.passes.partition import Partition
from snnconv.passes.place import Place
from snnconv.pipeline import convert
from snnconv.report import PartitionReport

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


@functools.cache
def placed(model: str, target: str, encoding: str = "current") -> snnconv.Graph:
    chip = targets.get(target)
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X, target=chip,
                    encoding=encoding).graph
    return Place(chip, chips=64).run(Partition(chip).run(graph).graph).graph


@pytest.mark.parametrize("target", targets.names())
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_every_core_is_within_limits_and_every_synapse_is_placed_once(model, target):
    graph = placed(model, target)
    totals = check(graph, targets.get(target))
    report = PartitionReport.from_graph(graph, targets.get(target)).to_dict()
    assert report["totals"]["synapses"] == totals["synapses"]
    assert report["totals"]["cores"] == totals["cores"]


def test_rate_coded_input_has_its_own_synapses_placed():
    graph = placed("cnn", "loihi", "rate")
    assert check(graph, targets.get("loihi"))["synapses"] > check(placed("cnn", "loihi"), targets.get("loihi"))[
        "synapses"]
