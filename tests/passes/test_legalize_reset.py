"""Legalize reset: chips without subtractive reset get it emulated (more compartments) or reset to zero."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import targets
from snnconv.errors import BadTargetError
from snnconv.ir import IF
from snnconv.passes.legalize_reset import LegalizeReset
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


@pytest.fixture(scope="module")
def spiking():
    return convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx"))), CALIB_X).graph


def _without_subtract(target_name: str = "loihi"):
    target = targets.get(target_name)
    return dataclasses.replace(target, neuron=dataclasses.replace(target.neuron, reset=("zero",),
                                                                   subtract_compartments=2))


def test_emulation_keeps_the_dynamics_and_doubles_the_compartments(spiking):
    result = LegalizeReset(_without_subtract(), "emulate").run(spiking)
    neurons = [layer for layer in result.graph if isinstance(layer, IF)]
    assert all(n.reset == "subtract" and n.compartments == 2 for n in neurons)
    assert result.notes["extra_compartments"] == sum(int(np.prod(n.shape)) for n in neurons)
    x = CALIB_X[:50]
    np.testing.assert_array_equal(simulate(result.graph, x, 8).outputs[8], simulate(spiking, x, 8).outputs[8])


def test_reset_to_zero_changes_the_neurons_and_nothing_else(spiking):
    result = LegalizeReset(_without_subtract(), "zero").run(spiking)
    assert all(layer.reset == "zero" and layer.compartments == 1 for layer in result.graph if isinstance(layer, IF))
    assert [layer.name for layer in result.graph] == [layer.name for layer in spiking]


@pytest.mark.parametrize("target", targets.names())
def test_targets_with_subtractive_reset_are_left_alone(target, spiking):
    chip = targets.get(target)
    result = LegalizeReset(chip).run(spiking)
    assert result.changed == ("subtract" not in chip.neuron.reset)
    if not result.changed:
        assert result.graph is spiking


def test_a_target_without_any_usable_reset_is_refused(spiking):
    target = targets.get("loihi")
    broken = dataclasses.replace(target, neuron=dataclasses.replace(target.neuron, reset=()))
    with pytest.raises(BadTargetError, match="no reset"):
        LegalizeReset(broken).run(spiking)
