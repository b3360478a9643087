"""The neuron room: each model's step, rate function, bounds and NIR form against an oracle.

The bit-exact test of the leaky model on chip precision (against Lava's formula executed
literally on the per-core tables) is in ``tests/test_chip_random.py``; here each
model's float semantics, its ANN equivalent and what the compiler does with it.
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
from snnconv.errors import BadArtifactError, BadGraphError, BadOptionError
from snnconv.ir import IF, Graph, Input, Output
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))


def one_population(currents: np.ndarray, **neuron) -> Graph:
    """A population driven by ``currents`` (one constant current per neuron), read by an integrator."""
    n = len(currents)
    layers = [Input(name="x", inputs=(), shape=(n,)),
              IF(name="s", inputs=("x",), shape=(n,), **{"v_init": 0.0, **neuron}),
              Output(name="o", inputs=("s",), shape=(n,))]
    return Graph.from_layers(layers, facts=(("spiking", True), ("encoding", "current"), ("dtype", "float64")))


def rates(currents: np.ndarray, timesteps: int, **neuron) -> tuple[np.ndarray, np.ndarray]:
    """Simulated spike rate and the model's rate function, per current."""
    graph = one_population(currents, **neuron)
    simulated = simulate(graph, currents[None], timesteps).spike_counts["s"][0] / timesteps
    predicted = ann.apply_layer(graph["s"], [torch.tensor(currents[None])])[0].numpy()
    return simulated, predicted


CURRENTS = np.linspace(-0.3, 2.5, 281)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_if_rate_is_the_clipped_relu_and_the_simulation_reaches_it(reset):
    simulated, predicted = rates(CURRENTS, 2048, reset=reset, v_init=0.5 if reset == "subtract" else 0.0)
    np.testing.assert_allclose(predicted, np.clip(CURRENTS, 0, 1))
    if reset == "subtract":  # the residue carries over: within one spike over the run
        assert np.abs(simulated - predicted).max() <= 1 / 2048
    else:  # fires every ceil(1 / I) steps (away from float ties at integer 1 / I)
        inverse = 1 / np.clip(CURRENTS, 1e-9, None)
        clear = np.abs(inverse - np.round(inverse)) > 1e-6
        expected = np.where(CURRENTS > 0, 1 / np.ceil(inverse), 0)
        assert np.abs(simulated - expected)[clear].max() <= 1 / 2048


@pytest.mark.parametrize("decay", [16, 256, 1024])
def test_lif_with_reset_to_zero_fires_every_ceil_n_star_steps(decay):
    """The rate function is 1 / n*, n* the steps the leaky membrane takes from 0 to the threshold."""
    timesteps = 2520
    simulated, predicted = rates(CURRENTS, timesteps, model="lif", decay=decay, reset="zero")
    a = 1 - decay / 4096
    alive = CURRENTS > 1 - a
    n_star = np.log(1 - (1 - a) / CURRENTS[alive]) / np.log(a)
    np.testing.assert_allclose(predicted[alive], np.clip(1 / n_star, 0, 1), rtol=1e-9)
    assert not predicted[~alive].any() and not simulated[~alive].any()  # the dead zone
    # away from float ties at integer n*, and from the dead zone's edge, where v creeps up to theta
    clear = (np.abs(n_star - np.round(n_star)) > 1e-6) & (n_star < 64)
    assert np.abs(simulated[alive][clear] - 1 / np.ceil(n_star[clear])).max() <= 1 / timesteps


@pytest.mark.parametrize("decay", [16, 256, 1024])
def test_lif_rate_bounds_the_subtractive_reset_rate_within_the_decay(decay):
    simulated, predicted = rates(CURRENTS, 4096, model="lif", decay=decay, reset="subtract")
    assert (simulated <= predicted + 1 / 4096).all()
    assert (predicted - simulated).max() <= decay / 4096


def test_lif_at_chip_precision_truncates_the_decay_toward_zero():
    """One step from v = +-1000 and +-5 with decay 1000: Lava's sign(v * 3096) * (|v * 3096| >> 12)."""
    v0 = np.array([1000.0, -1000.0, 5.0, -5.0])
    graph = one_population(np.zeros(4), model="lif", decay=1000, threshold=4096.0, state_bits=24,
                           v_init=v0 / 4096)
    seen = []
    simulate(graph, np.zeros((1, 4)), 1, probe=lambda name, current, v: seen.append(v.numpy().copy()))
    expected = np.sign(v0 * 3096) * (np.abs(v0 * 3096).astype(np.int64) >> 12)
    np.testing.assert_array_equal(seen[0][0], expected)  # [756, -756, 3, -3]


