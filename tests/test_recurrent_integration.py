"""Recurrent networks through the product surfaces: ``snnconv.compile`` / ``load`` / ``run``, the ``.snn`` artifact's
recurrent section, the CLI (compile, run, report, eval), NIR export, and the ANN's MACs and platform model.

Oracles: ``snnconv.recurrent`` compiled and run directly (what the surfaces wrap) and the
literal int64 reference (``recurrent_reference.py``), bit for bit; ``snnconv.recurrent_cost`` for
the statistics; an independent discrete-time simulator of the exported NIR graph (below,
reading only NIR's nodes and metadata); onnxruntime-free cell and head graphs modeled
separately for the platform model.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import recurrent_reference

import snnconv
from snnconv import ann_cost, platforms, recurrent, recurrent_cost
from snnconv.errors import BadArtifactError, BadOptionError
from snnconv.frontend import load_onnx
from snnconv.ir import Dense, Graph, Input, Output, Recurrent
from snnconv.recurrent_network import RecurrentNetwork

MODELS = Path(__file__).resolve().parent.parent / "models"
TARGETS = ["loihi", "loihi2", "spinnaker2"]
K = 16  # steps per item: small, so that runs are quick


def _graph(seed: int = 0, items: int = 4, features: int = 5, hidden: int = 9, classes: int = 3) -> Graph:
    rng = np.random.default_rng(seed)
    layers = [Input(name="x", inputs=(), shape=(items, features)),
              Recurrent(name="rnn", inputs=("x",), shape=(hidden,), weight=rng.normal(0, 1, (hidden, features)),
                        recurrent=rng.normal(0, 0.9 / np.sqrt(hidden), (hidden, hidden)),
                        bias=rng.normal(0, 0.2, hidden)),
              Dense(name="head", inputs=("rnn",), shape=(classes,), weight=rng.normal(0, 1, (classes, hidden)),
                    bias=rng.normal(0, 0.1, classes)),
              Output(name="out", inputs=("head",), shape=(classes,))]
    return Graph.from_layers(layers, name="random_rnn")


def _sequences(seed: int, n: int, items: int = 4, features: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).random((n, items, features), dtype=np.float32)


def _bundled():
    calib, test = np.load(MODELS / "mnist_rnn_calib.npz"), np.load(MODELS / "mnist_rnn_test.npz")
    return calib["x"][:100], test["x"][:12], test["y"][:12]


# --- the API: compile, save, load, run ---------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_a_loaded_artifact_runs_as_the_recurrent_chip_model_and_the_reference(target, tmp_path):
    graph, calib, x = _graph(), _sequences(0, 40), _sequences(1, 6)
    net = snnconv.compile(graph, target, calib, timesteps=K)
    assert isinstance(net, RecurrentNetwork) and net.timesteps == K
    loaded = snnconv.load(net.save(tmp_path / "rnn.snn"))
    run = loaded.run(x)
    program = recurrent.compile(graph, target, calib, steps_per_item=K)
    direct = recurrent.run(program, x)
    np.testing.assert_array_equal(run.item_outputs, direct.item_outputs)
    integrals, _, saturations = recurrent_reference.run(loaded.program, x)
    np.testing.assert_array_equal(run.item_outputs, integrals * loaded.program.output_scale / K)
    np.testing.assert_array_equal(run.outputs, direct.item_outputs[:, -1])
    stats = recurrent_cost.statistics(program, snnconv.targets.get(target), direct)
    assert run.stats["energy_uj"] == stats["energy_uj"] and run.stats["per_item"] == stats["per_item"]
    assert run.stats["saturations"] == saturations


def test_the_same_compilation_gives_the_same_bytes_and_batches_do_not_change_a_run(tmp_path):
    graph, calib, x = _graph(3), _sequences(2, 30), _sequences(3, 7)
    first = snnconv.compile(graph, "loihi2", calib, timesteps=K).save(tmp_path / "a.snn")
    second = snnconv.compile(graph, "loihi2", calib, timesteps=K).save(tmp_path / "b.snn")
    assert first.read_bytes() == second.read_bytes()
    net = snnconv.load(first)
    np.testing.assert_array_equal(net.run(x, batch_size=2).item_outputs, net.run(x).item_outputs)


def test_the_bundled_rnn_compiles_through_the_api_as_snnconv_recurrent_does(tmp_path):
    calib, x, y = _bundled()
    net = snnconv.compile(MODELS / "mnist_rnn.onnx", "loihi", calib, timesteps=K)
    loaded = snnconv.load(net.save(tmp_path / "rnn.snn"))
    expected = recurrent.run(recurrent.compile(load_onnx(MODELS / "mnist_rnn.onnx"), "loihi", calib,
                                               steps_per_item=K), x)
    run = loaded.run(x)
    np.testing.assert_array_equal(run.item_outputs, expected.item_outputs)
    assert run.accuracy(y) == float((expected.predictions == y).mean())
    assert loaded.ann["macs"] == 28 * (28 * 64 + 64 * 64) + 64 * 10  # the cell per item x 28 items, and the head


def test_options_the_recurrent_path_cannot_use_are_refused_in_one_line():
    graph, calib = _graph(), _sequences(0, 20)
    for option in ({"neuron": "graded"}, {"encoding": "rate"}, {"tune": "full"}, {"reset": "zero"}, {"spread": True}):
        with pytest.raises(BadOptionError, match="recurrent network") as caught:
            snnconv.compile(graph, "loihi2", calib, **option)
        assert "\n" not in str(caught.value)
    net = snnconv.compile(graph, "loihi2", calib, timesteps=K)
    with pytest.raises(BadOptionError, match=f"compiled for {K} steps per item"):
        net.run(_sequences(1, 2), timesteps=2 * K)


# --- the artifact's recurrent section: tampered and malformed files ----------------------


def _rewrite(path: Path, change, array: str | None = None, new_array=None) -> Path:
    """A copy of the artifact with ``change(manifest)`` applied (and ``array`` replaced, its checksum updated)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    if array is not None:
        buffer = io.BytesIO()
        np.save(buffer, new_array, allow_pickle=False)
        members[array] = buffer.getvalue()
        manifest["checksums"][array] = hashlib.sha256(members[array]).hexdigest()
    change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    out = path.with_name("tampered.snn")
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(manifest):
        entry = manifest["recurrent"]
        for key in keys[:-1]:
            entry = entry[key]
        entry[keys[-1]] = value
    return change


