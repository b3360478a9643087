"""The ANN's cost (snnconv.ann_cost) and the NeuroBench metrics of a run (snnconv.metrics), against oracles.

Oracles: MACs from ONNX's own shape inference and a hand count; spikes, sparsities and
synaptic operations of small hand-built networks whose spike trains are known; the
effective ACs of a compiled network from the independent connectivity of
``mapping_checker`` (one-hot spikes pushed through the graph's own weights).
"""

from __future__ import annotations

import json
import math
import sys
import zipfile
from importlib import resources

import numpy as np
import onnx
import pytest
import torch
from mapping_checker import connectivity

import snnconv
from snnconv import ann_cost, chip, metrics, targets
from snnconv.ir import IF, Conv, Dense, Flatten, Graph, Input, Output, Pool

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST_X = np.load(MODELS.joinpath("mnist_test.npz"))["x"][:32]
MLP_MACS = 784 * 256 + 256 * 128 + 128 * 10  # by hand: the three dense layers of models/train.py's MLP
T = 16


def _onnx_macs(path: str) -> int:
    """MACs from ONNX's shape inference: Conv = output elements x weight[1:] size; Gemm/MatMul = weight size."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    shapes = {info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
              for info in list(model.graph.value_info) + list(model.graph.output)}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            total += math.prod(shapes[node.output[0]][1:]) * math.prod(weights[node.input[1]].shape[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            total += next(weights[name].size for name in node.input if name in weights and weights[name].ndim == 2)
    return total


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_ann_macs_equal_a_count_from_onnx_shape_inference(model):
    path = str(MODELS.joinpath(f"mnist_{model}.onnx"))
    assert ann_cost.macs(snnconv.load_onnx(path)) == _onnx_macs(path)


def test_ann_macs_of_the_mlp_equal_the_hand_count():
    assert ann_cost.macs(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx")))) == MLP_MACS


def test_ann_latency_is_measured_by_onnxruntime_at_batch_one():
    pytest.importorskip("onnxruntime", reason="the latency is measured only where onnxruntime is installed")
    latency, how = ann_cost.latency_us(onnx.load(str(MODELS.joinpath("mnist_mlp.onnx"))), (1, 28, 28))
    assert latency > 0
    assert "batch 1" in how


def test_without_onnxruntime_the_latency_is_none_with_the_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    latency, how = ann_cost.latency_us(onnx.load(str(MODELS.joinpath("mnist_mlp.onnx"))), (1, 28, 28))
    assert latency is None
    assert "not installed" in how


def test_a_torch_module_is_timed_through_the_onnx_the_frontend_exports():
    pytest.importorskip("onnxruntime", reason="the latency is measured only where onnxruntime is installed")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    calibration = torch.rand(64, 4)
    net = snnconv.compile(module, "loihi", calibration, example=calibration[:1], timesteps=8)
    assert net.ann["macs"] == 4 * 3 + 3 * 2
    assert net.ann["latency_us"] > 0


# A hand-built network: currents [0.5, 0, 1] into IF neurons (threshold 1, v0 = 0, subtractive
# reset) spike at steps 2, 4, ... / never / every step: counts [T/2, 0, T] over T steps.
W1 = np.array([[0.5, 7.0], [0.0, 7.0], [1.0, 0.0]])  # host layer; input [1, 0] gives currents [0.5, 0, 1]
W2 = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])  # nonzero per source: [1, 0, 2]
X = np.array([[1.0, 0.0]], np.float32)


def _hand_built() -> Graph:
    layers = [Input(name="x", inputs=(), shape=(2,)),
              Dense(name="d1", inputs=("x",), shape=(3,), weight=W1, bias=np.zeros(3)),
              IF(name="if1", inputs=("d1",), shape=(3,), threshold=1.0, v_init=0.0),
              Dense(name="d2", inputs=("if1",), shape=(2,), weight=W2, bias=np.zeros(2)),
              Output(name="out", inputs=("d2",), shape=(2,))]
    return Graph.from_layers(layers, "hand", (("spiking", True),))


def test_hand_built_network_spikes_as_computed_by_hand():
    result = chip.run(_hand_built(), targets.get("ideal"), X, T)
    np.testing.assert_array_equal(result.spike_counts["if1"], [T / 2, 0, T])


def test_activation_sparsity_of_known_spikes():
    stats = chip.run(_hand_built(), targets.get("ideal"), X, T).stats["neurobench"]
    assert stats["activation_sparsity"] == 1 - (T / 2 + T) / (3 * T)


def test_connection_sparsity_counts_the_zero_weights_of_dense_and_conv_layers():
    stats = chip.run(_hand_built(), targets.get("ideal"), X, T).stats["neurobench"]
    assert stats["connection_sparsity"] == (2 + 3) / (6 + 6)


def test_synaptic_operations_of_known_spikes_and_zero_weights():
    ops = chip.run(_hand_built(), targets.get("ideal"), X, T).stats["neurobench"]["synaptic_operations"]
    assert ops["effective_macs"] == 2  # input 0 is nonzero and reaches 2 nonzero weights; input 1 is zero
    assert ops["effective_acs"] == T / 2 * 1 + 0 * 0 + T * 2
    assert ops["dense"] == W1.size + T * W2.size


@pytest.mark.parametrize("target, bits", [("ideal", (6 + 3 + 6 + 2) * 32 + 32),
                                          ("loihi", (6 + 3) * 32 + 6 * 8 + 2 * 13 + 17)])
def test_footprint_counts_each_parameter_at_the_bits_it_is_stored_with(target, bits):
    """Host layer d1 at 32 bits; d2 at the target's weight and bias bits; one threshold per IF layer."""
    stats = metrics.neurobench(_hand_built(), targets.get(target), {"if1": np.zeros(3)}, T, 0.0)
    assert stats["footprint_bytes"] == math.ceil(bits / 8)


