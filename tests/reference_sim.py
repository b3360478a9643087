"""The reference chip simulator: executes an artifact's per-core synapse tables literally, in int64.

Only for tests. Each core's table is built from its tiles: the rows are the source
neurons its input group reads, the columns its neurons, the entries the integer weights
of the synapses between them (measured by pushing one-hot spikes through the program's
layers, ``mapping_checker.connectivity``). A neuron's constant current (its bias) lives
with its group-0 tile. Every step, layer by layer in program order: each core adds, for
every source neuron that spiked, its row of weights to its neurons' currents; partial
currents of input groups join their neuron's (a leaky neuron's membrane decays first, as
Lava's bit-accurate Loihi model does); membranes saturate at the state bits;
spikes and resets follow (a graded neuron sends ``clip(v // theta, 0, P)`` spikes in one
step, its payload, and subtracts ``payload * theta``; a burst neuron fires
``clip(v // theta, 0, G)`` the same way; ``P`` and ``G`` are the layer's
``spikes_per_step``, or the model's default). Host-computed input currents come
from the program's host layers, as the chip model computes them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from mapping_checker import _box_indices, _population, connectivity, group_rows

from snnconv import ann
from snnconv.ir import IF, Graph, Input, Output, Pool


def _host_currents(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each population's input current from host-computed layers (and its own bias), as int64."""
    dtype = getattr(torch, graph.fact("dtype", "float32"))
    values = {graph.input.name: torch.from_numpy(x).to(dtype)}
    silent = {}
    for layer in graph.layers[1:]:
        if _population(layer):
            source = layer.inputs[0]
            if not isinstance(layer, Pool):
                silent[layer.name] = values[source] if source in values else None
            continue
        inputs = [values.get(src, torch.zeros((len(x), *graph[src].shape), dtype=dtype)) for src in layer.inputs]
        values[layer.name] = ann.apply_layer(layer, inputs)
    return {name: (v.reshape(len(x), -1).double().numpy().astype(np.int64) if v is not None else 0)
            for name, v in silent.items()}


