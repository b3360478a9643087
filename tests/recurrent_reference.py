"""The reference for recurrent programs: executes the per-core tables of ``snnconv.recurrent`` literally, in int64.

Only for tests. Each core holds a block of synapses: a hidden core the rows of every
hidden neuron (its recurrent axons) by the columns of its own neurons, an output core the
same rows by its integrators. A ring buffer of ``K`` hidden spike vectors is the synaptic
delay: at every step, each hidden core adds the host's bias for the current item and the
weights of the spikes sent ``K`` steps earlier; membranes saturate at the state bits; a
neuron spikes where ``v >= theta`` and subtracts ``theta``; at each item's first step the
membranes are clipped to ``[0, theta]`` (the rectified carry). A stacked layer's core also
holds the rows of the layer below and adds, in the same step, the weights of the spikes
that layer just fired, and its constant bias; layers step bottom to top. Output cores add
the weights of this step's top-layer spikes and their bias; the host reads each integral
at the end of an item's window and resets it.
"""

from __future__ import annotations

import numpy as np

from snnconv import recurrent
from snnconv.recurrent import RecurrentProgram, host_currents


def run(program: RecurrentProgram, x: np.ndarray, extremes: list | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(N, L, C) window integrals (int64), (N, L) spikes per item, saturations; ``extremes``, where given, gets
    the lowest and highest hidden membrane met (before saturation)."""
    n, steps, total = len(x), program.steps_per_item, program.hidden_total
    currents = host_currents(program, x)
    assert np.all(currents == np.rint(currents)), "host currents must be integers"
    currents = currents.astype(np.int64)
    layers = _layers(program)
    w_out, bias_out = _int(program.output_weight), _int(program.output_bias)
    top = layers[-1]["span"]
    hidden_cores = [c for c in program.cores if c.population == "hidden"]
    output_cores = [c for c in program.cores if c.population == "output"]
    tables = {}  # core -> (layer, recurrent rows by its neurons, feed-forward rows by its neurons or None)
    for c in hidden_cores:
        l = next(i for i, layer in enumerate(layers) if layer["span"][0] <= c.neurons[0] < layer["span"][1])
        a, b = (i - layers[l]["span"][0] for i in c.neurons)
        forward = None if layers[l]["w"] is None else layers[l]["w"][a:b].T.copy()
        tables[c.index] = (l, layers[l]["u"][a:b].T.copy(), forward)
    out_tables = {c.index: w_out[c.neurons[0]:c.neurons[1]].T.copy() for c in output_cores}
    low, high = -(2 ** (program.state_bits - 1)), 2 ** (program.state_bits - 1) - 1
    v = np.concatenate([np.full((n, layer["size"]), layer["v_init"], np.int64) for layer in layers], axis=1)
    thetas = np.concatenate([np.full(layer["size"], layer["theta"], np.int64) for layer in layers])
    ring = np.zeros((steps, n, total), np.int64)  # every hidden spike sent K steps ago, by step within the window
    integrals = np.zeros((n, program.items, len(w_out)), np.int64)
    spikes_per_item = np.zeros((n, program.items), np.int64)
    saturations = 0
    for t in range(program.items):
        integral = np.zeros((n, len(w_out)), np.int64)
        v = np.clip(v, 0, thetas)  # each window starts from the last one's remainder in [0, theta]
        for k in range(steps):
            delayed = ring[k]
            fired = np.zeros((n, total), np.int64)
            for l, layer in enumerate(layers):  # bottom to top: a layer reads the one below's spikes of this step
                lo, hi = layer["span"]
                for core in (c for c in hidden_cores if tables[c.index][0] == l):
                    a, b = core.neurons
                    _, own, forward = tables[core.index]
                    if forward is None:
                        drive = currents[:, t, a - lo:b - lo]
                    else:
                        start, stop = layers[l - 1]["span"]
                        drive = layer["bias"][a - lo:b - lo] + _product(fired[:, start:stop], forward)
                    total_in = v[:, a:b] + drive + _product(delayed[:, lo:hi], own)
                    saturations += int(((total_in < low) | (total_in > high)).sum())
                    if extremes is not None:
                        extremes[:] = [min(extremes[0], int(total_in.min())), max(extremes[1], int(total_in.max()))] \
                            if extremes else [int(total_in.min()), int(total_in.max())]
                    total_in = np.clip(total_in, low, high)
                    fired[:, a:b] = total_in >= layer["theta"]
                    v[:, a:b] = total_in - fired[:, a:b] * layer["theta"]
            for core in output_cores:
                a, b = core.neurons
                integral[:, a:b] = np.clip(integral[:, a:b] + _product(fired[:, top[0]:top[1]], out_tables[core.index])
                                           + bias_out[a:b], low, high)
            ring[k] = fired
            spikes_per_item[:, t] += fired.sum(axis=1)
        integrals[:, t] = integral
    return integrals, spikes_per_item, saturations


def _layers(program: RecurrentProgram) -> list[dict]:
    """Per recurrent layer: its neurons' span in the core table's numbering and its integers."""
    found = [{"w": None, "bias": None, "u": _int(program.recurrent), "theta": _whole(program.threshold),
              "v_init": _whole(program.v_init)}]
    found += [{"w": _int(layer.weight), "bias": _int(layer.bias), "u": _int(layer.recurrent),
               "theta": _whole(layer.threshold), "v_init": _whole(layer.v_init)} for layer in program.upper]
    start = 0
    for layer in found:
        layer["size"] = len(layer["u"])
        layer["span"] = (start, start + layer["size"])
        start += layer["size"]
    return found


def _whole(value: float) -> int:
    assert float(value).is_integer(), "thresholds and initial membranes must be integers"
    return int(value)


def _int(a: np.ndarray) -> np.ndarray:
    assert np.all(a == np.rint(a)), "chip weights must be integers"
    return np.rint(a).astype(np.int64)


def _product(spikes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Literal: for every source neuron that spiked, its row of weights added (int64)."""
    total = np.zeros((len(spikes), weights.shape[1]), np.int64)
    for source in np.flatnonzero(spikes.any(axis=0)):
        total += spikes[:, source:source + 1] * weights[source]
    return total


def assert_chip_model_matches(program: RecurrentProgram, x: np.ndarray) -> None:
    """The chip model (``snnconv.recurrent.run``) equals this reference bit for bit: spikes, saturations, and every
    item's output (the integral scaled to the ANN's units)."""
    fast = recurrent.run(program, x)
    integrals, spikes, saturations = run(program, x)
    np.testing.assert_array_equal(fast.spikes, spikes)
    assert fast.saturations == saturations
    np.testing.assert_array_equal(fast.item_outputs, integrals * program.output_scale / program.steps_per_item)
