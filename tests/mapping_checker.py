"""An independent checker of a partition: every core within every limit, every synapse placed once.

It shares no code with the partitioner's resource model (``snnconv.geometry``,
``snnconv.mapping.tile_resources``): connectivity is measured by pushing one-hot spikes
of each source population through the graph's own layers with every weight set to one,
so entry ``[s, n]`` counts the synapses from source neuron ``s`` to neuron ``n``. Then,
per core, it counts distinct input axons (the union over the core's tiles), synapses,
synapse memory by the target's rule, compartments and populations, and checks that the
tiles of each population cover each neuron once per input group and that the groups
split the sources so that every synapse lands on exactly one core.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from snnconv import ann
from snnconv.ir import IF, Affine, Conv, Dense, Graph, Input, Layer, Output, Pool

CHUNK = 2048  # one-hot sources pushed at once; float32 is exact: an entry sums a few weights below 2^24


def _population(layer: Layer) -> bool:
    return isinstance(layer, (IF, Output)) or isinstance(layer, Pool) and layer.mode == "max"


def _structural(layer: Layer, weights: bool = False) -> Layer:
    """The layer with every weight one (or its own, with ``weights``) and no bias: outputs count paths."""
    if isinstance(layer, (Conv, Dense)):
        weight = layer.weight if weights else np.ones_like(layer.weight)
        return dataclasses.replace(layer, weight=weight, bias=np.zeros_like(layer.bias))
    if isinstance(layer, Affine):
        scale = layer.scale if weights else np.ones_like(layer.scale)
        return dataclasses.replace(layer, scale=scale, shift=np.zeros_like(layer.shift))
    if isinstance(layer, Pool) and layer.mode == "max":
        return dataclasses.replace(layer, mode="sum")
    return layer


def connectivity(graph: Graph, weights: bool = False) -> dict[tuple[str, str], np.ndarray]:
    """(source, target population) -> synapse counts (or, with ``weights``, summed weights) (sources, targets)."""
    rate_input = graph.fact("encoding", "current") == "rate"
    sources = [layer for layer in graph if _population(layer) or isinstance(layer, Input) and rate_input]
    result = {}
    for source in sources:
        size = math.prod(source.shape)
        for start in range(0, size, CHUNK):
            block = _push(graph, source, start, min(size, start + CHUNK), weights)
            for target, counts in block.items():
                result.setdefault((source.name, target), []).append(counts)
    return {key: np.concatenate(parts) for key, parts in result.items()}


def _push(graph: Graph, source: Layer, start: int, stop: int, weights: bool = False) -> dict[str, np.ndarray]:
    eye = torch.zeros((stop - start, math.prod(source.shape)), dtype=torch.float32)
    eye[torch.arange(stop - start), torch.arange(start, stop)] = 1
    values = {source.name: eye.reshape(stop - start, *source.shape)}
    reached = {}
    after = False
    for layer in graph:
        if layer is source:
            after = True
            continue
        if not after or not any(src in values for src in layer.inputs):
            continue
        inputs = [values.get(src, torch.zeros((stop - start, *graph[src].shape), dtype=torch.float32))
                  for src in layer.inputs]
        if _population(layer):
            current = ann.apply_layer(_structural(layer, weights), inputs) if isinstance(layer, Pool) else inputs[0]
            reached[layer.name] = current.reshape(stop - start, -1).numpy()
            continue
        values[layer.name] = ann.apply_layer(_structural(layer, weights), inputs)
    return reached


def _box_indices(shape: tuple[int, ...], box) -> np.ndarray:
    full = tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)
    grid = np.arange(math.prod(full)).reshape(full)
    (c0, c1), (r0, r1), (x0, x1) = box
    return grid[c0:c1, r0:r1, x0:x1].reshape(-1)


def _source_channel_rows(graph: Graph, source: str, lo: int, hi: int) -> np.ndarray:
    shape = graph[source].shape
    full = tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)
    return np.arange(math.prod(full)).reshape(full)[lo:hi].reshape(-1)


def check(graph: Graph, target) -> dict:
    """Raise AssertionError naming the first broken rule; return totals for the caller to compare."""
    mapping = graph.fact("mapping")
    links = connectivity(graph)
    core, precision = target.core, target.precision
    weight_bits = precision.weight_bits or 32
    placed: dict[tuple[str, str], float] = {}
    covered: dict[tuple[str, int], np.ndarray] = {}
    for c in mapping.cores:
        axons: dict[str, set[int]] = {}
        synapses = memory = compartments = 0
        for tile in c.tiles:
            neurons = _box_indices(graph[tile.population].shape, tile.box)
            key = (tile.population, tile.group)
            covered.setdefault(key, np.zeros(math.prod(graph[tile.population].shape), int))[neurons] += 1
            layer = graph[tile.population]
            compartments += len(neurons) * (layer.compartments if isinstance(layer, IF) and tile.group == 0 else 1)
            for (src, dst), counts in links.items():
                if dst != tile.population:
                    continue
                rows = np.arange(counts.shape[0])
                for name, lo, hi in tile.inputs:
                    if name == src:
                        rows = _source_channel_rows(graph, src, lo, hi)
                block = counts[np.ix_(rows, neurons)]
                per_axon = block.sum(axis=1)
                used = rows[per_axon > 0]
                axons.setdefault(src, set()).update(used.tolist())
                synapses += int(block.sum())
                placed[src, dst] = placed.get((src, dst), 0) + float(block.sum())
                memory += _memory(per_axon[per_axon > 0], block, weight_bits, core)
        capacity_neurons = _capacity(core.neurons, c.index, target)
        capacity_memory = _capacity(core.synapse_memory_bits, c.index, target)
        n_axons = sum(len(a) for a in axons.values())
        assert compartments <= capacity_neurons, f"core {c.index}: {compartments} compartments > {capacity_neurons}"
        assert n_axons <= core.input_axons, f"core {c.index}: {n_axons} input axons > {core.input_axons}"
        assert memory <= capacity_memory, f"core {c.index}: {memory} synapse memory bits > {capacity_memory}"
        assert len(c.populations) <= core.populations_per_core, f"core {c.index}: {len(c.populations)} populations"
    for (population, group), counts in covered.items():
        assert np.all(counts == 1), f"{population} group {group}: neurons covered {sorted(set(counts.tolist()))} times"
    for layer in graph:
        if _population(layer) and not isinstance(layer, Input):
            assert (layer.name, 0) in covered, f"{layer.name}: no tile"
    for key, counts in links.items():
        assert placed.get(key, 0) == counts.sum(), f"{key}: {placed.get(key, 0)} synapses placed of {counts.sum()}"
    return {"synapses": int(sum(counts.sum() for counts in links.values())), "cores": len(mapping.cores)}


def _capacity(value, index: int, target) -> float:
    return value[index % target.chip.cores] if isinstance(value, tuple) else value


def _memory(per_axon: np.ndarray, block: np.ndarray, weight_bits: int, core) -> int:
    if core.synapse_cost == "per_synapse":
        word = max(core.word_bits, 1)
        return int((np.ceil((per_axon * weight_bits + core.row_overhead_bits) / word) * word).sum())
    return 0  # shared kernels: checked by the partitioner's own rule; the checker does not model kernel layout


def routes(graph: Graph) -> dict[int, set[int]]:
    """Each core's destination cores, from the one-hot connectivity: a neuron of a group-0 tile on core a
    with a synapse into a tile on core b (through that tile's input range), and a partial-sum tile on a
    of a neuron whose group-0 tile is on b."""
    mapping = graph.fact("mapping")
    links = connectivity(graph)
    home: dict[tuple[str, tuple], int] = {}
    holders: dict[str, list[tuple[np.ndarray, int]]] = {}
    for c in mapping.cores:
        for tile in c.tiles:
            if tile.group == 0:
                home[tile.population, tile.box] = c.index
                holders.setdefault(tile.population, []).append((_box_indices(graph[tile.population].shape, tile.box),
                                                                c.index))
    found: dict[int, set[int]] = {}
    for c in mapping.cores:
        for tile in c.tiles:
            if tile.group > 0 and home[tile.population, tile.box] != c.index:
                found.setdefault(c.index, set()).add(home[tile.population, tile.box])
            neurons = _box_indices(graph[tile.population].shape, tile.box)
            for (src, dst), counts in links.items():
                if dst != tile.population or src not in holders:
                    continue
                rows = np.arange(counts.shape[0])
                for name, lo, hi in tile.inputs:
                    if name == src:
                        rows = _source_channel_rows(graph, src, lo, hi)
                reached = rows[counts[np.ix_(rows, neurons)].sum(axis=1) > 0]
                for held, source_core in holders[src]:
                    if source_core != c.index and np.intersect1d(held, reached).size:
                        found.setdefault(source_core, set()).add(c.index)
    return found
