"""NIR export: an independent simulator (Sinabs) runs the exported file as the chip model runs the network.

Also: ``nir.read`` gives back the same graph and it passes NIR's own type checks; the
exact rewrites (asymmetric pads, groups, ceil-mode sum pooling, zero padding, concat, add)
compute what the IR computes; what NIR cannot express is said in the warnings.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import snnconv
from snnconv import targets
from snnconv.compiled import CompiledNetwork
from snnconv.errors import MissingDependencyError, UnsupportedOpError
from snnconv.export import to_nir_graph, write_nir
from snnconv.geometry import host_computed
from snnconv.ir import IF, Add, Affine, Concat, Conv, Dense, Flatten, Graph, Input, Output, Pad, Pool
from snnconv.snn import simulate

nir = pytest.importorskip("nir", minversion="1.0.6", reason="NIR export needs nir >= 1.0.6 (pip install 'nir>=1.0.6')")

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST_X = np.load(MODELS.joinpath("mnist_test.npz"))["x"]
T = 32
CALIBRATION = 128  # of the 500 bundled samples: compiling simulates each at T (tuning, bias correction)


@functools.cache
def compiled(model: str) -> CompiledNetwork:
    return snnconv.compile(str(MODELS.joinpath(f"mnist_{model}.onnx")), "loihi", CALIB_X[:CALIBRATION], timesteps=T)


def _sinabs_predictions(path, x: np.ndarray, timesteps: int, batch: int = 200) -> np.ndarray:
    """Sinabs' own NIR import (``sinabs.from_nir``), fed the sample at every step (constant current).

    Sinabs' import leaves two defaults of its IAF that NIR's IF does not have, so they are
    set to NIR's: at most one spike per step (Sinabs: ``MultiSpike``) and no lower bound
    on the membrane (Sinabs: ``-threshold``). Each membrane starts at the exported
    metadata ``v_init``, which NIR cannot express.
    """
    sinabs = pytest.importorskip("sinabs", reason="the independent simulator is Sinabs (pip install sinabs)")
    from sinabs.activation import SingleSpike

    graph = nir.read(path)
    model = sinabs.from_nir(graph, num_timesteps=timesteps)
    neurons = {name: m for name, m in model.named_modules() if isinstance(m, sinabs.layers.IAFSqueeze)}
    for neuron in neurons.values():
        neuron.spike_fn, neuron.min_v_mem = SingleSpike, None
    predictions = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            sample = torch.as_tensor(x[start:start + batch])
            for name, neuron in neurons.items():
                shape = graph.nodes[name].v_threshold.shape
                neuron.init_state_with_shape((len(sample), *shape))
                neuron.v_mem += torch.as_tensor(graph.nodes[name].metadata["v_init"], dtype=torch.float32)
            repeated = sample.unsqueeze(1).expand(-1, timesteps, *sample.shape[1:]).reshape(-1, *sample.shape[1:])
            current, _ = model(repeated)
            predictions.append(current.reshape(len(sample), timesteps, -1).sum(dim=1).argmax(dim=1).numpy())
    return np.concatenate(predictions)


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_sinabs_agrees_with_the_chip_model_on_99_percent_of_the_test_digits(model, tmp_path):
    net = compiled(model)
    path = tmp_path / f"{model}.nir"
    write_nir(net, path)
    sinabs = _sinabs_predictions(path, TEST_X, T)
    agreement = float((sinabs == net.run(TEST_X, T).predictions).mean())
    assert agreement >= 0.99, agreement


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_nir_read_gives_back_the_same_graph_and_it_passes_nir_type_checks(model, tmp_path):
    written = to_nir_graph(compiled(model))
    write_nir(compiled(model), tmp_path / "net.nir")
    back = nir.read(tmp_path / "net.nir")
    assert back.check_types()
    assert sorted(back.edges) == sorted(written.edges)
    assert back.nodes.keys() == written.nodes.keys()
    for name, node in written.nodes.items():
        assert type(back.nodes[name]) is type(node), name
        for key, value in _parameters(node).items():
            np.testing.assert_array_equal(_parameters(back.nodes[name])[key], value, err_msg=f"{name}.{key}")
        assert back.nodes[name].metadata.keys() == node.metadata.keys(), name
        for key, value in node.metadata.items():
            np.testing.assert_array_equal(back.nodes[name].metadata[key], value, err_msg=f"{name} metadata {key}")
    assert back.metadata == written.metadata


def _parameters(node) -> dict:
    skip = {"input_type", "output_type", "metadata"}
    return {f.name: np.asarray(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name not in skip}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_spiking_layers_carry_the_chips_integer_weights_and_thresholds(model):
    net = compiled(model)
    host = host_computed(net.graph)
    exported = {node.metadata["snnconv_layer"]: node for node in to_nir_graph(net).nodes.values()}
    for layer in net.graph:
        if isinstance(layer, (Dense, Conv)) and layer.name not in host:
            assert np.array_equal(layer.weight, np.round(layer.weight)), layer.name
            np.testing.assert_array_equal(exported[layer.name].weight, layer.weight)
            np.testing.assert_array_equal(exported[layer.name].bias, layer.bias)
        if isinstance(layer, IF):
            assert np.all(exported[layer.name].v_threshold == layer.threshold)
            np.testing.assert_array_equal(exported[layer.name].metadata["v_init"],
                                          np.round(np.asarray(layer.v_init) * layer.threshold))


def test_the_output_integrator_is_a_warning_and_metadata(tmp_path, caplog):
    net = compiled("mlp")
    with caplog.at_level(logging.WARNING, logger="snnconv.export"):
        warnings = write_nir(net, tmp_path / "mlp.nir")
    expected = ("output: NIR's Output is the current at each step; the chip integrates it without spiking "
                "(saturating at 24 signed bits) and predicts the argmax of the sum over the 32 steps")
    assert any(w.startswith(expected) for w in warnings), warnings
    assert [r.getMessage() for r in caplog.records] == warnings
    assert nir.read(tmp_path / "mlp.nir").nodes["output"].metadata["readout"] == \
        "argmax of the output summed over the timesteps"


def test_a_readout_burn_in_is_said_in_the_warning_and_the_metadata(tmp_path):
    net = compiled("mlp")
    graph = net.graph.rebuilt(dataclasses.replace(layer, burn_in=6) if layer is net.graph.output else layer
                              for layer in net.graph)
    warnings = write_nir(CompiledNetwork(graph, net.target, dict(net.options)), tmp_path / "mlp.nir")
    assert any("predicts the argmax of the sum over steps 7 to 32 (metadata 'readout'; sum / (T - 6)" in w
               for w in warnings), warnings
    metadata = nir.read(tmp_path / "mlp.nir").nodes["output"].metadata
    assert metadata["burn_in"] == 6
    assert metadata["readout"] == "argmax of the output summed over the timesteps after the first 6"


def test_a_spiking_max_pool_is_written_as_a_sum_pool_with_a_warning(tmp_path):
    net = _network([
        Input(name="x", inputs=(), shape=(1, 4, 4)),
        Conv(name="conv", inputs=("x",), shape=(2, 4, 4), weight=np.ones((2, 1, 1, 1)), bias=np.zeros(2)),
        IF(name="spikes", inputs=("conv",), shape=(2, 4, 4), threshold=4.0),
        Pool(name="max", inputs=("spikes",), shape=(2, 2, 2), mode="max", kernel=(2, 2), stride=(2, 2)),
        Flatten(name="flat", inputs=("max",), shape=(8,)),
        Dense(name="dense", inputs=("flat",), shape=(3,), weight=np.ones((3, 8)), bias=np.zeros(3)),
        Output(name="out", inputs=("dense",), shape=(3,)),
    ])
    warnings = write_nir(net, tmp_path / "max.nir")
    pool = nir.read(tmp_path / "max.nir").nodes["max"]
    assert isinstance(pool, nir.SumPool2d) and pool.metadata["pool"] == "max"
    expected = ("max: NIR has no spiking max pooling (the chip spikes when the largest spike count in the window "
                "grows): exported as a window sum with metadata pool = 'max'; a simulator that ignores it sums the "
                "window's spikes instead")
    assert [w for w in warnings if w.startswith("max: ")] == [expected]


def _network(layers, timesteps: int = 8) -> CompiledNetwork:
    graph = Graph.from_layers(layers, "test", (("encoding", "current"), ("spiking", True)))
    return CompiledNetwork(graph, targets.get("loihi"), {"timesteps": timesteps})


def _branching_network() -> CompiledNetwork:
    """Every exact rewrite: asymmetric pads, groups, zero padding, ceil-mode sum pooling,
    a per-channel affine with shift, concat and add; a per-neuron initial membrane. Small
    integer weights, so every sum is exact."""
    rng = np.random.default_rng(0)

    def ints(*shape, low=-2, high=3):
        return rng.integers(low, high, size=shape).astype(np.float32)

    return _network([
        Input(name="x", inputs=(), shape=(2, 6, 6)),
        Conv(name="c1", inputs=("x",), shape=(4, 6, 6), weight=ints(4, 1, 3, 3), bias=ints(4), pads=(1, 0, 1, 2),
             groups=2),
        IF(name="a", inputs=("c1",), shape=(4, 6, 6), threshold=6.0, v_init=rng.integers(0, 6, (4, 6, 6)) / 6),
        Pad(name="pad", inputs=("a",), shape=(4, 7, 7), pads=(0, 1, 1, 0)),
        Pool(name="sum", inputs=("pad",), shape=(4, 4, 4), mode="sum", kernel=(2, 2), stride=(2, 2), ceil_mode=True),
        Conv(name="c2", inputs=("sum",), shape=(3, 4, 4), weight=ints(3, 4, 1, 1), bias=ints(3)),
        IF(name="b", inputs=("c2",), shape=(3, 4, 4), threshold=4.0),
        Conv(name="c3", inputs=("a",), shape=(3, 4, 4), weight=ints(3, 4, 2, 2), bias=ints(3), stride=(2, 2),
             pads=(1, 1, 1, 1)),
        IF(name="bb", inputs=("c3",), shape=(3, 4, 4), threshold=4.0),
        Concat(name="cat", inputs=("b", "bb"), shape=(6, 4, 4)),
        Affine(name="aff", inputs=("cat",), shape=(6, 4, 4), scale=ints(6, 1, 1, low=1, high=4),
               shift=ints(6, 1, 1)),
        IF(name="d", inputs=("aff",), shape=(6, 4, 4), threshold=4.0),
        Conv(name="c4", inputs=("d",), shape=(3, 4, 4), weight=ints(3, 6, 3, 3), bias=ints(3), pads=(1, 1, 1, 1)),
        Conv(name="c5", inputs=("b",), shape=(3, 4, 4), weight=ints(3, 3, 1, 1), bias=ints(3)),
        Add(name="add", inputs=("c4", "c5"), shape=(3, 4, 4)),
        IF(name="e", inputs=("add",), shape=(3, 4, 4), threshold=8.0),
        Flatten(name="flat", inputs=("e",), shape=(48,)),
        Dense(name="dense", inputs=("flat",), shape=(5,), weight=ints(5, 48), bias=ints(5)),
        Output(name="out", inputs=("dense",), shape=(5,)),
    ])


class _ChipIF(torch.nn.Module):
    """NIR's IF as the chip runs it, from the exported metadata: fire at v >= threshold, subtract it, start at v_init."""

    def __init__(self, node):
        super().__init__()
        self.threshold = torch.as_tensor(node.v_threshold)
        self.v_init = torch.as_tensor(node.metadata["v_init"], dtype=torch.float32)

    def forward(self, current, state=None):
        v = (self.v_init if state is None else state) + current
        spikes = (v >= self.threshold).float()
        return spikes, v - spikes * self.threshold


