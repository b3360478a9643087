"""``snnconv.evaluate``: the ANN vs SNN table per coding and T, and the training-loop example that calls it."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
from helpers import onnxruntime_output

import snnconv
from snnconv.errors import BadDataError, BadOptionError
from snnconv.models import watch_training
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
MLP = str(MODELS.joinpath("mnist_mlp.onnx"))
TEST = np.load(MODELS.joinpath("mnist_test.npz"))
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


@functools.cache
def evaluation(compile_once: bool = False):
    return snnconv.evaluate(MLP, (TEST["x"][:200], TEST["y"][:200]), timesteps=(32, 8, 16), calibration=CALIB,
                            compile_once=compile_once)


def test_ann_accuracy_is_onnxruntime_s_accuracy():
    import onnx

    reference = onnxruntime_output(onnx.load(MLP), TEST["x"][:200]).argmax(1)
    assert evaluation().ann == float((reference == TEST["y"][:200]).mean())


def test_each_t_is_what_a_network_compiled_for_that_t_gets():
    """By default every row is a network compiled (tuned, bias-corrected) for its T and run for T steps."""
    x, y = TEST["x"][:200], TEST["y"][:200]
    for t in (8, 16, 32):
        alone = simulate(snnconv.compile(MLP, "loihi", CALIB, timesteps=t).graph, x, t).predictions()
        assert evaluation().snn[t] == float((alone == y).mean())
    assert evaluation().compiled_for == {8: 8, 16: 16, 32: 32} and "compiled for each T" in evaluation().render()


def test_compile_once_reads_every_t_from_one_run_and_equals_a_run_of_that_length():
    """With compile_once the curve comes from one simulation at the largest T; each point equals a separate run."""
    net = snnconv.compile(MLP, "loihi", CALIB, timesteps=32)
    x, y = TEST["x"][:200], TEST["y"][:200]
    once = evaluation(compile_once=True)
    for t in (8, 16, 32):
        alone = simulate(net.graph, x, t).predictions()
        assert once.snn[t] == float((alone == y).mean())
        assert once.agreement[t] == float((alone == snnconv.ann.evaluate(snnconv.load_onnx(MLP), x)
                                           .argmax(1)).mean())
    assert sorted(once.snn) == [8, 16, 32] and set(once.compiled_for.values()) == {32}
    assert "read off one network compiled for T = 32" in once.render()


def test_output_fidelity_is_measured_against_onnxruntime_s_logits():
    """Relative RMS error and mean cosine of the SNN's outputs (a separate run per T) against the ANN's logits,
    computed here with onnxruntime and numpy's own formulas."""
    import onnx

    net = snnconv.compile(MLP, "loihi", CALIB, timesteps=32)
    x = TEST["x"][:200]
    logits = onnxruntime_output(onnx.load(MLP), x).reshape(len(x), -1)  # the MLP ends in its last Gemm
    for t in (8, 16, 32):
        outputs = simulate(net.graph, x, t).outputs[t].reshape(len(x), -1)
        rms = np.sqrt(np.mean((outputs - logits) ** 2)) / np.sqrt(np.mean(logits ** 2))
        cosine = np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(outputs, logits)])
        assert evaluation(compile_once=True).rms_error[t] == pytest.approx(rms, rel=1e-4)
        assert evaluation(compile_once=True).cosine[t] == pytest.approx(cosine, rel=1e-6)
    assert evaluation(compile_once=True).rms_error[32] < evaluation(compile_once=True).rms_error[8] and evaluation(compile_once=True).cosine[32] > 0.9


def test_table_and_dict_name_the_target_and_every_t():
    text, table = evaluation().render(), evaluation().to_dict()
    assert "loihi" in text and text.count("%") >= 7
    assert [row["timesteps"] for row in table["snn"]] == [8, 16, 32] and table["samples"] == 200
    assert {"relative_rms_error", "cosine_similarity"} <= set(table["snn"][0]) and "output cosine" in text


