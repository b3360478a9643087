"""Graded spikes (``snnconv.neurons.graded``, ``passes/graded``): each against an oracle.

The fire rule against a literal per-neuron loop; the simulated payload rate against the
clipped ReLU; message counts against the steps with a payload; the scaled network against
the ANN (positive homogeneity); the bundled MNIST CNN on loihi2 against its ANN, with
synaptic operations against the ANN's MACs; refusals where a target cannot carry payloads
and for NIR. The chip model against the literal per-core reference on random graded
networks is in ``tests/test_chip_random.py``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
import torch

import snnconv
from snnconv import ann, neurons, overflow
from snnconv.errors import BadGraphError, BadOptionError, UnsupportedOpError
from snnconv.frontend import load_onnx
from snnconv.ir import IF, Dense, Graph, Input, Output, ReLU
from snnconv.passes.graded import Graded
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))
GRADED = neurons.get("graded")
P = GRADED.spikes_per_step


def one_population(currents: np.ndarray, **neuron) -> Graph:
    n = len(currents)
    layers = [Input(name="x", inputs=(), shape=(n,)),
              IF(name="s", inputs=("x",), shape=(n,), **{"model": "graded", "v_init": 0.0, **neuron}),
              Output(name="o", inputs=("s",), shape=(n,))]
    return Graph.from_layers(layers, facts=(("spiking", True), ("encoding", "current"), ("dtype", "float64")))


def hand_fire(v: float, theta: float, reset: str, most: int = P) -> tuple[int, float]:
    """Send one spike at a time while a whole threshold is left, at most ``most``; then reset."""
    out = 0
    while v - out * theta >= theta and out < most:
        out += 1
    if reset == "subtract":
        return out, v - out * theta
    return out, 0.0 if out else v


@pytest.mark.parametrize("most", [1, 4, 7, 255])  # 4: a QCFS net's L within a 3-bit payload (passes/graded)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("theta", [1.0, 7.0, 4096.0])
def test_the_fire_rule_is_a_loop_of_single_spikes_up_to_the_payload(rng, reset, theta, most):
    bits = most.bit_length()
    v = np.concatenate([rng.integers(-3 * int(theta), int(theta) * (most + 20), 500),
                        np.arange(-2, most + 3) * theta, np.arange(-2, most + 3) * theta - 1]).astype(np.float64)
    layer = IF(name="s", inputs=("x",), shape=(len(v),), model="graded", threshold=theta, reset=reset,
               spikes_per_step=most)
    model = neurons.of(layer)
    assert model.spikes_per_step == most and model.payload_bits == bits
    for dtype in (torch.float32, torch.float64):
        state = torch.tensor(v, dtype=dtype)
        out = torch.empty_like(state)
        model.fire(layer, state, out)
        expected = [hand_fire(value, theta, reset, most) for value in v]
        np.testing.assert_array_equal(out.numpy(), [e[0] for e in expected])
        np.testing.assert_array_equal(state.numpy(), [e[1] for e in expected])


def _counts_and_membranes(graph: Graph, currents: np.ndarray, timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    seen = []
    result = simulate(graph, currents[None], timesteps,
                      probe=lambda name, c, v: seen.append(v.numpy().copy()) if name == "s" else None)
    return result.spike_counts["s"], np.stack(seen)


def test_with_a_payload_of_one_bit_it_is_the_integrate_and_fire_neuron(rng):
    currents = rng.uniform(-0.5, 3.0, 64)
    one_bit, v_graded = _counts_and_membranes(one_population(currents, v_init=0.5, spikes_per_step=1), currents, 40)
    binary, v_binary = _counts_and_membranes(one_population(currents, v_init=0.5, model="if"), currents, 40)
    np.testing.assert_array_equal(one_bit, binary)
    np.testing.assert_array_equal(v_graded, v_binary)
    eight_bits = simulate(one_population(currents, v_init=0.5), currents[None], 40).spike_counts["s"]
    assert (eight_bits[:, currents > 1.1] > binary[:, currents > 1.1]).all()  # 255 per step: no longer capped at 1


@pytest.mark.parametrize("bits", [2, 8])
def test_the_payload_rate_is_the_relu_clipped_at_the_payload_and_messages_are_steps_with_a_payload(bits):
    most = 2 ** bits - 1
    currents = np.linspace(-3, most + 40, 997)
    timesteps = 16
    result = simulate(one_population(currents, v_init=0.5, spikes_per_step=most), currents[None], timesteps)
    layer = one_population(currents, spikes_per_step=most)["s"]
    predicted = ann.apply_layer(layer, [torch.tensor(currents[None])])[0].numpy()
    np.testing.assert_allclose(predicted, np.clip(currents, 0, most))
    assert np.abs(result.spike_counts["s"][0] / timesteps - predicted).max() <= 1 / timesteps
    # messages, by a literal loop over the steps
    v, sent = np.full_like(currents, 0.5), np.zeros_like(currents)
    for _ in range(timesteps):
        v = v + currents
        out = np.clip(np.floor(v), 0, most)
        v -= out
        sent += out > 0
    np.testing.assert_array_equal(result.message_counts["s"][0], sent)


def test_membranes_stay_in_the_bounds_with_payloads_per_step(rng):
    currents = rng.integers(-50, 2 * P * 8, 200).astype(np.float64)  # integers: the chip's arithmetic
    graph = one_population(currents, v_init=0.5, threshold=8.0, state_bits=24)
    bounds = {b.name: b for b in overflow.analyze(graph, 12, (float(currents.min()), float(currents.max())))}
    seen = []
    simulate(graph, currents[None], 12, probe=lambda name, c, v: seen.append(v.numpy().copy()) if name == "s" else 0)
    low, high = bounds["s"].membrane
    assert low <= min(s.min() for s in seen) and max(s.max() for s in seen) <= high
    reader = Graph.from_layers([Input(name="x", inputs=(), shape=(3,)),
                                Dense(name="d", inputs=("x",), shape=(3,), weight=np.eye(3, dtype=np.float32),
                                      bias=np.zeros(3, np.float32)),
                                IF(name="s", inputs=("d",), shape=(3,), model="graded"),
                                Dense(name="e", inputs=("s",), shape=(2,), weight=np.ones((2, 3), np.float32),
                                      bias=np.zeros(2, np.float32)),
                                Output(name="o", inputs=("e",), shape=(2,))], facts=(("spiking", True),))
    assert float(overflow.current_bounds(reader)["o"].hi.max()) == 3 * P  # readers see up to P per step
    narrow = reader.rebuilt([dataclasses.replace(layer, spikes_per_step=15) if layer.name == "s" else layer
                             for layer in reader])
    assert float(overflow.current_bounds(narrow)["o"].hi.max()) == 3 * 15  # 4-bit payloads: up to 15
    assert overflow.payload(narrow, "s") == overflow.spikes_per_step(narrow, "s") == 15


def _mlp(rng) -> Graph:
    layers = [Input(name="x", inputs=(), shape=(20,)),
              Dense(name="d1", inputs=("x",), shape=(30,), weight=rng.normal(size=(30, 20)).astype(np.float32) / 4,
                    bias=rng.normal(size=30).astype(np.float32) / 4),
              ReLU(name="r1", inputs=("d1",), shape=(30,)),
              Dense(name="d2", inputs=("r1",), shape=(5,), weight=rng.normal(size=(5, 30)).astype(np.float32) / 5,
                    bias=rng.normal(size=5).astype(np.float32) / 5),
              Output(name="o", inputs=("d2",), shape=(5,))]
    return Graph.from_layers(layers)


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_the_scaled_network_is_the_ann_and_one_step_is_its_p_level_quantization(rng, bits):
    graph = _mlp(rng)
    x = rng.random((64, 20)).astype(np.float32)
    most = 2 ** bits - 1
    spiking = convert(graph, x, neuron="graded", correct_bias=False, percentile=100.0, v_init="half",
                      spikes_per_step=most).graph
    assert spiking.fact("graded") == most
    logits = ann.evaluate(graph, x)
    scale = spiking.output.scale  # P times smaller than the normalized one: outputs in the ANN's units
    np.testing.assert_allclose(ann.evaluate(spiking, x) * scale, logits, rtol=1e-4, atol=1e-4)  # homogeneity
    # one step: the hidden layer sends round(P * a) of its normalized activation a (at most P), at once
    outputs = simulate(spiking, x, 1).outputs[1]
    hidden = ann.activations(spiking, x, ["r1"])["r1"]  # P * a, from the rate function
    d2, out = spiking["d2"], spiking.output
    quantized = np.floor(hidden + 0.5) @ d2.weight.T.astype(np.float64) + d2.bias
    np.testing.assert_allclose(outputs, quantized * out.scale, rtol=1e-5, atol=1e-5)
    # each hidden activation is off by at most half a level, 1 / (2P) of its range
    bound = np.abs(d2.weight).sum(axis=1).max() * 0.5 * out.scale
    assert np.abs(outputs - logits).max() <= bound + 1e-4 * np.abs(logits).max()


def test_the_graded_pass_refuses_a_population_reading_the_raw_input():
    layers = [Input(name="x", inputs=(), shape=(4,)), IF(name="s", inputs=("x",), shape=(4,), model="graded"),
              Output(name="o", inputs=("s",), shape=(4,))]
    graph = Graph.from_layers(layers, facts=(("spiking", True),))
    with pytest.raises(UnsupportedOpError, match="no weighted layer between"):
        Graded().run(graph)


@pytest.fixture(scope="module")
def graded_cnn():
    return snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi2", CALIB_X, timesteps=1, neuron="graded")


def test_the_mnist_cnn_with_graded_spikes_matches_its_ann_in_one_step_for_fewer_operations(graded_cnn):
    x, y = TEST["x"], TEST["y"]
    reference = float((ann.evaluate(load_onnx(str(MODELS.joinpath("mnist_cnn.onnx"))), x).argmax(1) == y).mean())
    result = graded_cnn.run(x, 1)
    assert result.accuracy(y) >= reference - 0.005, (result.accuracy(y), reference)
    assert result.stats["synaptic_ops"] <= graded_cnn.ann["macs"], (result.stats["synaptic_ops"], graded_cnn.ann)
    assert not result.saturations
    # a graded spike is one message: spikes counted are messages, the payloads sum to far more
    assert result.stats["spike_payload"] > 10 * result.stats["spikes"]
    populations = [layer for layer in graded_cnn.graph if isinstance(layer, IF)]
    assert {layer.model for layer in populations} == {"graded"} and len(populations) >= 3  # pools relayed


def test_nir_export_of_graded_spikes_is_refused_in_one_line(graded_cnn, tmp_path):
    pytest.importorskip("nir")
    with pytest.raises(UnsupportedOpError, match="NIR has no graded-spike neuron") as caught:
        graded_cnn.to_nir(tmp_path / "graded.nir")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("target", ["loihi", "speck"])
def test_targets_with_binary_spikes_refuse_graded_neurons(target):
    with pytest.raises(BadOptionError, match="carries 1 spike"):
        snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), target, CALIB_X[:10], neuron="graded")


def test_the_command_line_refuses_graded_spikes_for_loihi_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", "compile", str(MODELS.joinpath("mnist_mlp.onnx")),
                             "-o", str(tmp_path / "x.snn"), "--neuron", "graded", "--target", "loihi"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "neuron model 'graded' emits up to 255" in result.stderr, result.stderr
    assert not (tmp_path / "x.snn").exists()


def test_payload_bits_set_every_population_and_survive_the_artifact(tmp_path):
    net = snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi2", CALIB_X[:100], timesteps=2,
                          neuron="graded", payload_bits=4)
    populations = [layer for layer in net.graph if isinstance(layer, IF)]
    assert populations and {(layer.model, layer.spikes_per_step) for layer in populations} == {("graded", 15)}
    assert net.graph.fact("graded") == 15 and net.options["payload_bits"] == 4
    loaded = snnconv.load(net.save(tmp_path / "four.snn"))
    assert [layer.spikes_per_step for layer in loaded.graph if isinstance(layer, IF)] == [15] * len(populations)
    x = TEST["x"][:50]
    np.testing.assert_array_equal(loaded.run(x, 2).outputs, net.run(x, 2).outputs)


def test_a_target_carrying_fewer_spikes_per_step_refuses_wider_payloads(tmp_path):
    text = snnconv.targets.get("loihi2").to_toml().replace("spikes_per_step = 65535", "spikes_per_step = 15")
    (tmp_path / "narrow.toml").write_text(text.replace('name = "loihi2"', 'name = "narrow"'))
    target = str(tmp_path / "narrow.toml")
    assert neurons.sized("graded", 15).unsupported(snnconv.targets.get(target)) is None
    with pytest.raises(BadOptionError, match=r"carries 15 spike.*emits up to 31 \(5-bit payloads\)"):
        snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), target, CALIB_X[:10], neuron="graded",
                        payload_bits=5)


@pytest.mark.parametrize("layer, fragment", [
    (IF(name="s", inputs=("x",), shape=(2,), model="graded", spikes_per_step=2 ** 16), "65536 is not such a maximum"),
    (IF(name="s", inputs=("x",), shape=(2,), model="graded", spikes_per_step=2 ** 17 - 1), "1 to 16 bits"),
    (IF(name="s", inputs=("x",), shape=(2,), model="if", spikes_per_step=3), "'if' fires one spike per step"),
])
def test_a_population_s_spikes_per_step_is_checked_by_its_model(layer, fragment):
    with pytest.raises(BadGraphError, match=fragment):
        neurons.of(layer)
