"""The pipeline: pass order, tuning for a given T, and the fallbacks when tuning is impossible."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest
from helpers import inception_pool_model

import snnconv
from snnconv import pipeline
from snnconv.errors import BadDataError, UnsupportedOpError
from snnconv.passes.normalize import Normalize
from snnconv.pipeline import DEFAULT_PERCENTILE, PERCENTILES, convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"][:128]
MLP = str(MODELS.joinpath("mnist_mlp.onnx"))
MIXED = np.load(MODELS.joinpath("mnist_calib.npz"))["x"][::7][:64]  # every class (the file is sorted by label)


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
    monkeypatch.setattr(pipeline, "BURN_INS", ())  # only the candidates' agreement is simulated
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


def test_the_readout_burn_in_is_kept_only_where_it_fixes_significantly_more_than_it_breaks():
    """The agreements tuning reads off one simulation's checkpoints are those of each burn-in's own network
    (the oracle: ``simulate`` with ``Output.burn_in`` set), the fixed and broken samples are what the two
    networks' predictions say, and the kept burn-in passes the sign test (else every step is read)."""
    graph = snnconv.load_onnx(MLP)
    spiking = convert(graph, CALIB, timesteps=16, tune="off").graph
    notes = {"chosen": {}}
    kept = pipeline._burn_in(graph, spiking, MIXED, 16, notes)
    target = snnconv.ann.evaluate(graph, MIXED).argmax(axis=1)
    assert list(notes["burn_in_agreement"]) == [0, 2, 4]  # up to T / 4

    def agrees(k):
        with_k = spiking.rebuilt(dataclasses.replace(layer, burn_in=k or None) if layer is spiking.output else layer
                                 for layer in spiking)
        return simulate(with_k, MIXED, 16).predictions() == target

    every_step = agrees(0)
    for k, value in notes["burn_in_agreement"].items():
        assert value == pytest.approx(float(agrees(k).mean()))
        if k:
            assert notes["burn_in_fixed_broken"][k] == (int((agrees(k) & ~every_step).sum()),
                                                        int((every_step & ~agrees(k)).sum()))
    chosen = notes["chosen"]["burn_in"]
    if chosen:
        fixed, broken = notes["burn_in_fixed_broken"][chosen]
        assert fixed - broken >= 2 * (fixed + broken) ** 0.5
    assert kept.output.burn_in == (chosen or None)


def test_a_burn_in_that_fixes_many_samples_and_breaks_none_is_kept_and_a_small_gain_is_not(monkeypatch):
    """The sign test on made-up simulations: the outputs equal the ANN's logits except on the tuning samples a
    start-up burst flips; leaving out the first steps restores them."""
    graph = snnconv.load_onnx(MLP)
    spiking = convert(graph, CALIB, timesteps=16, tune="off").graph
    logits = pipeline.ann.evaluate(graph, MIXED, graph.output.inputs[0])

    def burst(flipped):
        class Run:  # the integral after step 2 is the burst alone; after it the steps carry the logits
            def __init__(self, g, samples, timesteps, checkpoints):
                burst = np.zeros_like(logits)  # per step in steps 1-2; the logits per step after them
                wrong = (logits.argmax(axis=1) + 1) % logits.shape[1]
                burst[np.arange(flipped), wrong[:flipped]] = 1e3  # a wrong class wins until the burst is left out
                self.outputs = {t: (2 * burst + (t - 2) * logits) / t for t in (2, 4, 16)}
        return Run

    for flipped, kept in ((12, 2), (2, 0)):
        monkeypatch.setattr(pipeline, "simulate", burst(flipped))
        notes = {"chosen": {}}
        result = pipeline._burn_in(graph, spiking, MIXED, 16, notes)
        assert notes["chosen"]["burn_in"] == kept, notes
        assert result.output.burn_in == (kept or None)


def test_tuning_off_reads_every_step():
    conversion = convert(snnconv.load_onnx(MLP), CALIB, timesteps=32, tune="off")
    assert conversion.graph.output.burn_in is None


def test_a_structure_no_synapse_map_computes_is_refused_before_any_simulation(monkeypatch):
    """An average pool with count_include_pad=0 and padding before a conv (Inception's) is refused by lowering;
    with a target the pipeline lowers its first candidate before tuning, so the refusal comes before a single
    step is simulated."""
    rng = np.random.default_rng(0)
    model = inception_pool_model(rng)

    def simulated(*args, **kwargs):
        raise AssertionError("simulated before the structural refusal")

    monkeypatch.setattr(pipeline, "simulate", simulated)
    with pytest.raises(UnsupportedOpError, match=r"count_include_pad=0.*in pass lower_to_synapses"):
        convert(snnconv.load_onnx(model), rng.uniform(0, 1, (32, 1, 4, 4)).astype(np.float32), timesteps=16,
                target=snnconv.targets.get("loihi"))
