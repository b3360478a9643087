"""Stacked ReLU RNNs (``torch.nn.RNN(num_layers > 1)``) and torch modules holding an RNN.

Oracles: onnxruntime (the frontend's reading of the ONNX export); the literal int64
reference (``recurrent_reference.py``) bit for bit against ``snnconv.recurrent.run`` on
hypothesis-drawn stacked nets; the ANN (a float SNN with many steps per item reaches its
outputs); the ONNX-file path for a torch module compiled directly; an independent
discrete-time simulator of the exported NIR graph; the artifact's own write for its reader.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import recurrent_reference
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import snnconv
from snnconv import ann, recurrent, recurrent_cost, targets
from snnconv.errors import BadArtifactError, UnsupportedOpError
from snnconv.frontend import load_onnx
from snnconv.ir import Dense, Graph, Input, Output, Recurrent

MODELS = Path(__file__).resolve().parent.parent / "models"
TARGETS = ["loihi", "loihi2", "spinnaker2"]
K = 16


class _Stacked(torch.nn.Module):
    def __init__(self, layers: int = 2, hidden: int = 7, features: int = 5, head_on: int = -1):
        super().__init__()
        torch.manual_seed(layers)
        self.rnn = torch.nn.RNN(features, hidden, num_layers=layers, nonlinearity="relu", batch_first=True)
        self.head = torch.nn.Linear(hidden, 3)
        self.head_on = head_on

    def forward(self, x):
        _, h = self.rnn(x)
        return self.head(h[self.head_on])


def _export(module: torch.nn.Module, items: int = 6, features: int = 5):
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, items, features),), buffer, dynamo=False, opset_version=14,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


# --- the frontend ---------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [2, 3])
def test_stacked_rnn_reads_as_the_onnx_export_computes(layers):
    import onnxruntime

    model = _export(_Stacked(layers))
    graph = load_onnx(model)
    assert [layer.kind for layer in graph] == ["input", *["recurrent"] * layers, "dense", "output"]
    assert [layer.sequence for layer in graph if isinstance(layer, Recurrent)] == [True] * (layers - 1) + [False]
    x = np.random.default_rng(0).random((7, 6, 5), dtype=np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(ann.evaluate(graph, x), session.run(None, {"x": x})[0], atol=1e-5)


def test_a_head_on_a_lower_layer_is_refused_in_one_line():
    with pytest.raises(UnsupportedOpError, match=r"h\[0\].*top layer's") as caught:
        load_onnx(_export(_Stacked(2, head_on=0)))
    assert "\n" not in str(caught.value)


# --- the chip model against the reference -----------------------------------------------------


def _stacked_graph(rng: np.random.Generator, items: int, features: int, sizes: list[int], classes: int) -> Graph:
    layers, below, width = [Input(name="x", inputs=(), shape=(items, features))], "x", features
    for index, hidden in enumerate(sizes):
        top = index == len(sizes) - 1
        layers.append(Recurrent(name=f"rnn{index}", inputs=(below,), shape=(hidden,) if top else (items, hidden),
                                weight=rng.normal(0, 1 / np.sqrt(width), (hidden, width)),
                                recurrent=rng.normal(0, 0.9 / np.sqrt(hidden), (hidden, hidden)),
                                bias=rng.normal(0, 0.2, hidden), sequence=not top))
        below, width = f"rnn{index}", hidden
    layers += [Dense(name="head", inputs=(below,), shape=(classes,), weight=rng.normal(0, 1, (classes, width)),
                     bias=rng.normal(0, 0.1, classes)),
               Output(name="out", inputs=("head",), shape=(classes,))]
    return Graph.from_layers(layers, name="random_stacked_rnn")


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), items=st.integers(1, 4),
       sizes=st.lists(st.integers(1, 9), min_size=2, max_size=3), steps=st.integers(1, 6),
       target=st.sampled_from(TARGETS))
def test_chip_model_equals_reference_on_random_stacked_nets(seed, items, sizes, steps, target):
    rng = np.random.default_rng(seed)
    graph = _stacked_graph(rng, items, 3, sizes, 4)
    x = rng.random((5, items, 3)).astype(np.float32)
    program = recurrent.compile(graph, target, x, steps_per_item=steps)
    assert program.sizes == tuple(sizes) and len(program.upper) == len(sizes) - 1
    recurrent_reference.assert_chip_model_matches(program, x)
    extremes = []
    recurrent_reference.run(program, x, extremes)  # x in [0, 1): membrane_range's default input range
    low, high = recurrent.membrane_range(program)
    assert low <= extremes[0] and extremes[1] <= high, (low, high, extremes)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), items=st.integers(2, 4), sizes=st.lists(st.integers(1, 8), min_size=2, max_size=3),
       steps=st.integers(1, 6), gain=st.sampled_from([1.0, 30.0, 3000.0]),
       percentile=st.sampled_from([20.0, 99.0, 100.0]), target=st.sampled_from(TARGETS))
def test_chip_model_equals_reference_on_stacked_nets_driven_hard(seed, items, sizes, steps, gain, percentile, target):
    """Signed inputs far beyond the calibration's and low percentiles: rates above 1 in every layer, negative
    membranes, host currents at the bias format's ends, membranes at the state bits."""
    rng = np.random.default_rng(seed)
    graph = _stacked_graph(rng, items, 3, sizes, 4)
    program = recurrent.compile(graph, target, rng.random((6, items, 3)).astype(np.float32), steps_per_item=steps,
                                percentile=percentile)
    recurrent_reference.assert_chip_model_matches(program, (gain * rng.normal(0, 1, (4, items, 3))).astype(np.float32))