class Reference:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.weights = {key: np.rint(w).astype(np.int64) for key, w in connectivity(graph, weights=True).items()}
        self.tables = self._tables()

    def _tables(self) -> dict[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
        """Per population: (source, source rows, target neurons, integer weight block) for every tile."""
        tables: dict[str, list] = {}
        for core in self.graph.fact("mapping").cores:
            for tile in core.tiles:
                neurons = _box_indices(self.graph[tile.population].shape, tile.box)
                for (src, dst), w in self.weights.items():
                    if dst != tile.population:
                        continue
                    rows = group_rows(self.graph, tile, src, w.shape[0])
                    block = w[np.ix_(rows, neurons)]
                    most = _payload(self.graph, src)
                    assert most * np.abs(block).sum(axis=0).max(initial=0) < 2**52, "sums beyond exact float64"
                    tables.setdefault(dst, []).append((src, rows, neurons, block.astype(np.float64)))
        return tables

    def run(self, x: np.ndarray, timesteps: int) -> dict:
        """Per step, every population's membrane after integration (before reset), and the output integral."""
        graph, batch = self.graph, len(x)
        constant = _host_currents(graph, x)
        state, spikes, counts, pooled, record = {}, {}, {}, {}, {}
        for layer in graph:
            if isinstance(layer, IF):
                v0 = np.rint(np.broadcast_to(np.asarray(layer.v_init, np.float64) * layer.threshold, layer.shape))
                state[layer.name] = np.tile(v0.reshape(1, -1).astype(np.int64), (batch, 1))
        integral = np.zeros((batch, math.prod(graph.output.shape)), np.int64)
        for _ in range(timesteps):
            for layer in graph:
                if not _population(layer) or isinstance(layer, Input):
                    continue
                if isinstance(layer, Pool):  # a max pool's synapses carry its input spikes one to one
                    counts[layer.name] = counts.get(layer.name, 0) + spikes[layer.inputs[0]]
                    window_max = _window_max(layer, counts[layer.name], graph.input_shapes(layer)[0], batch)
                    spikes[layer.name] = window_max - pooled.get(layer.name, 0)
                    pooled[layer.name] = window_max
                    continue
                current = self._current(layer, spikes, constant, batch)
                if isinstance(layer, IF):
                    v = _saturate(_decayed(layer, state[layer.name]) + current, layer.state_bits)
                    record.setdefault(layer.name, []).append(v.copy())
                    fired = fire(layer, v)
                    state[layer.name] = v - fired * int(layer.threshold) if layer.reset == "subtract" \
                        else v * (fired == 0)
                    spikes[layer.name] = fired
                elif isinstance(layer, Output):
                    integral = _saturate(integral + current, layer.state_bits)
                    record.setdefault(layer.name, []).append(integral.copy())
        return record

    def _current(self, layer, spikes, constant, batch) -> np.ndarray:
        total = np.zeros((batch, math.prod(layer.shape)), np.int64)
        if isinstance(constant.get(layer.name), np.ndarray):
            total += constant[layer.name]
        for src, rows, neurons, block in self.tables.get(layer.name, []):
            fired = spikes[src][:, rows] if src in spikes else np.zeros((batch, len(rows)), np.int64)
            total[:, neurons] += _exact_product(fired, block)
        return total


MOST = {"graded": 255, "burst": 4}  # the models' defaults, for a layer that gives none


def fire(layer: IF, v: np.ndarray) -> np.ndarray:
    """The spikes a population sends at membrane ``v`` (int64): 1 where ``v >= theta`` for binary models; for a
    graded or burst one the number of whole thresholds in ``v``, between 0 and its ``spikes_per_step``."""
    theta = int(layer.threshold)
    if layer.model in MOST:
        return np.clip(np.floor_divide(v, theta), 0, _most(layer)).astype(np.int64)
    assert layer.model in ("if", "lif"), layer.model
    assert layer.spikes_per_step is None, layer.spikes_per_step
    return (v >= theta).astype(np.int64)


def _most(layer: IF) -> int:
    return MOST[layer.model] if layer.spikes_per_step is None else layer.spikes_per_step


def _payload(graph: Graph, name: str) -> int:
    """The most a source sends per neuron and step (a max pool: what its source sends; the input: 1)."""
    layer = graph[name]
    while isinstance(layer, Pool) and layer.mode == "max":
        layer = graph[layer.inputs[0]]
    return _most(layer) if isinstance(layer, IF) and layer.model in MOST else 1


def _exact_product(spikes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``spikes @ weights`` in int64, computed by float64 BLAS: exact, spikes being 0..P and every column's
    absolute sum times P below 2^52 (checked when the table is built)."""
    return np.rint(spikes.astype(np.float64) @ weights).astype(np.int64)


def _decayed(layer: IF, v: np.ndarray) -> np.ndarray:
    """A leaky neuron's membrane after one step's decay, as Lava's bit-accurate Loihi model computes it:
    ``sign(v * (4096 - decay)) * (|v * (4096 - decay)| >> 12)``; an IF neuron's unchanged."""
    if layer.model in ("if", *MOST):
        return v
    assert layer.model == "lif", layer.model
    product = v * (4096 - layer.decay)
    return np.sign(product) * np.right_shift(np.abs(product), 12)


def _saturate(v: np.ndarray, bits: int | None) -> np.ndarray:
    if bits is None:
        return v
    return np.clip(v, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _window_max(pool: Pool, counts: np.ndarray, in_shape, batch: int) -> np.ndarray:
    """Literal max over each window of the cumulative counts (padding never wins: counts are >= 0)."""
    c, h, w = in_shape
    grid = counts.reshape(batch, c, h, w) if counts.shape[1] == c * h * w else None
    assert grid is not None
    out_c, out_h, out_w = pool.shape
    result = np.zeros((batch, out_c, out_h, out_w), np.int64)
    top, left = pool.pads[0], pool.pads[1]
    for oy in range(out_h):
        for ox in range(out_w):
            ys = [oy * pool.stride[0] - top + j * pool.dilation[0] for j in range(pool.kernel[0])]
            xs = [ox * pool.stride[1] - left + j * pool.dilation[1] for j in range(pool.kernel[1])]
            ys = [y for y in ys if 0 <= y < h]
            xs = [x for x in xs if 0 <= x < w]
            result[:, :, oy, ox] = grid[:, :, ys][:, :, :, xs].max(axis=(2, 3))
    return result.reshape(batch, -1)
