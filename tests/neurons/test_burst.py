"""Burst spikes (``snnconv.neurons.burst``): each against an oracle.

The fire rule against a literal loop of single spikes; a burst of one against the IF
neuron; the release of residual input against a hand-computed train; the rate against the
clipped ReLU, with every spike a message; the overflow bounds; the bundled MNIST CNN on
loihi2, whose statistics count every spike of a burst; refusals where a target sends one
spike per step, and for NIR. The chip model against the literal per-core reference on
random burst networks is in ``tests/test_chip_random.py``; the network's scaling by ``G``
against the ``G``-level quantized ANN here.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import numpy as np
import pytest
import torch

import snnconv
from snnconv import ann, neurons, overflow
from snnconv.errors import BadOptionError, UnsupportedOpError
from snnconv.ir import IF, Dense, Graph, Input, Output, ReLU
from snnconv.neurons.burst import DEFAULT_BURST
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))


def one_population(currents, **neuron) -> Graph:
    """Input currents ``(steps, n)`` (or ``(n,)``, constant) into one population read by the output."""
    n = np.shape(currents)[-1]
    layers = [Input(name="x", inputs=(), shape=(n,)),
              IF(name="s", inputs=("x",), shape=(n,), **{"model": "burst", "v_init": 0.0, **neuron}),
              Output(name="o", inputs=("s",), shape=(n,))]
    return Graph.from_layers(layers, facts=(("spiking", True), ("encoding", "current"), ("dtype", "float64")))


def hand_burst(v: float, theta: float, reset: str, most: int) -> tuple[int, float]:
    """Fire one spike at a time while a whole threshold is left, at most ``most``; then reset."""
    out = 0
    while v - out * theta >= theta and out < most:
        out += 1
    if reset == "subtract":
        return out, v - out * theta
    return out, 0.0 if out else v


@pytest.mark.parametrize("most", [1, 2, 5])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_the_fire_rule_is_a_loop_of_single_spikes_up_to_the_burst(rng, reset, most):
    theta = 64.0
    v = np.concatenate([rng.integers(-200, 64 * (most + 3), 300), np.arange(-2, most + 3) * theta - 1]).astype(float)
    layer = IF(name="s", inputs=("x",), shape=(len(v),), model="burst", threshold=theta, reset=reset,
               spikes_per_step=most)
    model = neurons.of(layer)
    state, out = torch.tensor(v), torch.empty(len(v), dtype=torch.float64)
    model.fire(layer, state, out)
    expected = [hand_burst(value, theta, reset, most) for value in v]
    np.testing.assert_array_equal(out.numpy(), [e[0] for e in expected])
    np.testing.assert_array_equal(state.numpy(), [e[1] for e in expected])


def test_a_burst_of_one_is_the_integrate_and_fire_neuron(rng):
    currents = rng.uniform(-0.5, 3.0, 64)
    one = simulate(one_population(currents, v_init=0.5, spikes_per_step=1), currents[None], 30).spike_counts["s"]
    binary = simulate(one_population(currents, v_init=0.5, model="if"), currents[None], 30).spike_counts["s"]
    np.testing.assert_array_equal(one, binary)


@pytest.mark.parametrize("most, train", [(1, [1, 1, 1, 0]), (2, [2, 1, 0, 0]), (4, [3, 0, 0, 0])])
def test_a_burst_releases_the_input_that_an_if_neuron_keeps_for_later_steps(most, train):
    """Three thresholds of current in the first step, none after: one spike per step (IF) takes three steps; a
    burst of up to 2 fires 2 then 1; of up to 4, all 3 at once."""
    layer = IF(name="s", inputs=("x",), shape=(1,), model="burst", v_init=0.0, spikes_per_step=most)
    model, v, fired = neurons.of(layer), torch.zeros(1, dtype=torch.float64), []
    for current in (3.0, 0.0, 0.0, 0.0):
        out = torch.empty_like(v)
        model.integrate(layer, v, torch.tensor([current], dtype=torch.float64))
        model.fire(layer, v, out)
        fired.append(int(out))
    assert fired == train


@pytest.mark.parametrize("most", [2, DEFAULT_BURST])
def test_the_rate_is_the_relu_clipped_at_the_burst_and_every_spike_is_a_message(most):
    currents = np.linspace(-2, most + 3, 401)
    timesteps = 12
    result = simulate(one_population(currents, v_init=0.5, spikes_per_step=most), currents[None], timesteps)
    layer = one_population(currents, spikes_per_step=most)["s"]
    predicted = ann.apply_layer(layer, [torch.tensor(currents[None])])[0].numpy()
    np.testing.assert_allclose(predicted, np.clip(currents, 0, most))
    assert np.abs(result.spike_counts["s"][0] / timesteps - predicted).max() <= 1 / timesteps
    np.testing.assert_array_equal(result.message_counts["s"], result.spike_counts["s"])  # binary spikes: no payload


def test_readers_of_bursts_see_up_to_the_burst_per_step_in_binary_messages():
    graph = Graph.from_layers([Input(name="x", inputs=(), shape=(3,)),
                               Dense(name="d", inputs=("x",), shape=(3,), weight=np.eye(3, dtype=np.float32),
                                     bias=np.zeros(3, np.float32)),
                               IF(name="s", inputs=("d",), shape=(3,), model="burst", spikes_per_step=3),
                               Dense(name="e", inputs=("s",), shape=(2,), weight=np.ones((2, 3), np.float32),
                                     bias=np.zeros(2, np.float32)),
                               Output(name="o", inputs=("e",), shape=(2,))], facts=(("spiking", True),))
    assert float(overflow.current_bounds(graph)["o"].hi.max()) == 3 * 3
    assert overflow.spikes_per_step(graph, "s") == 3 and overflow.payload(graph, "s") == 1


@pytest.fixture(scope="module")
def burst_cnn():
    return snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi2", CALIB_X, timesteps=4, neuron="burst",
                           burst=3)


def test_the_mnist_cnn_with_bursts_counts_every_spike_as_a_message(burst_cnn):
    result = burst_cnn.run(TEST["x"][:200], 4)
    populations = [layer for layer in burst_cnn.graph if isinstance(layer, IF)]
    assert {(layer.model, layer.spikes_per_step) for layer in populations} == {("burst", 3)}
    assert set(result.message_counts) == set(result.spike_counts)
    for name, counts in result.spike_counts.items():
        np.testing.assert_array_equal(result.message_counts[name], counts, err_msg=name)
    assert result.stats["spikes"] == pytest.approx(sum(float(c.sum()) for c in result.spike_counts.values()))
    counts = simulate(burst_cnn.graph, TEST["x"][:20], 4).spike_counts.values()
    assert max(float(c.max()) for c in counts) > 4  # some neuron fired more than once in a step


def test_nir_export_of_bursts_is_refused_in_one_line(burst_cnn, tmp_path):
    pytest.importorskip("nir")
    with pytest.raises(UnsupportedOpError, match="NIR has no burst neuron") as caught:
        burst_cnn.to_nir(tmp_path / "burst.nir")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("target", ["loihi", "speck"])
def test_targets_sending_one_spike_per_step_refuse_bursts(target):
    with pytest.raises(BadOptionError, match="carries 1 spike"):
        snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), target, CALIB_X[:10], neuron="burst")


def test_the_command_line_takes_the_burst_and_refuses_it_for_loihi_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", "compile", str(MODELS.joinpath("mnist_mlp.onnx")),
                             "-o", str(tmp_path / "x.snn"), "--neuron", "burst", "--burst", "3", "--target", "loihi"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "neuron model 'burst' emits up to 3" in result.stderr, result.stderr
    assert not (tmp_path / "x.snn").exists()


def test_a_burst_network_is_scaled_so_that_one_step_is_its_g_level_quantization(rng):
    """As graded spikes are (``passes/graded``): the hidden layer fires round(G a) spikes of its normalized
    activation a in the first step, and the output reads them through unchanged weights."""
    layers = [Input(name="x", inputs=(), shape=(12,)),
              Dense(name="d1", inputs=("x",), shape=(16,), weight=rng.normal(size=(16, 12)).astype(np.float32) / 3,
                    bias=rng.normal(size=16).astype(np.float32) / 4),
              ReLU(name="r1", inputs=("d1",), shape=(16,)),
              Dense(name="d2", inputs=("r1",), shape=(4,), weight=rng.normal(size=(4, 16)).astype(np.float32) / 4,
                    bias=np.zeros(4, np.float32)),
              Output(name="o", inputs=("d2",), shape=(4,))]
    x = rng.random((32, 12)).astype(np.float32)
    spiking = convert(Graph.from_layers(layers), x, neuron="burst", spikes_per_step=4, correct_bias=False,
                      percentile=100.0, v_init="half").graph
    assert spiking.fact("graded") == 4 and spiking["r1"].spikes_per_step == 4
    hidden = ann.activations(spiking, x, ["r1"])["r1"]  # 4 a, at most 4
    assert hidden.max() <= 4 and hidden.max() > 3  # the largest activation (percentile 100) reaches G
    d2 = spiking["d2"]
    expected = (np.floor(hidden + 0.5) @ d2.weight.T.astype(np.float64) + d2.bias) * spiking.output.scale
    np.testing.assert_allclose(simulate(spiking, x, 1).outputs[1], expected, rtol=1e-5, atol=1e-5)
