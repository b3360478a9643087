"""Where every neuron lives, and who sends to whom: tiles of populations, packed into cores, placed on chips.

A ``Tile`` is a box of one population's neurons (channel, row and column ranges; a vector
population is ``(F, 1, 1)``) with the resources it needs (``snnconv.limits`` costs them).
A ``Core`` holds one or more tiles; after placement it knows its chip and its place on
the chip's mesh. ``Mapping`` is the whole result, kept on the graph as the fact
``"mapping"``; the backend, the chip model, the report and the checker in the tests read it.

Core ``k`` of a chip sits at ``places(mesh, cores)[k]``, a serpentine walk over the mesh
(row 0 left to right, row 1 right to left, ...), so consecutive cores are neighbours; a
target whose cores differ lists their values in this order.

``traffic`` derives from the core map which cores send to which, and how much: the
routes of every core, its output axons (``snnconv.limits``), the placement's cost and
the chip model's messages all come from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnconv import geometry
from snnconv.ir import Graph

__all__ = ["Box", "Core", "Mapping", "Resources", "Tile", "destinations", "places", "read_masks", "traffic"]

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # half-open channel, row, column ranges


@dataclass(frozen=True)
class Resources:
    neurons: int  # compartments
    axons: int
    synapses: int
    memory_bits: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.neurons + other.neurons, self.axons + other.axons, self.synapses + other.synapses,
                         self.memory_bits + other.memory_bits)


@dataclass(frozen=True)
class Tile:
    """A box of one population's neurons on one core.

    Where a neuron's inputs do not fit one core, its synapse maps are split by source
    channels into groups (``group`` of ``groups``; ``inputs``: per incoming synapse map,
    its source population and the source channel range this group reads). Group 0 holds the neurons themselves; the other groups hold
    one accumulating compartment per neuron whose current joins the neuron's.
    """

    population: str
    box: Box
    resources: Resources
    group: int = 0
    groups: int = 1
    inputs: tuple[tuple[str, int, int], ...] = ()

    @property
    def size(self) -> int:
        return math.prod(stop - start for start, stop in self.box)


@dataclass(frozen=True)
class Core:
    index: int
    tiles: tuple[Tile, ...]
    chip: int = -1
    position: tuple[int, int] = (-1, -1)  # row, column on the chip's mesh
    routes: tuple[int, ...] = ()  # the cores this core's spikes (and partial sums) are sent to, once placed

    @property
    def resources(self) -> Resources:
        total = Resources(0, 0, 0, 0)
        for tile in self.tiles:
            total = total + tile.resources
        return total

    @property
    def populations(self) -> list[str]:
        return list(dict.fromkeys(tile.population for tile in self.tiles))


@dataclass(frozen=True)
class Mapping:
    """All cores, the tile shape chosen per population, and (after placement) chips and traffic."""

    target: str
    cores: tuple[Core, ...]
    tile_shapes: dict[str, tuple[int, int, int]]
    chips: int = 0
    traffic: dict = field(default_factory=dict)  # messages per step within / across chips, hop-weighted, per chip


def places(mesh: tuple[int, int], cores: int) -> list[tuple[int, int]]:
    """The (row, column) of each core of a chip, core 0 first: a serpentine walk, so core k and k + 1 are neighbours."""
    rows, cols = mesh
    walk = [(r, c if r % 2 == 0 else cols - 1 - c) for r in range(rows) for c in range(cols)]
    return walk[:cores]


BLOCK = 1 << 22  # entries of one block of the traffic's dense matrices: 32 MB of float64


def traffic(graph: Graph, cores: tuple[Core, ...], rates: dict[str, np.ndarray]) -> np.ndarray:
    """Messages per step between cores: rows of (source core, destination core, messages), a core's own included.

    Every source neuron sends one message to each tile that reads it (once per synapse
    map), at its firing rate (``rates``: per population and channel, e.g. measured on
    calibration data; a population without one counts every neuron as firing each step,
    i.e. fan-out counts). A neuron reaching two tiles of one core counts twice, as those
    tiles count it twice among their input axons. Only the neurons themselves send spikes
    (input group 0); every other input group sends one partial sum per neuron per step to
    the neuron's core. The input layer's spikes come from the host: they are not counted.
    """
    held = _held(cores)
    blocks = []
    for target, maps in geometry.projections(graph).items():
        for index, p in enumerate(maps):
            senders = [(tile, core) for tile, core in held.get(p.source, []) if tile.group == 0]
            blocks.append(_projection_traffic(p, index, senders, held[target], rates.get(p.source)))
        blocks.append(_accumulation_traffic(held[target]))
    rows = [block for block in blocks if len(block)]
    return np.concatenate(rows) if rows else np.zeros((0, 3))


def weighted_traffic(graph: Graph, cores: tuple[Core, ...], weight) -> tuple[dict[str, np.ndarray], float]:
    """``traffic`` summed with a weight per (source core, destination core), as a linear function of the rates.

    ``weight(source cores, destination cores)`` gives each pair's weight (e.g. its hops).
    Returns, per source population, the weighted messages per unit rate of each of its
    channels, and the weighted partial-sum messages, which do not depend on rates: the
    total for ``rates`` is ``sum over sources of rates[source] @ per_channel[source]``
    plus that constant.
    """
    held = _held(cores)
    per_channel: dict[str, np.ndarray] = {}
    constant = 0.0
    for target, maps in geometry.projections(graph).items():
        for index, p in enumerate(maps):
            senders = [(tile, core) for tile, core in held.get(p.source, []) if tile.group == 0]
            if senders:
                vector = _projection_weights(p, index, senders, held[target], weight)
                per_channel[p.source] = per_channel.get(p.source, 0) + vector
        partial = _accumulation_traffic(held[target])
        if len(partial):
            constant += float((partial[:, 2] * weight(partial[:, 0].astype(int), partial[:, 1].astype(int))).sum())
    return per_channel, constant


def _held(cores: tuple[Core, ...]) -> dict[str, list[tuple[Tile, int]]]:
    held: dict[str, list[tuple[Tile, int]]] = {}
    for core in cores:
        for tile in core.tiles:
            held.setdefault(tile.population, []).append((tile, core.index))
    return held


def destinations(edges: np.ndarray, count: int) -> list[tuple[int, ...]]:
    """For each of ``count`` cores, the other cores it sends to (its routes), from ``traffic`` rows."""
    source, destination = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
    pairs = np.unique((source * count + destination)[source != destination])  # by source, then destination
    starts = np.searchsorted(pairs // count, np.arange(count + 1))
    return [tuple((pairs[starts[k]:starts[k + 1]] % count).tolist()) for k in range(count)]


def read_masks(p: geometry.Projection, index: int, tiles: list[Tile]) -> list[np.ndarray]:
    """Per axis (channels, rows, columns), which source positions each tile reads: (tiles, source size) booleans.

    ``index``: the synapse map's place in its target's list, which a tile's ``inputs`` follow;
    a tile of an input group reads only its group's source channels.
    """
    masks = []
    for k, axis in enumerate((p.channels, p.rows, p.cols)):
        rows = []
        for tile in tiles:
            lo, hi = tile.box[k]
            used = axis[lo:hi].sum(axis=0) > 0
            if k == 0 and tile.groups > 1:
                _, first, end = tile.inputs[index]
                used[:first] = False
                used[end:] = False
            rows.append(used)
        masks.append(np.stack(rows) if rows else np.zeros((0, axis.shape[1]), bool))
    return masks


def _projection_traffic(p: geometry.Projection, index: int, sources, targets, rate) -> np.ndarray:
    """For every (source tile, target tile): rate-weighted source neurons of the one that the other reads."""
    if not sources:  # the input layer (rate-coded input arrives from the host)
        return np.zeros((0, 3))
    channel_rate = np.ones(p.channels.shape[1]) if rate is None else np.asarray(rate, np.float64)
    has = _holds(p, sources)
    source_cores = np.array([core for _, core in sources])
    rows = []
    for block in _blocks(p, sources, targets):
        reads = _reads(p, index, block)
        overlap = (reads[0] * channel_rate) @ has[0].T
        for k in (1, 2):
            overlap *= reads[k] @ has[k].T
        t_index, s_index = np.nonzero(overlap)
        target_cores = np.array([core for _, core in block])[t_index]
        rows.append(np.stack([source_cores[s_index], target_cores, overlap[t_index, s_index]], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 3))


def _projection_weights(p: geometry.Projection, index: int, sources, targets, weight) -> np.ndarray:
    """Per source channel: the weighted messages one unit of its rate sends (``weighted_traffic``)."""
    has = _holds(p, sources)
    source_cores = np.array([core for _, core in sources])[None, :]
    total = np.zeros(p.channels.shape[1])
    for block in _blocks(p, sources, targets):
        reads = _reads(p, index, block)
        positions = (reads[1] @ has[1].T) * (reads[2] @ has[2].T)  # (target tile, source tile): rows x columns shared
        positions *= weight(source_cores, np.array([core for _, core in block])[:, None])
        total += (positions @ has[0] * reads[0]).sum(axis=0)
    return total


def _blocks(p: geometry.Projection, sources, targets):
    """``targets`` in blocks whose (target tile x source position or tile) matrices hold at most ``BLOCK`` entries
    (all at once, VGG-19's load held 12.8 GB here)."""
    width = max(p.channels.shape[1], p.rows.shape[1], p.cols.shape[1], len(sources))
    step = max(1, BLOCK // width)
    return [targets[start:start + step] for start in range(0, len(targets), step)]


def _reads(p: geometry.Projection, index: int, targets) -> list[np.ndarray]:
    """Per axis: which source positions each target tile reads (0/1 floats)."""
    return [mask.astype(np.float64) for mask in read_masks(p, index, [tile for tile, _ in targets])]


def _holds(p: geometry.Projection, sources) -> list[np.ndarray]:
    """Per axis: which source positions each source tile holds (0/1 floats)."""
    return [np.stack([_indicator(size, tile.box[k]) for tile, _ in sources]) for k, size in
            enumerate((p.channels.shape[1], p.rows.shape[1], p.cols.shape[1]))]


def _indicator(size: int, span: tuple[int, int]) -> np.ndarray:
    out = np.zeros(size)
    out[span[0]:span[1]] = 1
    return out


def _accumulation_traffic(tiles) -> np.ndarray:
    """Accumulating groups send each neuron's partial current to the neuron's own core every step."""
    partial = [(tile, core) for tile, core in tiles if tile.group > 0]
    if not partial:
        return np.zeros((0, 3))
    somas = [(tile, core) for tile, core in tiles if tile.group == 0]
    boxes = np.array([tile.box for tile, _ in partial])  # (tiles, axis, start/stop)
    soma_boxes = np.array([tile.box for tile, _ in somas])
    cores, soma_cores = np.array([core for _, core in partial]), np.array([core for _, core in somas])
    step = max(1, BLOCK // (3 * len(somas)))  # all at once, VGG-19's load peaked here at 17.3 GB
    rows = []
    for start in range(0, len(partial), step):
        block = boxes[start:start + step]
        low = np.maximum(block[:, None, :, 0], soma_boxes[None, :, :, 0])
        high = np.minimum(block[:, None, :, 1], soma_boxes[None, :, :, 1])
        shared = np.clip(high - low, 0, None).prod(axis=2)  # neurons of each partial tile in each soma tile
        p_index, s_index = np.nonzero(shared)
        rows.append(np.stack([cores[start:start + step][p_index], soma_cores[s_index], shared[p_index, s_index]],
                             axis=1).astype(np.float64))
    return np.concatenate(rows)