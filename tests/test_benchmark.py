"""``snnconv.bench``: every figure against an oracle computed apart from the benchmark.

The SNN rows are held to what a user gets from ``snnconv.compile`` and ``net.run`` with
the same options, and to the target's per-operation costs times the run's counts; the
ANN's accuracy to onnxruntime's; the platform rows to ``platforms.model``; EDP to energy
times latency.
"""

from __future__ import annotations

import json

import onnx
import pytest
from bench_cases import MLP, TIMESTEPS, data, mlp_bench, tiny_loihi
from helpers import onnxruntime_output

import snnconv
from snnconv import platforms, targets
from snnconv.benchmark import CALIBRATION_SAMPLES
from snnconv.errors import BadDataError, BadOptionError


@pytest.fixture(scope="module")
def result():
    return mlp_bench()


def configuration(result, target: str, coding: str) -> dict:
    return next(c for c in result.snn if c["target"] == target and c["coding"] == coding)


def test_snn_row_is_what_compile_and_run_give(result):
    calibration, x, y = data()
    net = snnconv.compile(MLP, "loihi", calibration[:CALIBRATION_SAMPLES], timesteps=TIMESTEPS, tune="off")
    run = net.run(x)
    config = configuration(result, "loihi", "if")
    assert config["accuracy"] == run.accuracy(y)
    reference = onnxruntime_output(onnx.load(MLP), x).argmax(axis=1)
    assert config["agreement_with_ann"] == float((run.predictions == reference).mean())
    for key in ("latency_us", "energy_uj", "dynamic_energy_uj", "synaptic_ops", "spikes"):
        assert config[key] == pytest.approx(run.stats[key], rel=1e-12), key


@pytest.mark.parametrize("target, coding", [("loihi", "if"), ("spinnaker2", "if"), ("spinnaker2", "graded")])
def test_energy_split_is_counts_times_the_targets_costs(result, target, coding):
    config = configuration(result, target, coding)
    costs = targets.get(target).costs
    split = config["energy_split_uj"]
    assert split["synaptic"] == pytest.approx(config["synaptic_ops"] * costs.synop_pj / 1e6, rel=1e-9)
    assert split["neuron_update"] == pytest.approx(config["neuron_updates"] * costs.neuron_update_pj / 1e6, rel=1e-9)
    static_pj = costs.static_mw * config["chips"] * config["latency_us"] * 1e3  # mW x ns = pJ
    assert split["static"] == pytest.approx(static_pj / 1e6, rel=1e-9)
    assert sum(split.values()) == pytest.approx(config["energy_uj"], rel=1e-9)
    assert config["energy_uj"] - split["static"] == pytest.approx(config["dynamic_energy_uj"], rel=1e-9)


def test_edp_is_energy_times_latency_in_joule_seconds(result):
    for row in result.rows():
        if row["latency_us"] is None or row["energy_uj"] is None:
            assert row["edp_js"] is None
        else:
            assert row["edp_js"] == pytest.approx((row["energy_uj"] / 1e6) * (row["latency_us"] / 1e6), rel=1e-12)


def test_ann_accuracy_against_onnxruntime(result):
    _, x, y = data()
    reference = onnxruntime_output(onnx.load(MLP), x).argmax(axis=1)
    assert result.ann_accuracy == float((reference == y).mean())


def test_platform_rows_are_the_platform_model(result):
    graph = snnconv.load_onnx(MLP)
    expected = [platforms.model(graph, platform) for platform in platforms.PLATFORMS.values()]
    assert result.platforms == expected
    rows = {row["name"]: row for row in result.rows()}
    for model in expected:
        row = rows[f"ANN {model['platform']}"]
        assert (row["latency_us"], row["energy_uj"]) == (model["latency_us"], model["energy_uj"])
        split = model["energy_split_uj"]
        assert row["energy_split_uj"]["memory"] == split["sram"] + split["dram"]
    assert rows["ANN edge"]["accuracy"] is None  # an int8 network's accuracy is not the float ANN's
    assert rows["ANN server-cpu"]["accuracy"] == result.ann_accuracy