def _drop_core(manifest):
    manifest["recurrent"]["cores"].pop()
    manifest["recurrent"]["cores"][0]["routes"] = [0]


def _duplicate_neurons(manifest):
    manifest["recurrent"]["cores"][0]["neurons"] = [0, 2]
    manifest["recurrent"]["cores"].insert(1, {**manifest["recurrent"]["cores"][0], "index": 1})
    for index, core in enumerate(manifest["recurrent"]["cores"]):
        core["index"] = index


def _swap_biases(manifest):
    entry = manifest["recurrent"]
    entry["input_bias"], entry["output_bias"] = entry["output_bias"], entry["input_bias"]


def _unknown_field(manifest):
    manifest["recurrent"]["gain"] = 2


def _beside_a_program(manifest):
    manifest["program"] = [{"kind": "input", "name": "x", "inputs": [], "shape": [4, 5]}]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return snnconv.compile(_graph(), "loihi", _sequences(0, 30), timesteps=K).save(
        tmp_path_factory.mktemp("recurrent") / "rnn.snn")


@pytest.mark.parametrize("change, words", [
    (_set("threshold", 0), "threshold"),
    (_set("steps_per_item", 0), "steps_per_item"),
    (_set("state_bits", 16), "state_bits = 16"),
    (_set("target", "loihi2"), "names target"),
    (_set("cores", 0, "population", "dendrite"), "population"),
    (_set("cores", 0, "routes", [0, 7]), "routes"),
    (_drop_core, "not once each"),
    (_duplicate_neurons, "core table"),
    (_unknown_field, "expected an object"),
    (_swap_biases, "input_bias of shape"),
    (_beside_a_program, "beside a layer program"),
])
def test_a_tampered_recurrent_section_is_refused_in_one_line(saved, change, words):
    with pytest.raises(BadArtifactError, match=words) as caught:
        snnconv.load(_rewrite(saved, change))
    assert "\n" not in str(caught.value) and "tampered.snn" in str(caught.value)


def test_recurrent_weights_the_chip_cannot_hold_are_refused_though_their_checksum_holds(saved):
    program = snnconv.load(saved).program
    heavier = (program.recurrent * 1000.5).astype(np.float64)
    with pytest.raises(BadArtifactError, match="recurrent program: recurrent"):
        snnconv.load(_rewrite(saved, lambda manifest: None, "arrays/recurrent/recurrent.npy", heavier))