def test_a_stacked_net_over_several_cores_equals_the_reference():
    """Layers too wide for one spinnaker2 core each: the reference reads the per-core tables literally."""
    rng = np.random.default_rng(7)
    graph = _stacked_graph(rng, 3, 4, [300, 200], 5)
    x = rng.random((3, 3, 4)).astype(np.float32)
    program = recurrent.compile(graph, "spinnaker2", x, steps_per_item=4)
    hidden_cores = [core for core in program.cores if core.population == "hidden"]
    assert len(hidden_cores) > 2
    for core in hidden_cores:  # a core routes to its own layer's cores and to the layer above's (or the outputs)
        below = core.neurons[0] < 300
        own = {c.index for c in hidden_cores if (c.neurons[0] < 300) == below}
        above = {c.index for c in hidden_cores if c.neurons[0] >= 300} if below else \
            {c.index for c in program.cores if c.population == "output"}
        assert set(core.routes) == own | above
        assert core.input_axons == (300 if below else 500)
    recurrent_reference.assert_chip_model_matches(program, x)


def test_float_stacked_snn_reaches_the_ann_with_many_steps_per_item():
    """The timing of the docstring: layer l reads layer l-1's spikes of the same window, so each layer's rate is
    the ANN's h_t / lambda_l and the outputs approach the ANN's as K grows."""
    rng = np.random.default_rng(3)
    graph = _stacked_graph(rng, 4, 3, [6, 5], 3)
    x = rng.random((40, 4, 3)).astype(np.float32)
    expected = ann.evaluate(graph, x)
    errors = []
    for steps in (16, 512):
        program = recurrent.compile(graph, None, x, steps_per_item=steps, percentile=100.0)
        errors.append(float(np.abs(recurrent.run(program, x).outputs - expected).mean()))
    scale = float(np.abs(expected).mean())
    assert errors[1] < errors[0] and errors[1] < 0.02 * scale, (errors, scale)