def test_measured_rows_say_how_and_what_is_not_measurable(result):
    measured = result.measured
    assert [r["runtime"] for r in measured["runtimes"]] == ["onnxruntime", "torch"]
    for runtime in measured["runtimes"]:
        assert runtime["p10_us"] <= runtime["median_us"] <= runtime["p90_us"]
        assert runtime["runs"] >= 50
    if measured["energy_source"].startswith("not measurable here"):
        assert all(r["energy_uj"] is None for r in measured["runtimes"])


def test_configurations_that_cannot_run_say_why(result):
    graded = configuration(result, "loihi", "graded")
    assert not graded["runs"] and str(snnconv.neurons.get("graded").unsupported(targets.get("loihi"))) in graded["reason"]
    assert not configuration(result, "tiny", "if")["runs"]
    assert {row["name"] for row in result.rows() if row["reason"]} == {"SNN loihi graded T=8", "SNN tiny if T=8",
                                                                       "SNN tiny graded T=8"}


def test_best_is_the_minimum_of_each_figure(result):
    rows = result.rows()
    for key, name in result.best().items():
        known = [row for row in rows if row[key] is not None and row[key] > 0]
        assert name == min(known, key=lambda row: row[key])["name"]


def test_to_dict_is_json_and_lists_a_source_for_every_modeled_row(result):
    data_ = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert len(data_["rows"]) == len(result.rows())
    for config in data_["snn"]:
        if config["runs"]:
            assert config["sources"], config["target"]
    for model in data_["ann_platforms"]:
        assert set(model["sources"]) >= {"mac_pj", "macs_per_s", "sram_bytes", "sram_pj_per_byte", "dram_pj_per_byte",
                                         "dram_bytes_per_s", "dispatch_s", "static_w"}


def test_render_shows_every_configuration_and_source(result):
    text = result.render()
    for row in result.rows():
        assert row["name"] in text
    assert "Horowitz" in text and "Davies et al. 2018" in text and "does not run" in text


def test_without_data_the_activity_comes_from_calibration_samples():
    calibration, _, _ = data()
    quick = snnconv.bench(MLP, ["loihi"], timesteps=[4], calibration=calibration[:20], budget_s=0.05)
    assert quick.samples == 20 and quick.ann_accuracy is None
    row = next(r for r in quick.rows() if r["system"] == "snn")
    assert row["accuracy"] is None and 0 <= row["agreement_with_ann"] <= 1


def test_nothing_to_compile_with_is_refused():
    with pytest.raises(BadDataError, match="--calibration"):
        snnconv.bench(MLP, ["loihi"])


def test_a_coding_no_target_runs_is_refused():
    with pytest.raises(BadOptionError, match="graded.*loihi"):
        snnconv.bench(MLP, ["loihi"], codings=["graded"], calibration=data()[0])


@pytest.mark.parametrize("option, value, named", [("codings", ["spiky"], "coding"), ("tune", "maybe", "tune"),
                                                  ("timesteps", [0], "timesteps"),
                                                  ("calibration_samples", 0, "calibration_samples")])
def test_bad_options_are_refused_by_name(option, value, named):
    with pytest.raises(BadOptionError, match=named):
        snnconv.bench(MLP, ["loihi"], calibration=data()[0], **{option: value})


def test_labels_of_the_wrong_length_are_refused():
    _, x, y = data()
    with pytest.raises(BadDataError, match="labels"):
        snnconv.bench(MLP, ["loihi"], data=x, labels=y[:-1], calibration=data()[0])


def test_a_target_too_small_is_the_compilers_own_refusal(result):
    """The row's reason is the compiler's DoesNotFitError for the same compilation, not a guess of the benchmark's."""
    with pytest.raises(snnconv.errors.DoesNotFitError) as refusal:
        snnconv.compile(MLP, tiny_loihi(), data()[0][:CALIBRATION_SAMPLES], timesteps=TIMESTEPS, tune="off")
    assert configuration(result, "tiny", "if")["reason"] == str(refusal.value)