def _conv_network(rng) -> Graph:
    """Conv -> IF -> spiking max pool -> conv with zero weights -> IF -> sum pool -> flatten -> dense -> output."""
    w2 = rng.normal(size=(3, 2, 3, 3)) * (rng.random((3, 2, 3, 3)) > 0.4)
    w3 = rng.normal(size=(4, 12)) * (rng.random((4, 12)) > 0.4)
    layers = [Input(name="x", inputs=(), shape=(1, 8, 8)),
              Conv(name="c1", inputs=("x",), shape=(2, 8, 8), weight=rng.normal(size=(2, 1, 3, 3)),
                   bias=np.full(2, 0.3), pads=(1, 1, 1, 1)),
              IF(name="if1", inputs=("c1",), shape=(2, 8, 8)),
              Pool(name="max", inputs=("if1",), shape=(2, 4, 4), mode="max", kernel=(2, 2), stride=(2, 2)),
              Conv(name="c2", inputs=("max",), shape=(3, 4, 4), weight=w2, bias=np.full(3, 0.1), pads=(1, 1, 1, 1)),
              IF(name="if2", inputs=("c2",), shape=(3, 4, 4)),
              Pool(name="sum", inputs=("if2",), shape=(3, 2, 2), mode="sum", kernel=(2, 2), stride=(2, 2)),
              Flatten(name="flat", inputs=("sum",), shape=(12,)),
              Dense(name="d3", inputs=("flat",), shape=(4,), weight=w3, bias=np.zeros(4)),
              Output(name="out", inputs=("d3",), shape=(4,))]
    return Graph.from_layers(layers, "conv", (("spiking", True),))


def _brute_force_acs(graph: Graph, counts: dict[str, np.ndarray]) -> float:
    """Each source neuron's spikes times the neurons it reaches through a nonzero summed weight."""
    links = connectivity(graph, weights=True)
    return sum(float(counts[source].reshape(-1) @ (weights != 0).sum(axis=1)) for (source, _), weights in links.items())