def test_per_layer_normalization_is_each_layers_percentile():
    rng = np.random.default_rng(4)
    graph = _stacked_graph(rng, 4, 3, [6, 5], 3)
    x = rng.random((30, 4, 3)).astype(np.float32)
    program = recurrent.compile(graph, None, x, steps_per_item=8, percentile=97.0)
    cells = [layer for layer in graph if isinstance(layer, Recurrent)]
    first = recurrent.hidden_states(cells[0], x)
    second = recurrent.hidden_states(cells[1], first)
    scales = [float(np.percentile(first, 97.0)), float(np.percentile(second, 97.0))]
    assert program.notes["lambda_layers"] == pytest.approx(scales)
    np.testing.assert_allclose(program.upper[0].weight, cells[1].weight * scales[0] / scales[1])
    np.testing.assert_allclose(program.upper[0].bias, cells[1].bias / scales[1])
    np.testing.assert_allclose(program.output_weight, graph["head"].weight * scales[1])


# --- the artifact, report, NIR -------------------------------------------------------------------


def _compiled(target: str = "loihi", seed: int = 5):
    rng = np.random.default_rng(seed)
    graph = _stacked_graph(rng, 4, 5, [9, 6], 3)
    calib, x = rng.random((30, 4, 5)).astype(np.float32), rng.random((5, 4, 5)).astype(np.float32)
    return snnconv.compile(graph, target, calib, timesteps=K), graph, calib, x


@pytest.mark.parametrize("target", TARGETS)
def test_a_stacked_artifact_loads_and_runs_as_the_chip_model_and_the_reference(target, tmp_path):
    net, graph, calib, x = _compiled(target)
    loaded = snnconv.load(net.save(tmp_path / "rnn.snn"))
    run = loaded.run(x)
    direct = recurrent.run(recurrent.compile(graph, target, calib, steps_per_item=K), x)
    np.testing.assert_array_equal(run.item_outputs, direct.item_outputs)
    integrals, _, saturations = recurrent_reference.run(loaded.program, x)
    np.testing.assert_array_equal(run.item_outputs, integrals * loaded.program.output_scale / K)
    assert run.stats["saturations"] == saturations
    stats = recurrent_cost.statistics(loaded.program, targets.get(target), direct)
    assert run.stats["energy_uj"] == stats["energy_uj"]


def test_stacked_synaptic_ops_count_what_each_core_receives():
    net, _, _, x = _compiled("loihi")
    program, result = net.program, recurrent.run(net.program, x)
    spikes = result.neuron_spikes.mean(axis=0)
    first, second = spikes[:9].sum(), spikes[9:].sum()
    # layer 1 receives its own spikes; layer 2 layer 1's and its own; the outputs layer 2's
    expected = first * 9 + (first + second) * 6 + second * 3
    assert recurrent_cost.statistics(program, targets.get("loihi"), result)["synaptic_ops"] == pytest.approx(expected)


def _rewrite(path: Path, out: Path, change) -> Path:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    change(manifest, members)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    return out


def _swap_array(members: dict, manifest: dict, name: str, value: np.ndarray) -> None:
    import hashlib

    buffer = io.BytesIO()
    np.save(buffer, value)
    members[name] = buffer.getvalue()
    manifest["checksums"][name] = hashlib.sha256(members[name]).hexdigest()


def test_a_tampered_stacked_layer_is_refused_in_one_line(tmp_path):
    net, *_ = _compiled("loihi")
    path = net.save(tmp_path / "rnn.snn")
    name = "arrays/recurrent/upper0/weight.npy"

    def wrong_shape(manifest, members):
        _swap_array(members, manifest, name, np.zeros((6, 8)))

    def off_grid(manifest, members):
        with zipfile.ZipFile(path) as archive:
            weight = np.load(io.BytesIO(archive.read(name))).astype(np.float64)
        weight[0, 0] += 0.5
        _swap_array(members, manifest, name, weight)

    def missing_field(manifest, members):
        del manifest["recurrent"]["upper"][0]["v_init"]

    for change, words in [(wrong_shape, "stacked layer 1: weight of shape"), (off_grid, "stacked layer 1: weight"),
                          (missing_field, "stacked layer 1")]:
        with pytest.raises(BadArtifactError, match=words) as caught:
            snnconv.load(_rewrite(path, tmp_path / f"{change.__name__}.snn", change))
        assert "\n" not in str(caught.value)