def test_each_model_refuses_parameters_it_cannot_run():
    with pytest.raises(BadGraphError, match="an 'if' neuron has no leak"):
        simulate(one_population(np.ones(2), decay=5), np.ones((1, 2)), 4)
    with pytest.raises(BadGraphError, match="decay is an integer in 1..4095"):
        simulate(one_population(np.ones(2), model="lif", decay=0), np.ones((1, 2)), 4)
    with pytest.raises(BadGraphError, match="neuron model 'izhikevich' is unknown"):
        simulate(one_population(np.ones(2), model="izhikevich"), np.ones((1, 2)), 4)


def test_lif_bounds_hold_and_their_work_decides_the_dtype(rng):
    """Membranes of a leaky network under inputs far outside calibration stay in the analysis' bounds; the
    decay's product (membrane x 4096) is what makes float64 necessary."""
    net = snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi2", CALIB_X[:100], timesteps=16,
                          percentile=99.9, neuron="lif", decay=0.01)
    graph = net.graph
    worst = {b.name: b for b in overflow.analyze(graph, 16, graph.fact("input_range"))}
    seen = {}

    def probe(name, current, v):
        low, high = seen.get(name, (np.inf, -np.inf))
        seen[name] = (min(low, float(v.min())), max(high, float(v.max())))

    x = np.concatenate([CALIB_X[:16], rng.uniform(*graph.fact("input_range"), size=(16, *CALIB_X.shape[1:]))])
    simulate(graph, x.astype(np.float32), 16, probe=probe)
    for name, (low, high) in seen.items():
        assert worst[name].membrane[0] <= low and high <= worst[name].membrane[1], name
    populations = [b for b in worst.values() if graph[b.name].kind == "if"]
    assert all(b.work >= 4096 * max(map(abs, b.membrane)) * 0.99 for b in populations if not b.may_saturate)
    assert graph.fact("dtype") == overflow.exact_dtype(list(worst.values()))


@pytest.fixture(scope="module")
def leaky_cnn():
    return snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi", CALIB_X[:200], timesteps=32,
                           neuron="lif", decay=1 / 256)


def test_a_leaky_cnn_stays_within_a_point_of_the_integrate_and_fire_one(leaky_cnn):
    x, y = TEST["x"][:500], TEST["y"][:500]
    plain = snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi", CALIB_X[:200], timesteps=32)
    leaky, integrate = leaky_cnn.run(x).accuracy(y), plain.run(x).accuracy(y)
    converted = [layer for layer in leaky_cnn.graph if isinstance(layer, IF) and not layer.name.endswith("/neurons")]
    assert {(layer.model, layer.decay) for layer in converted} == {("lif", 16)}  # pool relays (legalize_fan_in)
    assert len(converted) >= 2  # stay integrate-and-fire: they pass a mean rate on
    assert leaky >= integrate - 0.01, (leaky, integrate)


def test_a_leaky_network_round_trips_through_the_artifact_and_runs_the_same(leaky_cnn, tmp_path):
    path = leaky_cnn.save(tmp_path / "lif.snn")
    loaded = snnconv.load(path)
    x = TEST["x"][:20]
    np.testing.assert_array_equal(loaded.run(x).outputs, leaky_cnn.run(x).outputs)


def test_a_leaky_artifact_for_a_target_without_leak_is_refused(leaky_cnn, tmp_path):
    path = leaky_cnn.save(tmp_path / "lif.snn")
    with pytest.raises(BadArtifactError, match="no per-step membrane decay"):
        snnconv.artifact.check_precision(snnconv.load(path).graph, snnconv.targets.get("speck"), str(path))


