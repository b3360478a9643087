"""The pipeline: pass order, tuning for a given T, and the fallbacks when tuning is impossible."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv.errors import BadDataError
from snnconv import pipeline
from snnconv.passes.normalize import Normalize
from snnconv.pipeline import DEFAULT_PERCENTILE, PERCENTILES, convert

MODELS = resources.files("snnconv.models")
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"][:128]
MLP = str(MODELS.joinpath("mnist_mlp.onnx"))


def test_tuning_tries_every_combination_and_keeps_the_best_agreement():
    conversion = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8)
    tuning = conversion.notes["tuning"]
    scores = list(tuning["agreement"].values())
    assert len(scores) == len(PERCENTILES) * 2 or scores[-1] == 1.0  # the search ends at full agreement
    assert tuning["mode"] == "fast" and tuning["samples"] == 128 and tuning["candidates"] == len(PERCENTILES) * 2
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


def test_tuning_off_takes_the_defaults_and_still_corrects_the_bias():
    conversion = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, tune="off")
    assert conversion.notes["normalize"]["percentile"] == DEFAULT_PERCENTILE
    assert conversion.notes["spike"]["v_init"] == "half"
    assert conversion.notes["tuning"]["mode"] == "off" and conversion.notes["tuning"]["candidates"] == 1
    assert "correct_bias" in conversion.notes


def test_candidates_that_agree_equally_are_told_apart_by_their_output_error(monkeypatch):
    """Every candidate predicts like the ANN; the one whose outputs are nearest the logits wins."""
    offsets = iter([0.3, 0.1, 0.2, 0.4, 0.5, 0.6])  # per candidate, in order: the second is nearest

    class Near:  # a simulation whose outputs are the ANN's logits, shifted by a constant
        def __init__(self, graph, samples, timesteps):
            logits = pipeline.ann.evaluate(graph, samples, graph.output.inputs[0])
            self.outputs = {timesteps: logits + next(offsets)}

    graph = snnconv.load_onnx(MLP)
    monkeypatch.setattr(pipeline, "simulate", lambda g, x, t: Near(graph, x, t))
    tuning = convert(graph, CALIB, timesteps=8, correct_bias=False).notes["tuning"]
    assert set(tuning["agreement"].values()) == {1.0}
    errors = tuning["output_error"]
    chosen = f"p{tuning['chosen']['percentile']:g} {tuning['chosen']['v_init']}"
    assert errors[chosen] == min(errors.values()) and list(errors).index(chosen) == 1


def test_one_calibration_pass_serves_every_percentile():
    """Scales from the shared histograms equal those of a pass of their own."""
    ann_graph = snnconv.load_onnx(MLP)
    measured = Normalize(CALIB, per_channel=True).measure(ann_graph)
    for p in PERCENTILES:
        shared = Normalize(CALIB, percentile=p, per_channel=True, measured=measured).run(ann_graph)
        own = Normalize(CALIB, percentile=p, per_channel=True).run(ann_graph)
        assert shared.notes == own.notes
        for a, b in zip(shared.graph, own.graph):
            for name, array in a.arrays().items():
                np.testing.assert_array_equal(array, b.arrays()[name])


def test_errors_name_the_passes_already_run():
    with pytest.raises(BadDataError, match=r"in pass normalize; passes already run: canonicalize, fold_batchnorm"):
        convert(snnconv.load_onnx(MLP), np.zeros((4, 5), np.float32))


MLP_WORK = 234_752 * 8  # the MLP's MACs x T: one sample's simulation at T = 8


def test_fast_tuning_simulates_the_samples_its_work_budget_allows(monkeypatch):
    monkeypatch.setitem(pipeline.FAST_WORK, "tuning", 6 * MLP_WORK * 40)  # six candidates on 40 samples
    tuning = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, correct_bias=False).notes["tuning"]
    assert tuning["samples"] == 40 and tuning["candidates"] == 6 and "skipped" not in tuning


def test_a_network_too_big_to_tune_keeps_the_defaults_and_says_why(monkeypatch, caplog):
    monkeypatch.setitem(pipeline.FAST_WORK, "tuning", 6 * MLP_WORK * (pipeline.MIN_TUNE_SAMPLES - 1))
    conversion = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, correct_bias=False)
    tuning = conversion.notes["tuning"]
    assert tuning["candidates"] == 1 and tuning["chosen"] == {"percentile": DEFAULT_PERCENTILE, "v_init": "half"}
    assert tuning["skipped"].startswith("tuning skipped: simulating 6 candidates on 16 samples at T = 8")
    assert "tune='full' tunes them" in caplog.text
    full = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, correct_bias=False, tune="full").notes["tuning"]
    assert full["samples"] == len(CALIB) and full["candidates"] == 6  # "full" has no work bound


def test_bias_correction_runs_on_the_samples_its_work_budget_allows(monkeypatch):
    monkeypatch.setitem(pipeline.FAST_WORK, "bias", 2 * MLP_WORK * 50)  # the sweep runs each IF layer twice
    notes = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, tune="off").notes["correct_bias"]
    assert notes["samples"] == 50 and notes["samples_given"] == len(CALIB) and "tune='off'" in notes["limited_by"]
    full = convert(snnconv.load_onnx(MLP), CALIB, timesteps=8, tune="full").notes["correct_bias"]
    assert full["samples"] == len(CALIB) and "limited_by" not in full
