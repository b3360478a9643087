"""The reference for recurrent programs: executes the per-core tables of ``snnconv.recurrent`` literally, in int64.

Only for tests. Each core holds a block of synapses: a hidden core the rows of every
hidden neuron (its recurrent axons) by the columns of its own neurons, an output core the
same rows by its integrators. A ring buffer of ``K`` hidden spike vectors is the synaptic
delay: at every step, each hidden core adds the host's bias for the current item and the
weights of the spikes sent ``K`` steps earlier; membranes saturate at the state bits; a
neuron spikes where ``v >= theta`` and subtracts ``theta``; at each item's first step the
membranes are clipped to ``[0, theta]`` (the rectified carry). Output cores add the weights of
this step's spikes and their bias; the host reads each integral at the end of an item's
window and resets it.
"""

from __future__ import annotations

import numpy as np

from snnconv.recurrent import RecurrentProgram, host_currents


def run(program: RecurrentProgram, x: np.ndarray, extremes: list | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(N, L, C) window integrals (int64), (N, L) spikes per item, saturations; ``extremes``, where given, gets
    the lowest and highest hidden membrane met (before saturation)."""
    n, steps, hidden = len(x), program.steps_per_item, program.hidden
    currents = host_currents(program, x)
    assert np.all(currents == np.rint(currents)), "host currents must be integers"
    currents = currents.astype(np.int64)
    u, w_out = _int(program.recurrent), _int(program.output_weight)
    theta, bias_out = int(program.threshold), _int(program.output_bias)
    hidden_cores = [c for c in program.cores if c.population == "hidden"]
    output_cores = [c for c in program.cores if c.population == "output"]
    tables = {c.index: u[c.neurons[0]:c.neurons[1]].T.copy() for c in hidden_cores}  # (source rows, own neurons)
    out_tables = {c.index: w_out[c.neurons[0]:c.neurons[1]].T.copy() for c in output_cores}
    low, high = -(2 ** (program.state_bits - 1)), 2 ** (program.state_bits - 1) - 1
    v = np.full((n, hidden), int(program.v_init), np.int64)
    ring = np.zeros((steps, n, hidden), np.int64)  # spikes sent K steps ago, by step within the window
    integrals = np.zeros((n, program.items, len(w_out)), np.int64)
    spikes_per_item = np.zeros((n, program.items), np.int64)
    saturations = 0
    for t in range(program.items):
        integral = np.zeros((n, len(w_out)), np.int64)
        v = np.clip(v, 0, theta)  # each window starts from the last one's remainder in [0, theta]
        for k in range(steps):
            delayed = ring[k]
            fired = np.zeros((n, hidden), np.int64)
            for core in hidden_cores:
                a, b = core.neurons
                total = v[:, a:b] + currents[:, t, a:b] + _product(delayed, tables[core.index])
                saturations += int(((total < low) | (total > high)).sum())
                if extremes is not None:
                    extremes[:] = [min(extremes[0], int(total.min())), max(extremes[1], int(total.max()))] \
                        if extremes else [int(total.min()), int(total.max())]
                total = np.clip(total, low, high)
                fired[:, a:b] = total >= theta
                v[:, a:b] = total - fired[:, a:b] * theta
            for core in output_cores:
                a, b = core.neurons
                integral[:, a:b] = np.clip(integral[:, a:b] + _product(fired, out_tables[core.index]) + bias_out[a:b],
                                           low, high)
            ring[k] = fired
            spikes_per_item[:, t] += fired.sum(axis=1)
        integrals[:, t] = integral
    return integrals, spikes_per_item, saturations


def _int(a: np.ndarray) -> np.ndarray:
    assert np.all(a == np.rint(a)), "chip weights must be integers"
    return np.rint(a).astype(np.int64)


def _product(spikes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Literal: for every source neuron that spiked, its row of weights added (int64)."""
    total = np.zeros((len(spikes), weights.shape[1]), np.int64)
    for source in np.flatnonzero(spikes.any(axis=0)):
        total += spikes[:, source:source + 1] * weights[source]
    return total