def test_nir_writes_a_leaky_population_as_lif_with_tau_from_the_decay(leaky_cnn, tmp_path):
    nir = pytest.importorskip("nir")
    warnings = leaky_cnn.to_nir(tmp_path / "lif.nir")
    graph = nir.read(tmp_path / "lif.nir")
    lifs = [node for node in graph.nodes.values() if isinstance(node, nir.LIF)]
    relays = [key for key, node in graph.nodes.items() if isinstance(node, nir.IF)]
    assert len(lifs) >= 2 and all(key.endswith("_neurons") for key in relays), relays
    for node in lifs:
        np.testing.assert_allclose(node.tau, 4096 / 16)
        np.testing.assert_allclose(node.r, node.tau)
        assert node.metadata["decay"] == 16 and node.metadata["model"] == "lif"
    assert any("truncates toward zero" in w for w in warnings)


@pytest.mark.parametrize("options, fragment", [
    ({"neuron": "lif", "target": "speck"}, "target 'speck' has no per-step membrane decay"),
    ({"neuron": "if", "decay": 0.1}, "neuron 'if' has no leak"),
    ({"neuron": "lif", "decay": 1.5}, "not a decay per step"),
    ({"neuron": "lif", "decay": 1e-9}, "not a decay per step"),
    ({"neuron": "hodgkin-huxley"}, "neuron: 'hodgkin-huxley' is not one of 'if', 'lif', 'graded', 'burst'"),
    ({"neuron": "if", "payload_bits": 4}, "neuron 'if' sends no payload; use neuron 'graded'"),
    ({"neuron": "graded", "payload_bits": 17, "target": "loihi2"}, "payload_bits: 17 is out of range"),
    ({"neuron": "graded", "burst": 2, "target": "loihi2"}, "neuron 'graded' fires no bursts; use neuron 'burst'"),
    ({"neuron": "burst", "burst": 0, "target": "loihi2"}, "burst: 0 is not a positive integer"),
    ({"neuron": "burst"}, "target 'loihi' carries 1 spike.s. per neuron and step; neuron model 'burst' emits up to 4"),
])
def test_neuron_options_are_checked_before_compiling(options, fragment):
    target = options.pop("target", "loihi")
    with pytest.raises(BadOptionError, match=fragment):
        snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), target, CALIB_X[:10], **options)


def test_the_registry_lists_every_model_once_with_a_description():
    assert neurons.names() == ("if", "lif", "graded", "burst")
    assert all(model.description and neurons.get(name) is model for name, model in neurons.MODELS.items())


@pytest.mark.parametrize("args, fragment", [
    (["--neuron", "lif", "--target", "speck"], "target 'speck' has no per-step membrane decay"),
    (["--decay", "0.1"], "neuron 'if' has no leak"),
    (["--neuron", "lif", "--decay", "two"], "'two' is not a decay per step"),
])
def test_the_command_line_refuses_a_neuron_the_target_cannot_run_in_one_line(args, fragment, tmp_path):
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", "compile", str(MODELS.joinpath("mnist_mlp.onnx")),
                             "-o", str(tmp_path / "x.snn"), *args], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
    assert not (tmp_path / "x.snn").exists()


@pytest.mark.parametrize("seed", range(6))
def test_if_under_a_constant_current_in_closed_form_steps_as_the_loop_does(seed):
    """``run_constant``'s closed form against the step loop it replaces (``NeuronModel.run``), on integers as a
    chip holds them: currents from far below zero to several thresholds, membranes from inside ``[0, theta)``
    (closed form) and outside it (the loop), one to 40 steps; spikes and membranes equal to the bit."""
    rng = np.random.default_rng(seed)
    theta = int(rng.integers(1, 2000))
    n, steps = 300, int(rng.integers(1, 41))
    layer = IF(name="s", inputs=("x",), shape=(n,), threshold=float(theta), state_bits=24, v_init=0.0)
    current = torch.from_numpy(rng.integers(-3 * theta, 4 * theta, (1, n)).astype(np.float32))
    current[0, :40] = torch.arange(40) % 3 - 1 + theta  # around the threshold, where the cap starts to bind
    inside = rng.integers(0, theta, (1, n))
    for start in (inside, inside - theta // 2 if seed % 2 else inside + theta):
        v_loop = torch.from_numpy(start.astype(np.float32))
        v_closed, loop, closed = v_loop.clone(), torch.empty((steps, 1, n)), torch.empty((steps, 1, n))
        model = neurons.get("if")
        neurons.NeuronModel.run(model, layer, v_loop, [current] * steps, loop.unbind(0))
        model.run_constant(layer, v_closed, current, closed)
        assert torch.equal(closed, loop) and torch.equal(v_closed, v_loop)