@pytest.mark.parametrize("data, labels, needle", [
    (TEST["x"][:10], None, "no labels"),
    (TEST["x"][:10], TEST["y"][:9], "labels must be 10 integers"),
    (TEST["x"][:0], TEST["y"][:0], "shape (N, ...)"),
    ([], None, "has no samples"),
])
def test_bad_data_is_a_project_error(data, labels, needle):
    with pytest.raises(BadDataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        snnconv.evaluate(MLP, data, labels, timesteps=(4,))


def test_the_training_example_watches_the_snn_each_epoch_without_writing_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    history = watch_training.train(epochs=2, timesteps=(16, 32), test_samples=300, log=lambda text: None)
    assert len(history) == 2 and list(tmp_path.iterdir()) == []
    first, last = history
    assert last.ann > first.ann - 0.02 and last.ann > 0.8  # it trains
    assert last.snn[32] >= last.ann - 0.05  # and its SNN follows it on the chip model


@functools.cache
def two_codings():
    return snnconv.evaluate(MLP, (TEST["x"][:200], TEST["y"][:200]), target="loihi2", timesteps=(1, 4),
                            calibration=CALIB, neuron="if,graded", payload_bits=4)


def test_each_coding_and_t_is_its_own_compile_and_chip_run_with_its_cost():
    """A row per coding and T, each what compiling that coding for that T and running the chip model gives:
    its accuracy, and the run's synaptic operations, energy and latency per inference; the ANN's cost beside."""
    x, y = TEST["x"][:200], TEST["y"][:200]
    evaluation = two_codings()
    assert evaluation.codings == ["if", "graded 4-bit"]
    assert [(row.neuron, row.timesteps) for row in evaluation.rows] == [("if", 1), ("if", 4), ("graded", 1),
                                                                        ("graded", 4)]
    for row in evaluation.rows:
        options = {"payload_bits": 4} if row.neuron == "graded" else {}
        net = snnconv.compile(MLP, "loihi2", CALIB, timesteps=row.timesteps, neuron=row.neuron, **options)
        alone = net.run(x, row.timesteps)
        assert row.accuracy == alone.accuracy(y)
        assert (row.synaptic_ops, row.energy_uj, row.latency_us) == tuple(
            alone.stats[key] for key in ("synaptic_ops", "energy_uj", "latency_us"))
    assert evaluation.ann_cost["macs"] == net.ann["macs"] and evaluation.ann_cost["energy_uj"] == net.ann["energy_uj"]


def test_several_codings_are_a_column_in_the_table_and_the_dict():
    evaluation = two_codings()
    text, table = evaluation.render(), evaluation.to_dict()
    assert text.splitlines()[1].split()[:2] == ["coding", "T"] and "graded 4-bit" in text and "energy uJ" in text
    assert [(row["coding"], row["timesteps"]) for row in table["snn"]] == [("if", 1), ("if", 4), ("graded 4-bit", 1),
                                                                           ("graded 4-bit", 4)]
    assert {"synaptic_ops", "energy_uj", "latency_us"} <= set(table["snn"][0]) and table["ann"]["macs"] > 0
    with pytest.raises(BadOptionError, match="2 codings"):
        evaluation.snn


@pytest.mark.parametrize("options, needle", [
    ({"neuron": "if", "payload_bits": 4}, "neuron 'if' sends no payload"),
    ({"neuron": "if,graded", "decay": 0.01}, "neuron 'if' has no leak"),
    ({"neuron": "if,hodgkin"}, "neuron: 'hodgkin' is not one of"),
])
def test_a_neuron_s_own_option_goes_to_that_coding_and_is_refused_without_it(options, needle):
    with pytest.raises(BadOptionError, match=needle):
        snnconv.evaluate(MLP, (TEST["x"][:10], TEST["y"][:10]), target="loihi2", timesteps=(1,), **options)


def test_the_command_line_compares_codings_in_json(tmp_path):
    np.savez(tmp_path / "test.npz", x=TEST["x"][:60], y=TEST["y"][:60])
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", "eval", MLP, "--data", str(tmp_path / "test.npz"),
                             "--target", "loihi2", "--timesteps", "1", "--neuron", "if,burst", "--burst", "2",
                             "--json"], capture_output=True, text=True, timeout=600, check=False,
                            cwd=tmp_path)  # not the repository's root: the installed package
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["snn"]
    assert [(row["coding"], row["timesteps"]) for row in rows] == [("if", 1), ("burst G=2", 1)]
    assert all(row["energy_uj"] > 0 and row["synaptic_ops"] > 0 for row in rows)


RNN = str(MODELS.joinpath("mnist_rnn.onnx"))


def test_a_sequence_model_is_evaluated_streamed_item_by_item_as_the_recurrent_path_runs_it():
    """``evaluate`` hands a recurrent graph to ``recurrent_eval``: T is steps per item; the rows are that path's."""
    from snnconv import recurrent_eval

    sequences = np.load(MODELS.joinpath("mnist_rnn_test.npz"))
    x, y = sequences["x"][:40], sequences["y"][:40]
    table = snnconv.evaluate(RNN, (x, y), target="loihi2", timesteps=(64,))
    direct = recurrent_eval.evaluate(snnconv.load_onnx(RNN), x, y, target="loihi2", steps_per_item=(64,))
    assert table.to_dict() == direct.to_dict()
    assert [row.timesteps for row in table.rows] == [64] and table.rows[0].accuracy >= table.ann - 0.1
    with pytest.raises(BadOptionError, match="drop neuron graded"):
        snnconv.evaluate(RNN, (x, y), neuron="graded")
    with pytest.raises(BadOptionError, match="drop payload_bits"):
        snnconv.evaluate(RNN, (x, y), payload_bits=4)
