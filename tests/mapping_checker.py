"""An independent checker of a partition: every core within every limit, every synapse placed once.

It shares no code with the partitioner's resource model (``snnconv.geometry``,
``snnconv.limits``, ``snnconv.mapping.traffic``): connectivity is measured by pushing
one-hot spikes of each source population through the graph's own layers with every
weight set to one, so entry ``[s, n]`` counts the paths from source neuron ``s`` to
neuron ``n``; a chip's table holds one synapse (the paths' weights summed) where that is
nonzero (a 3x3 conv after a 2x upsample reaches a source through up to four taps). Then, per core, it counts distinct input axons (the union over the core's
tiles), synapses, synapse memory by the target's rule, compartments, populations, output
axons (per destination core, the distinct neurons of the core that reach it, and one per
partial sum) and destination cores, each against the capacity of that core itself: core
``k`` of a chip is the one at the ``k``-th place of a serpentine walk over the mesh (row 0
left to right, row 1 right to left, ...), the convention of ``snnconv.mapping``. It
checks that the tiles of each population cover each neuron once per input group and that
the groups split the sources so that every synapse lands on exactly one core.
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


def group_rows(graph: Graph, tile, source: str, count: int) -> np.ndarray:
    """The neurons of ``source`` (of ``count``) that ``tile``'s input group reads: all, or its channel range."""
    for name, lo, hi in tile.inputs:
        if name == source:
            return _source_channel_rows(graph, source, lo, hi)
    return np.arange(count)


def _source_channel_rows(graph: Graph, source: str, lo: int, hi: int) -> np.ndarray:
    shape = graph[source].shape
    full = tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)
    return np.arange(math.prod(full)).reshape(full)[lo:hi].reshape(-1)


def check(graph: Graph, target) -> dict:
    """Raise AssertionError naming the first broken rule; return totals for the caller to compare."""
    mapping = graph.fact("mapping")
    links = connectivity(graph)
    sent = _sent(graph, links)
    seats = {}
    core, precision = target.core, target.precision
    weight_bits = precision.weight_bits or 32
    placed: dict[tuple[str, str], float] = {}
    per_core: dict[int, dict[str, int]] = {}
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
                rows = group_rows(graph, tile, src, counts.shape[0])
                block = counts[np.ix_(rows, neurons)] > 0  # one synapse per joined pair
                per_axon = block.sum(axis=1)
                used = rows[per_axon > 0]
                axons.setdefault(src, set()).update(used.tolist())
                synapses += int(block.sum())
                placed[src, dst] = placed.get((src, dst), 0) + float(block.sum())
                memory += _memory(per_axon[per_axon > 0], block, weight_bits, core)
        per_core[c.index] = {"synapses": synapses, "memory_bits": memory}
        k = _core_of_chip(c, target)
        assert seats.setdefault((c.chip, k), c.index) == c.index, f"core {c.index}: core {k} of chip {c.chip} twice"
        capacity_neurons, capacity_memory = _capacity(core.neurons, k), _capacity(core.synapse_memory_bits, k)
        n_axons = sum(len(a) for a in axons.values())
        out_axons = sum(sent.get(c.index, {}).values())
        destinations = len(set(sent.get(c.index, {})) - {c.index})
        assert compartments <= capacity_neurons, f"core {c.index}: {compartments} compartments > {capacity_neurons}"
        assert n_axons <= core.input_axons, f"core {c.index}: {n_axons} input axons > {core.input_axons}"
        assert out_axons <= core.output_axons, f"core {c.index}: {out_axons} output axons > {core.output_axons}"
        assert memory <= capacity_memory, f"core {c.index}: {memory} synapse memory bits > {capacity_memory}"
        assert len(c.populations) <= core.populations_per_core, f"core {c.index}: {len(c.populations)} populations"
        assert destinations <= core.fan_out, f"core {c.index}: sends to {destinations} cores > {core.fan_out}"
    for (population, group), counts in covered.items():
        assert np.all(counts == 1), f"{population} group {group}: neurons covered {sorted(set(counts.tolist()))} times"
    for layer in graph:
        if _population(layer) and not isinstance(layer, Input):
            assert (layer.name, 0) in covered, f"{layer.name}: no tile"
    for key, counts in links.items():
        joined = np.count_nonzero(counts)
        assert placed.get(key, 0) == joined, f"{key}: {placed.get(key, 0)} synapses placed of {joined}"
    return {"synapses": int(sum(np.count_nonzero(counts) for counts in links.values())), "cores": len(mapping.cores),
            "per_core": per_core}


def _core_of_chip(c, target) -> int:
    """Which core of its chip ``c`` is, from its place on the mesh (the serpentine walk)."""
    rows, cols = target.chip.mesh
    walk = [(r, x if r % 2 == 0 else cols - 1 - x) for r in range(rows) for x in range(cols)][:target.chip.cores]
    assert tuple(c.position) in walk, f"core {c.index}: place {c.position} holds no core of a {rows} x {cols} mesh"
    return walk.index(tuple(c.position))


def _capacity(value, k: int) -> float:
    return value[k] if isinstance(value, tuple) else value


def _memory(per_axon: np.ndarray, block: np.ndarray, weight_bits: int, core) -> int:
    if core.synapse_cost == "per_synapse":
        word = max(core.word_bits, 1)
        return int((np.ceil((per_axon * weight_bits + core.row_overhead_bits) / word) * word).sum())
    return 0  # shared kernels: checked by the partitioner's own rule; the checker does not model kernel layout


def routes(graph: Graph) -> dict[int, set[int]]:
    """Each core's destination cores, from the one-hot connectivity (see ``_sent``)."""
    return {core: set(reached) - {core} for core, reached in _sent(graph, connectivity(graph)).items()
            if set(reached) - {core}}


def _sent(graph: Graph, links: dict) -> dict[int, dict[int, int]]:
    """Per core a, per core b that a sends to (a itself included): the distinct neurons of a whose spikes reach
    a tile on b (through that tile's input range), plus the partial sums of a's accumulating tiles whose neuron
    (in a group-0 tile) is on b."""
    mapping = graph.fact("mapping")
    holders: dict[str, list[tuple[np.ndarray, int]]] = {}
    for c in mapping.cores:
        for tile in c.tiles:
            if tile.group == 0:
                holders.setdefault(tile.population, []).append((_box_indices(graph[tile.population].shape, tile.box),
                                                                c.index))
    reached: dict[tuple[int, int, str], set[int]] = {}
    partial: dict[tuple[int, int], int] = {}
    for c in mapping.cores:
        for tile in c.tiles:
            neurons = _box_indices(graph[tile.population].shape, tile.box)
            if tile.group > 0:
                for held, soma_core in holders[tile.population]:
                    shared = np.intersect1d(held, neurons).size
                    if shared:
                        partial[c.index, soma_core] = partial.get((c.index, soma_core), 0) + shared
            for (src, dst), counts in links.items():
                if dst != tile.population or src not in holders:
                    continue
                rows = group_rows(graph, tile, src, counts.shape[0])
                read = rows[counts[np.ix_(rows, neurons)].sum(axis=1) > 0]
                for held, source_core in holders[src]:
                    reached.setdefault((source_core, c.index, src), set()).update(np.intersect1d(held, read).tolist())
    found: dict[int, dict[int, int]] = {}
    for (a, b, _), neurons in reached.items():
        if neurons:
            found.setdefault(a, {})[b] = found.get(a, {}).get(b, 0) + len(neurons)
    for (a, b), count in partial.items():
        found.setdefault(a, {})[b] = found.get(a, {}).get(b, 0) + count
    return found