def _affine(node) -> torch.nn.Linear:
    linear = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0])
    linear.weight.data, linear.bias.data = torch.as_tensor(node.weight), torch.as_tensor(node.bias)
    return linear


def test_nirtorch_runs_every_exact_rewrite_as_the_ir_computes_it(tmp_path):
    nirtorch = pytest.importorskip("nirtorch", reason="nirtorch (installed with sinabs) wires NIR graphs in torch")
    net = _branching_network()
    write_nir(net, tmp_path / "net.nir")
    module = nirtorch.nir_to_torch(nir.read(tmp_path / "net.nir"), {nir.IF: _ChipIF, nir.Affine: _affine})
    x = np.random.default_rng(1).integers(0, 4, size=(4, 2, 6, 6)).astype(np.float32)
    timesteps = 8
    expected = simulate(net.graph, x, timesteps).outputs[timesteps]
    for sample, outputs in zip(x, expected):
        state, total = None, 0
        for _ in range(timesteps):
            current, state = module(torch.as_tensor(sample), state)
            total = total + current
        np.testing.assert_array_equal(total.detach().numpy() / timesteps, outputs)


def test_a_kernel_nir_cannot_size_is_refused_with_the_layer_named():
    net = _network([
        Input(name="x", inputs=(), shape=(1, 4, 4)),
        Conv(name="conv", inputs=("x",), shape=(2, 4, 3), weight=np.ones((2, 1, 1, 2)), bias=np.zeros(2)),
        IF(name="spikes", inputs=("conv",), shape=(2, 4, 3)),
        Flatten(name="flat", inputs=("spikes",), shape=(24,)),
        Dense(name="dense", inputs=("flat",), shape=(3,), weight=np.ones((3, 24)), bias=np.zeros(3)),
        Output(name="out", inputs=("dense",), shape=(3,)),
    ])
    with pytest.raises(UnsupportedOpError, match=r"layer 'conv' \(conv\): a 1x2 kernel .* kernel height alone"):
        to_nir_graph(net)


def test_without_nir_the_export_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(MissingDependencyError, match="pip install .nir>=1.0.6."):
        write_nir(compiled("mlp"), tmp_path / "mlp.nir")
    assert not list(tmp_path.iterdir())


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(monkeypatch, tmp_path):
    path = tmp_path / "mlp.nir"
    path.write_bytes(b"previous")

    def failing(filename, graph):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", failing)
    with pytest.raises(OSError, match="disk full"):
        write_nir(compiled("mlp"), path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.nir"]