def test_a_one_layer_artifact_written_before_stacked_layers_still_loads(tmp_path):
    """Artifacts of format 2 written before the ``upper`` field existed hold one recurrent layer."""
    rng = np.random.default_rng(8)
    graph = _stacked_graph(rng, 4, 5, [7], 3)
    calib, x = rng.random((20, 4, 5)).astype(np.float32), rng.random((4, 4, 5)).astype(np.float32)
    net = snnconv.compile(graph, "loihi", calib, timesteps=K)
    path = net.save(tmp_path / "rnn.snn")

    def older(manifest, members):
        assert manifest["recurrent"].pop("upper") == []

    loaded = snnconv.load(_rewrite(path, tmp_path / "older.snn", older))
    np.testing.assert_array_equal(loaded.run(x).item_outputs, net.run(x).item_outputs)


def test_the_report_names_each_layer():
    net, *_ = _compiled("loihi2")
    data = net.report.to_dict()
    assert data["populations"]["layers"] == [9, 6] and data["populations"]["hidden"] == 15
    assert data["totals"]["synapses"] == 9 * 9 + 6 * (6 + 9) + 6 * 3
    assert data["quantization"]["thresholds"] == [net.program.threshold, net.program.upper[0].threshold]
    text = net.report.render()
    assert "9 + 6 (2 stacked layers of) recurrent IF neurons" in text and "same step" in text


def _simulate_stacked_nir(graph, x: np.ndarray) -> np.ndarray:
    """An independent discrete-time reading of an exported stacked NIR graph: (N, L, C) per-item output sums.

    Reads only NIR: the edges, each node's parameters and the metadata the warnings name. Follows
    the chain input -> input_current -> IF -> (Affine -> IF)* -> head -> output; each IF's
    self-loop is Delay -> Linear.
    """
    nodes, edges = graph.nodes, graph.edges
    out_of = {source: [t for s, t in edges if s == source] for source in nodes}
    kind = {name: type(node).__name__ for name, node in nodes.items()}
    (drive,) = out_of["input"]
    rounding = nodes[drive].metadata["input_rounding"]
    bits = int(rounding.split("m of ")[1].split(" ")[0])
    lowest, highest = (int(e) for e in rounding.split("e in ")[1].split(" ")[0].split(".."))
    chain, current = [], drive
    while True:
        (neuron,) = [t for t in out_of[current] if kind[t] == "IF"]
        (delay,) = [t for t in out_of[neuron] if kind[t] == "Delay"]
        (loop,) = out_of[delay]
        assert out_of[loop] == [neuron]
        chain.append((current, neuron, loop, int(nodes[delay].metadata["delay_steps"])))
        onward = [t for t in out_of[neuron] if t != delay]
        (current,) = onward
        if kind[out_of[current][0]] == "Output":
            break
    head, readout = current, out_of[current][0]
    steps, items = chain[0][3], int(nodes["input"].metadata["items"])
    state = int(nodes[chain[0][1]].metadata["state_bits"])
    low, high = -(2.0 ** (state - 1)), 2.0 ** (state - 1) - 1
    largest = 2 ** (bits - 1) - 1
    n = len(x)
    v = [np.full((n, len(nodes[neuron].v_threshold)), float(nodes[neuron].metadata["v_init"]))
         for _, neuron, _, _ in chain]
    rings = [np.zeros((steps, n, len(nodes[neuron].v_threshold))) for _, neuron, _, _ in chain]
    weights = [(nodes[affine].weight.astype(np.float64), nodes[affine].bias.astype(np.float64),
                nodes[loop].weight.astype(np.float64), nodes[neuron].v_threshold.astype(np.float64))
               for affine, neuron, loop, _ in chain]
    v_out, c = nodes[head].weight.astype(np.float64), nodes[head].bias.astype(np.float64)
    sums = np.zeros((n, items, len(c)))
    for t in range(items):
        host = x[:, t].astype(np.float64) @ weights[0][0].T + weights[0][1]
        exponent = np.clip(np.ceil(np.log2(np.maximum(np.abs(host), 1e-30) / (largest + 0.5))), lowest, highest)
        mantissa = np.rint(host / 2.0**exponent)
        host = np.where(np.abs(mantissa) > largest, np.sign(host) * largest, mantissa) * 2.0**exponent
        v = [np.clip(membrane, 0, w[3]) for membrane, w in zip(v, weights)]
        total = np.zeros((n, len(c)))
        for k in range(steps):
            below = None
            for layer, (w, b, u, theta) in enumerate(weights):
                drive_in = host if layer == 0 else below @ w.T + b
                v[layer] = np.clip(v[layer] + drive_in + rings[layer][k] @ u.T, low, high)
                spikes = (v[layer] >= theta).astype(np.float64)
                v[layer] = v[layer] - spikes * theta
                rings[layer][k] = below = spikes
            total = np.clip(total + below @ v_out.T + c, low, high)
        sums[:, t] = total
    return sums * float(nodes[readout].metadata["scale"]) / steps


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_the_stacked_nir_export_simulated_equals_the_chip_model(target, tmp_path):
    import nir

    net, _, _, x = _compiled(target, seed=6)
    net.to_nir(tmp_path / "rnn.nir")
    exported = nir.read(str(tmp_path / "rnn.nir"))
    assert ("hidden", "forward_2") in exported.edges and ("recurrent_2", "hidden_2") in exported.edges
    np.testing.assert_array_equal(_simulate_stacked_nir(exported, x), net.run(x).item_outputs)


