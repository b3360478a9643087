"""Property test: the chip model equals the literal per-core reference, bit for bit, on random networks.

For every integer target, shrunk to small cores (``random_networks.small_cores``) so that
tiling, halos, input groups and shared cores occur, a random network is converted,
quantized and mapped, written to a ``.snn`` artifact and read back. The chip model runs
the artifact's program (``snnconv.snn.simulate``, as ``snnconv.chip`` does); the
reference (``reference_sim.Reference``) executes the per-core int64 tables of the
compiled graph literally. At every step, every IF membrane (after integration and
saturation, before reset, hence every spike) and the output integral must be equal;
after the run, every population's spike count and the outputs.

Inputs are drawn in the calibration range and far beyond it (scaled up to 1e5 times, and
negative); runs last 8 or 64 steps. Host-computed input currents are clipped to the bias
format, so membranes reach the state bits in the long runs: about a third of the examples
saturate on loihi and loihi2, a few on speck. The output integrator is sized for 1, 8 or 32
steps; reset to zero (``reset="zero"``) is drawn where the target needs it (loihi). The
neuron model is drawn too: integrate-and-fire, or leaky with a decay from 1 to 4095
4096ths per step where the target has a leak (``snnconv.neurons.leaky``), or graded
spikes of 1, 2 or 8-bit payloads where the target carries them (``snnconv.neurons.graded``:
loihi2, spinnaker2; the network scaled by ``passes/graded``), or bursts of up to 2 or 5
spikes where it carries that many per step (``snnconv.neurons.burst``). Messages per
neuron are checked too: a graded neuron's steps with a payload, every spike of the others.

``SNNCONV_HYPOTHESIS_EXAMPLES`` raises the number of examples per target (25 by default).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from random_networks import networks, small_cores
from reference_sim import Reference, _window_max, fire

from snnconv import artifact, neurons, targets
from snnconv.errors import DoesNotFitError
from snnconv.ir import IF, Graph, Pool
from snnconv.pipeline import convert, to_cores, to_target
from snnconv.snn import simulate

INTEGER_TARGETS = [name for name in targets.names() if not targets.get(name).precision.is_float]
EXAMPLES = int(os.environ.get("SNNCONV_HYPOTHESIS_EXAMPLES", "25"))
SCALES = (3.0, 30.0, 1e3, 1e5, -5.0, -1e5)  # input samples beyond the calibration range [0, 1)
# models firing several spikes per step, with that number (None: none): graded payloads of 1, 2 and 8 bits, bursts
SEVERAL = (None, None, ("graded", 1), ("graded", 3), ("graded", 255), ("burst", 2), ("burst", 5))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, print_blob=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # explaining takes minutes
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: torch's thread pool costs more than it saves (4x slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@st.composite
def inputs(draw, shape: tuple[int, ...]) -> np.ndarray:
    """Two to four samples: one in the calibration range [0, 1), the others scaled far beyond it, of either sign."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    scales = [1.0] + [draw(st.sampled_from(SCALES)) for _ in range(draw(st.integers(1, 3)))]
    return np.stack([scale * rng.random(shape) for scale in scales]).astype(np.float32)


def _mapped(graph: Graph, calibration: np.ndarray, target: str, reset: str, integrator_steps: int,
            decay: int = 0, several: tuple[str, int] | None = None) -> Graph:
    """``graph`` at ``target``'s precision (output integrator sized for ``integrator_steps``; leaky neurons where
    ``decay``, graded or burst ones firing up to ``several = (model, spikes per step)`` where the target carries
    them), on small cores; on the target's own cores where the small ones cannot hold a layer."""
    chip = small_cores(target)
    neuron, most = ("lif" if decay and chip.neuron.leak else "if"), None
    if several and neurons.sized(*several).unsupported(chip) is None:
        (neuron, most), decay = several, 0
    event(f"neuron {neuron}" + (f" up to {most}" if most else ""))
    spiking = convert(graph, calibration, neuron=neuron, decay=decay if neuron == "lif" else 0, spikes_per_step=most)
    quantized = to_target(spiking, chip, integrator_steps, reset)
    try:
        mapped = to_cores(quantized, chip, chips=10_000)
        event("small cores")
    except DoesNotFitError:
        mapped = to_cores(quantized, targets.get(target), chips=10_000)
        event("a layer needs the target's own cores")
    return mapped.graph