def test_effective_acs_equal_spikes_times_nonzero_fan_out_by_brute_force(rng):
    graph = _conv_network(rng)
    result = chip.run(graph, targets.get("ideal"), rng.random((5, 1, 8, 8)).astype(np.float32), T)
    assert sum(c.sum() for c in result.spike_counts.values()) > 0
    ops = result.stats["neurobench"]["synaptic_operations"]
    assert ops["effective_acs"] == pytest.approx(_brute_force_acs(graph, result.spike_counts), rel=1e-12)
    synapses = sum(float(c.sum()) for c in connectivity(graph).values())
    host_macs = 2 * (36 * 9 + 24 * 6 + 4 * 4)  # c1, in-bounds taps: 36 inner, 24 edge and 4 corner outputs
    assert ops["dense"] == host_macs + T * synapses


@pytest.fixture(scope="module")
def mlp():
    return snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi", CALIB_X, timesteps=T)


@pytest.fixture(scope="module")
def mlp_run(mlp):
    return mlp.run(TEST_X)


def test_run_reports_the_ann_beside_the_chip(mlp_run):
    ann = mlp_run.stats["ann"]
    assert ann["macs"] == MLP_MACS
    assert ann["energy_uj"] == pytest.approx(MLP_MACS * 4.6e-6)
    if ann["latency_us"] is None:
        pytest.importorskip("onnxruntime", reason=ann["latency_source"])
    assert ann["latency_us"] > 0


def test_effective_acs_of_the_compiled_mlp_equal_the_brute_force_count(mlp, mlp_run):
    ops = mlp_run.stats["neurobench"]["synaptic_operations"]
    assert ops["effective_acs"] == pytest.approx(_brute_force_acs(mlp.graph, mlp_run.spike_counts), rel=1e-9)
    assert ops["effective_acs"] <= mlp_run.stats["synaptic_ops"] * (1 + 1e-9)  # the chip counts zero weights too
    assert ops["dense"] == 784 * 256 + T * (256 * 128 + 128 * 10)


def test_effective_macs_of_the_compiled_mlp_count_nonzero_pixels_times_nonzero_weights(mlp, mlp_run):
    host = next(layer for layer in mlp.graph if isinstance(layer, Dense))
    expected = ((TEST_X.reshape(len(TEST_X), -1) != 0) @ (host.weight != 0).sum(axis=0)).mean()
    assert mlp_run.stats["neurobench"]["synaptic_operations"]["effective_macs"] == pytest.approx(expected)


def test_the_artifact_keeps_the_ann_block_but_no_timing(mlp, tmp_path):
    path = mlp.save(tmp_path / "mlp.snn")
    with zipfile.ZipFile(path) as archive:
        stored = json.loads(archive.read("manifest.json"))["ann"]
    assert stored == ann_cost.deterministic(mlp.ann)
    assert "latency_us" not in stored
    back = snnconv.load(path)
    assert back.ann["macs"] == MLP_MACS
    assert back.ann["latency_us"] is None and "not stored" in back.ann["latency_source"]
    assert back.run(TEST_X[:4]).stats["ann"]["energy_uj"] == mlp.ann["energy_uj"]
    assert mlp.save(tmp_path / "again.snn").read_bytes() == path.read_bytes()


def test_effective_macs_of_a_strided_padded_conv_are_the_binary_convolution_s_sum():
    """Oracle: torch's conv2d of nonzero(x) with nonzero(W) (padding 2, stride 2, zero taps), summed."""
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(4, 2, 5, 5)) * (rng.random((4, 2, 5, 5)) < 0.6)
    conv = Conv(name="conv", inputs=("x",), shape=(4, 5, 5), weight=weight, bias=np.zeros(4), stride=(2, 2),
                pads=(2, 2, 2, 2))
    graph = Graph.from_layers([Input(name="x", inputs=(), shape=(2, 9, 9)), conv,
                               IF(name="if", inputs=("conv",), shape=(4, 5, 5), threshold=1.0, v_init=0.0),
                               Output(name="out", inputs=("if",), shape=(4, 5, 5))], "conv", (("spiking", True),))
    x = (rng.random((3, 2, 9, 9)) * (rng.random((3, 2, 9, 9)) < 0.5)).astype(np.float32)
    expected = torch.nn.functional.conv2d(torch.tensor(x != 0, dtype=torch.float64),
                                          torch.tensor(weight != 0, dtype=torch.float64), stride=2, padding=2).sum()
    assert metrics.effective_macs(graph, x) == float(expected)