# --- the bundled two-layer model ------------------------------------------------------------------


def test_bundled_two_layer_rnn_compiles_runs_and_equals_the_reference():
    graph = load_onnx(MODELS / "mnist_rnn2.onnx")
    assert [layer.kind for layer in graph].count("recurrent") == 2
    calib, test = np.load(MODELS / "mnist_rnn_calib.npz"), np.load(MODELS / "mnist_rnn_test.npz")
    program = recurrent.compile(graph, "loihi", calib["x"][:100], steps_per_item=8)
    recurrent_reference.assert_chip_model_matches(program, test["x"][:2])
    low, high = recurrent.membrane_range(program)
    assert -(2.0**23) <= low and high < 2.0**23  # pixels in [0, 1] never saturate loihi's 24-bit membranes


# --- a torch module holding an RNN ---------------------------------------------------------------------


class _Cell(torch.nn.Module):
    def __init__(self, cell, **kwargs):
        super().__init__()
        torch.manual_seed(1)
        self.rnn = cell(5, 7, batch_first=True, **kwargs)
        self.head = torch.nn.Linear(7, 3)

    def forward(self, x):
        out = self.rnn(x)[1]
        return self.head((out[0] if isinstance(out, tuple) else out)[-1])


@pytest.mark.parametrize("layers", [1, 2])
def test_a_torch_module_with_an_rnn_compiles_as_its_onnx_file(layers, tmp_path):
    """The dynamo exporter would unroll the RNN into MatMuls; the module goes through the TorchScript exporter,
    so compiling the module equals compiling its legacy ONNX export."""
    module = _Cell(torch.nn.RNN, nonlinearity="relu", num_layers=layers)
    x = np.random.default_rng(2).random((30, 6, 5), dtype=np.float32)
    net = snnconv.compile(module, "loihi", x, example=torch.from_numpy(x[:1]), timesteps=K)
    path = tmp_path / "rnn.onnx"
    path.write_bytes(_export(module).SerializeToString())
    from_file = snnconv.compile(str(path), "loihi", x, timesteps=K)
    assert net.program.sizes == (7,) * layers
    np.testing.assert_array_equal(net.run(x[:6]).item_outputs, from_file.run(x[:6]).item_outputs)


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU])
def test_a_torch_module_with_lstm_or_gru_gets_the_gated_refusal(cell):
    x = torch.rand(2, 6, 5)
    with pytest.raises(UnsupportedOpError, match=f"{cell.__name__} gates multiply"):
        snnconv.load_torch(_Cell(cell), x)