def _through_artifact(graph: Graph) -> Graph:
    """What the chip model sees: the program as written to a ``.snn`` file and read back, its core table (tiles,
    input groups, routes, places) as the compiler made it."""
    with tempfile.TemporaryDirectory() as folder:
        path = artifact.write(Path(folder) / "net.snn", graph, {})
        back = artifact.read(path).graph
    assert back.fact("mapping").cores == graph.fact("mapping").cores
    return back


def _chip_model(graph: Graph, x: np.ndarray, timesteps: int):
    """The chip model's result, and every membrane it probed (per layer, one (N, neurons) array per step)."""
    membranes: dict[str, list[np.ndarray]] = {}

    def probe(name, current, v):
        membranes.setdefault(name, []).append(v.reshape(len(x), -1).double().numpy().copy())

    return simulate(graph, x, timesteps, probe=probe), membranes


def _reference_spike_counts(graph: Graph, membranes: dict[str, list[np.ndarray]], batch: int) -> dict:
    """Each IF layer's spikes (membrane at or above threshold, step by step); a spiking max pool's count is
    the largest count in its window."""
    counts = {}
    for layer in graph:
        if isinstance(layer, IF):
            counts[layer.name] = sum(fire(layer, v.astype(np.int64)) for v in membranes[layer.name])
        elif isinstance(layer, Pool) and layer.mode == "max":
            source = counts[layer.inputs[0]]
            counts[layer.name] = _window_max(layer, source, graph.input_shapes(layer)[0], batch)
    return counts


def _reference_messages(graph: Graph, membranes: dict[str, list[np.ndarray]]) -> dict:
    """Each IF layer's messages: a graded neuron's steps with a nonzero payload; every spike of the others (a burst
    of ``G`` spikes is ``G`` binary messages)."""
    return {layer.name: sum(np.minimum(fired, 1) if layer.model == "graded" else fired
                            for fired in (fire(layer, v.astype(np.int64)) for v in membranes[layer.name]))
            for layer in graph if isinstance(layer, IF)}


@pytest.mark.parametrize("target", INTEGER_TARGETS)
@SETTINGS
@given(case=networks(), data=st.data(), reset=st.sampled_from(["emulate", "zero"]),
       integrator_steps=st.sampled_from([1, 8, 32]), timesteps=st.sampled_from([8, 64]),
       decay=st.sampled_from([0, 0, 1, 64, 4095]), several=st.sampled_from(SEVERAL))
def test_chip_model_equals_the_literal_reference_on_random_networks(target, case, data, reset, integrator_steps,
                                                                     timesteps, decay, several):
    graph, calibration = case
    compiled = _mapped(graph, calibration, target, reset, integrator_steps, decay, several)
    x = data.draw(inputs(graph.input.shape), label="x")

    result, fast = _chip_model(_through_artifact(compiled), x, timesteps)
    reference = Reference(compiled).run(x, timesteps)
    event("saturated" if result.saturations else "no saturation")

    assert set(fast) == set(reference)
    for name, steps in reference.items():
        for step, (mine, literal) in enumerate(zip(fast[name], steps, strict=True), start=1):
            np.testing.assert_array_equal(mine, literal.astype(np.float64), err_msg=f"{name} at step {step}")
    output = compiled.output
    np.testing.assert_array_equal(result.outputs[timesteps],
                                  reference[output.name][-1].astype(np.float64) / timesteps * output.scale)
    counts = _reference_spike_counts(compiled, reference, len(x))
    assert set(result.spike_counts) == set(counts)
    for name, count in counts.items():
        np.testing.assert_array_equal(result.spike_counts[name].reshape(len(x), -1), count, err_msg=name)
    for name, sent in _reference_messages(compiled, reference).items():
        np.testing.assert_array_equal(result.message_counts[name].reshape(len(x), -1), sent, err_msg=name)