def test_a_changed_array_fails_its_checksum_and_an_unused_array_is_refused(saved):
    with zipfile.ZipFile(saved) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["arrays/recurrent/recurrent.npy"] = members["arrays/recurrent/recurrent.npy"][:-8] + bytes(8)
    damaged = saved.with_name("damaged.snn")
    with zipfile.ZipFile(damaged, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(BadArtifactError, match="checksum mismatch"):
        snnconv.load(damaged)

    def orphan(manifest):
        manifest["recurrent"]["input_bias"] = {"array": "arrays/recurrent/output_bias.npy"}
    with pytest.raises(BadArtifactError, match="no layer or table uses"):
        snnconv.load(_rewrite(saved, orphan))


# --- the CLI ---------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnconv.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, check=False)


def test_cli_compiles_runs_and_reports_the_bundled_rnn(tmp_path):
    calib, x, y = _bundled()
    np.savez(tmp_path / "calib.npz", x=calib)
    np.savez(tmp_path / "test.npz", x=x, y=y)
    made = _cli("compile", str(MODELS / "mnist_rnn.onnx"), "--target", "loihi", "--calibration", "calib.npz",
                "--timesteps", str(K), "-o", "rnn.snn", "--nir", "rnn.nir", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)["report"]
    assert report["kind"] == "recurrent" and report["steps_per_item"] == K and report["items"] == 28
    assert f"K = {K} steps per item" in report["semantics"]
    ran = _cli("run", "rnn.snn", "--data", "test.npz", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    expected = snnconv.load(tmp_path / "rnn.snn").run(x)
    assert summary["predictions"] == expected.predictions.tolist()
    assert summary["item_predictions"] == expected.item_outputs.argmax(axis=2).tolist()
    assert summary["accuracy"] == expected.accuracy(y) and summary["timesteps"] == K
    assert summary["stats"]["per_item"]["energy_uj"] == pytest.approx(expected.stats["energy_uj"] / 28)
    text = _cli("run", "rnn.snn", "--data", "test.npz", cwd=tmp_path)
    assert f"K = {K} steps per item x 28 items" in text.stdout and "per item" in text.stdout
    shown = _cli("report", "rnn.snn", cwd=tmp_path)
    assert shown.returncode == 0 and "recurrent IF neurons" in shown.stdout and "0,1" in shown.stdout
    refused = _cli("run", "rnn.snn", "--data", "test.npz", "--timesteps", str(2 * K), cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "steps per item" in refused.stderr


def test_cli_eval_scores_the_sequence_model_as_recurrent_eval_does(tmp_path):
    from snnconv import recurrent_eval

    calib, x, y = _bundled()
    np.savez(tmp_path / "calib.npz", x=calib)
    np.savez(tmp_path / "test.npz", x=x[:6], y=y[:6])
    result = _cli("eval", str(MODELS / "mnist_rnn.onnx"), "--data", "test.npz", "--calibration", "calib.npz",
                  "--target", "loihi2", "--timesteps", str(K), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = recurrent_eval.evaluate(load_onnx(MODELS / "mnist_rnn.onnx"), x[:6], y[:6], target="loihi2",
                                    steps_per_item=[K], calibration=calib)
    row = json.loads(result.stdout)["snn"][0]
    assert row["accuracy"] == table.rows[0].accuracy and row["timesteps"] == K


# --- NIR ----------------------------------------------------------------------------------


def _simulate_nir(graph, x: np.ndarray) -> np.ndarray:
    """An independent discrete-time reading of the exported NIR graph: (N, L, C) per-item output sums.

    Reads only NIR: the edges, each node's parameters, and the metadata the warnings name
    (item schedule, input rounding, ``v >= v_threshold`` with subtractive reset, v_init, the
    item-boundary clip, state bits, the Delay in steps, the per-item readout).
    """
    nodes = graph.nodes
    into = {target: [source for source, t in graph.edges if t == target] for target in nodes}
    (neuron,) = [name for name, node in nodes.items() if type(node).__name__ == "IF"]
    (delay,) = [name for name, node in nodes.items() if type(node).__name__ == "Delay"]
    (readout,) = [name for name, node in nodes.items() if type(node).__name__ == "Output"]
    (feedback,) = [name for name in into[neuron] if into[name] == [delay]]
    (drive,) = [name for name in into[neuron] if name != feedback]
    (head,) = into[readout]
    meta, steps = nodes[neuron].metadata, int(nodes[delay].metadata["delay_steps"])
    assert np.all(nodes[delay].delay == steps)
    items = int(nodes[next(iter(into[drive]))].metadata["items"])
    theta = nodes[neuron].v_threshold.astype(np.float64)
    bits = int(meta["state_bits"])
    low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    rounding = nodes[drive].metadata["input_rounding"]
    mantissa_bits = int(rounding.split("m of ")[1].split(" ")[0])
    exponents = [int(e) for e in rounding.split("e in ")[1].split(" ")[0].split("..")]
    w, b = nodes[drive].weight.astype(np.float64), nodes[drive].bias.astype(np.float64)
    u = nodes[feedback].weight.astype(np.float64)
    v_out, c = nodes[head].weight.astype(np.float64), nodes[head].bias.astype(np.float64)
    n, hidden = len(x), len(theta)
    v = np.full((n, hidden), float(meta["v_init"]))
    ring = np.zeros((steps, n, hidden))
    sums = np.zeros((n, items, len(c)))
    for t in range(items):
        current = _round_to(x[:, t].astype(np.float64) @ w.T + b, mantissa_bits, *exponents)
        v = np.clip(v, 0, theta)
        total = np.zeros((n, len(c)))
        for k in range(steps):
            v = np.clip(v + current + ring[k] @ u.T, low, high)
            spikes = (v >= theta).astype(np.float64)
            v = v - spikes * theta
            ring[k] = spikes
            total = np.clip(total + spikes @ v_out.T + c, low, high)
        sums[:, t] = total
    return sums * float(nodes[readout].metadata["scale"]) / steps


def _round_to(values: np.ndarray, bits: int, lowest: int, highest: int) -> np.ndarray:
    largest = 2 ** (bits - 1) - 1
    exponent = np.clip(np.ceil(np.log2(np.maximum(np.abs(values), 1e-30) / (largest + 0.5))), lowest, highest)
    mantissa = np.rint(values / 2.0**exponent)
    return np.where(np.abs(mantissa) > largest, np.sign(values) * largest, mantissa) * 2.0**exponent


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_the_nir_export_read_back_and_simulated_equals_the_chip_model(target, tmp_path):
    import nir

    graph, calib, x = _graph(5), _sequences(4, 30), _sequences(5, 5)
    net = snnconv.compile(graph, target, calib, timesteps=K)
    warnings = net.to_nir(tmp_path / "rnn.nir")
    assert any("item's first step" in w for w in warnings) and any(f"exactly {K} steps" in w for w in warnings)
    exported = nir.read(str(tmp_path / "rnn.nir"))
    assert ("recurrent", "hidden") in exported.edges and ("hidden", "recurrent_delay") in exported.edges
    np.testing.assert_array_equal(_simulate_nir(exported, x), net.run(x).item_outputs)


# --- the ANN's MACs and its platform model ------------------------------------------------


def test_ann_macs_count_the_cell_per_item():
    graph = load_onnx(MODELS / "mnist_rnn.onnx")
    assert ann_cost.macs(graph) == 28 * (28 * 64 + 64 * 64) + 64 * 10


def test_the_platform_model_runs_a_recurrent_layer_as_one_cell_step_per_item():
    """Oracle: the cell step and the head as feed-forward graphs, modeled apart, the cell ``L`` times."""
    graph = load_onnx(MODELS / "mnist_rnn.onnx")
    _, cell, head, _ = recurrent.parts(graph)
    hidden, features = cell.weight.shape
    step = Graph.from_layers([Input(name="item", inputs=(), shape=(features + hidden,)),
                              Dense(name="cell", inputs=("item",), shape=(hidden,),
                                    weight=np.concatenate([cell.weight, cell.recurrent], axis=1), bias=cell.bias),
                              Output(name="h", inputs=("cell",), shape=(hidden,))], name="cell")
    readout = Graph.from_layers([Input(name="h", inputs=(), shape=(hidden,)),
                                 Dense(name="head", inputs=("h",), shape=head.shape, weight=head.weight,
                                       bias=head.bias),
                                 Output(name="y", inputs=("head",), shape=head.shape)], name="head")
    for platform in platforms.PLATFORMS.values():
        whole, one, last = (platforms.model(g, platform) for g in (graph, step, readout))
        for key in ("macs", "latency_us", "energy_uj", "dynamic_energy_uj"):
            assert whole[key] == pytest.approx(28 * one[key] + last[key], rel=1e-12), (platform.name, key)
        assert whole["bytes"]["weights"] == 28 * one["bytes"]["weights"] + last["bytes"]["weights"]
