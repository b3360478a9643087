"""The pipeline: pass order, tuning for a given T, and the fallbacks when tuning is impossible."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv.errors import BadDataError
from snnconv.pipeline import DEFAULT_PERCENTILE, PERCENTILES, convert

MODELS = resources.files("snnconv.models")
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"][:128]
MLP = str(MODELS.joinpath("mnist_mlp.onnx"))


def test_tuning_tries_every_combination_and_keeps_the_best_agreement():
    conversion = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8)
    tuning = conversion.notes["tuning"]
    assert len(tuning["agreement"]) == len(PERCENTILES) * 2
    chosen = f"p{tuning['chosen']['percentile']:g} {tuning['chosen']['v_init']}"
    assert tuning["agreement"][chosen] == max(tuning["agreement"].values())
    assert list(conversion.notes) == ["canonicalize", "fold_batchnorm", "normalize", "spike", "tuning", "correct_bias"]
    assert conversion.graph.fact("spiking")


def test_without_timesteps_or_with_a_one_shot_iterator_the_defaults_are_used():
    graph = snnconv.load_onnx(MLP)
    for conversion in (convert(graph, CALIB), convert(graph, iter([CALIB[:64], CALIB[64:]]), timesteps=8)):
        assert "tuning" not in conversion.notes and "correct_bias" not in conversion.notes
        assert conversion.notes["normalize"]["percentile"] == DEFAULT_PERCENTILE
        assert conversion.notes["spike"]["v_init"] == "half"


def test_errors_name_the_passes_already_run():
    with pytest.raises(BadDataError, match=r"in pass normalize; passes already run: canonicalize, fold_batchnorm"):
        convert(snnconv.load_onnx(MLP), np.zeros((4, 5), np.float32))
