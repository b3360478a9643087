"""Core limits: what each core uses and holds, and every limit a core breaks, with the reason.

The one place where a core's capacity and its use are computed. Partition sizes tiles and
packs cores with it, place seats cores on a chip's cores with it, the report shows the
utilization it computes, and ``check_mapping`` refuses an artifact whose core map breaks
it. Capacity comes from the target (``snnconv.targets.target.Core``); where the cores of
a chip differ (a tuple per field, as Speck's memories), core ``k`` of a chip is the one at
``mapping.places(...)[k]``, and every core is held to its own capacity.

What a core uses (``Use``), each against its limit (``Capacity``):

- compartments: ``neurons * compartments per neuron`` of its tiles (one per neuron of an
  accumulating input group);
- input axons: distinct source neurons feeding each tile, summed over its tiles and
  synapse maps;
- output axons: for every tile that reads the core's neurons (on any core, itself
  included), the core's neurons it reads, summed over the synapse maps; plus one per
  neuron of each accumulating tile (its partial sum to the neuron's core). Each input
  axon of a tile thus has one output axon at its source (nengo-loihi ``block.py``:
  out-axons are the axons of every outgoing connection);
- synapse memory bits, as the target costs synapses: ``per_synapse``: every axon's row
  holds ``n`` synapses in ``ceil((n * weight_bits + row_overhead_bits) / word_bits)``
  words; ``shared_kernel``: the weights of the tile's output channels, stored once;
- populations: layers with neurons on the core (``core.populations_per_core``);
- destination cores: the other cores its spikes and partial sums go to, its routes
  (``core.fan_out``; Speck's cores send to at most two).

Every broken limit is one reason of one shape, ``"input axons (4,608) exceeded max
(4,096)"``; callers put the core or layer in front (nengo-loihi ``validate.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from snnconv import geometry
from snnconv.errors import BadArtifactError
from snnconv.ir import IF, Affine, Graph, Layer, Pool
from snnconv.mapping import Box, Core, Mapping, Resources, Tile, destinations, places, read_masks, traffic
from snnconv.targets.target import Target

__all__ = ["Capacity", "Limits", "OutputAxons", "Use", "check_mapping", "compartments", "core_uses", "fits",
           "kernel_entries", "listing", "restricted", "utilization", "violations"]


@dataclass(frozen=True)
class Use:
    """What a core (or a tile of one) takes of each limited resource."""

    neurons: int = 0  # compartments
    input_axons: int = 0
    output_axons: int = 0
    memory_bits: int = 0
    populations: int = 0
    destinations: int = 0  # other cores sent to

    @classmethod
    def of(cls, resources: Resources, output_axons: int = 0, populations: int = 1, sent_to: int = 0) -> Use:
        return cls(resources.neurons, resources.axons, output_axons, resources.memory_bits, populations, sent_to)

    def plus(self, tile: Use, populations: int) -> Use:
        """This core's use with a tile's added (counts add up), the core then holding ``populations`` layers."""
        return Use(self.neurons + tile.neurons, self.input_axons + tile.input_axons,
                   self.output_axons + tile.output_axons, self.memory_bits + tile.memory_bits, populations,
                   self.destinations)


@dataclass(frozen=True)
class Capacity:
    """What one core holds; ``inf`` where the chip sets no limit."""

    neurons: float
    input_axons: float
    output_axons: float
    memory_bits: float
    populations: float
    destinations: float


# Each limited resource: the field of Use and Capacity, and its name in a reason.
RESOURCES = (("neurons", "compartments"), ("input_axons", "input axons"), ("output_axons", "output axons"),
             ("memory_bits", "synapse memory bits"), ("populations", "populations"),
             ("destinations", "destination cores"))


def fits(use: Use, capacity: Capacity) -> bool:
    """No limit broken (``violations`` empty); spelled out, as packing asks it a million times."""
    return (use.neurons <= capacity.neurons and use.input_axons <= capacity.input_axons
            and use.output_axons <= capacity.output_axons and use.memory_bits <= capacity.memory_bits
            and use.populations <= capacity.populations and use.destinations <= capacity.destinations)


def violations(use: Use, capacity: Capacity) -> list[str]:
    """Every limit ``use`` breaks, as ``"what (used) exceeded max (limit)"``; empty if it fits."""
    return [f"{what} ({getattr(use, name):,}) exceeded max ({getattr(capacity, name):,})"
            for name, what in RESOURCES if getattr(use, name) > getattr(capacity, name)]


def utilization(use: Use, capacity: Capacity) -> dict[str, float]:
    """Per resource, the fraction of the core's capacity used (0 where the chip sets no limit)."""
    return {name: 0.0 if getattr(capacity, name) == math.inf else getattr(use, name) / getattr(capacity, name)
            for name, _ in RESOURCES}


@dataclass(frozen=True)
class Limits:
    """A target's cores: the capacity of each core of a chip, where it sits, and how synapses are costed."""

    target: str
    cores: tuple[Capacity, ...]  # core k of a chip
    places: tuple[tuple[int, int], ...]  # its (row, column) on the chip's mesh
    accumulate: bool  # a neuron's input may be summed across cores
    weight_bits: int
    synapse_cost: str
    row_overhead_bits: int
    word_bits: int

    @classmethod
    def of(cls, target: Target) -> Limits:
        core, chip = target.core, target.chip
        capacities = tuple(Capacity(_of_core(core.neurons, k), core.input_axons, core.output_axons,
                                    _of_core(core.synapse_memory_bits, k), core.populations_per_core, core.fan_out)
                           for k in range(chip.cores))
        return cls(target.name, capacities, tuple(places(chip.mesh, chip.cores)), core.accumulate,
                   target.precision.weight_bits or 32, core.synapse_cost, core.row_overhead_bits, core.word_bits)

    @functools.cached_property
    def uniform(self) -> bool:
        """All cores of a chip are alike: any core can take any other's contents."""
        return len(set(self.cores)) == 1

    @functools.cached_property
    def kinds(self) -> list[Capacity]:
        """The distinct capacities, the one that most cores can hold first (the smallest, where they nest).

        Partition sizes tiles against each kind and packs a core for one kind; place then
        seats it on any core of the chip that holds what it uses.
        """
        distinct = list(dict.fromkeys(self.cores))
        return sorted(distinct, key=lambda kind: -sum(_holds(other, kind) for other in self.cores))

    def span(self, resource: str) -> tuple[float, float]:
        """The smallest and the largest capacity of ``resource`` (a field of ``Capacity``) over a chip's cores."""
        values = [getattr(capacity, resource) for capacity in self.cores]
        return min(values), max(values)

    def capacity(self, core: Core) -> Capacity:
        """The capacity of ``core``: that of the core of its chip at its place (any core's, where all are alike)."""
        if self.uniform:
            return self.cores[0]
        return self.cores[self.places.index(core.position)]

    def tile_resources(self, box: Box, projections: list[geometry.Projection], compartments_per_neuron: int,
                       kernels: dict[str, int]) -> Resources:
        """What a box of one population's neurons needs (see the module docstring); ``kernels``: ``kernel_entries``."""
        (c0, c1), (r0, r1), (x0, x1) = box
        neurons = (c1 - c0) * (r1 - r0) * (x1 - x0)
        axons = synapses = memory = 0
        for p in projections:
            blocks = (p.channels[c0:c1], p.rows[r0:r1], p.cols[x0:x1])
            per_axon = [block.sum(axis=0) for block in blocks]
            used = [counts[counts > 0] for counts in per_axon]
            axons += math.prod(len(u) for u in used)
            synapses += math.prod(int(counts.sum()) for counts in per_axon)
            if self.synapse_cost == "per_synapse":
                memory += _row_bits(used, self.weight_bits, self.row_overhead_bits, self.word_bits)
            else:
                memory += int((p.channels[c0:c1].any(axis=1)).sum()) * kernels[p.weighted] * self.weight_bits
        return Resources(neurons * compartments_per_neuron, axons, synapses, memory)


def _of_core(value, k: int):
    return value[k] if isinstance(value, tuple) else value


def _holds(big: Capacity, small: Capacity) -> bool:
    return all(getattr(big, name) >= getattr(small, name) for name, _ in RESOURCES)


def _row_bits(used: list[np.ndarray], weight_bits: int, overhead: int, word: int) -> int:
    """Sum over axons of ``ceil((n * weight_bits + overhead) / word) * word``; n per axon is an outer product.

    Past a million axons (tiles far too big for any core, met while searching) the
    rounding is bounded instead of summed: ``n * weight_bits + overhead + word - 1``.
    """
    axons = math.prod(len(u) for u in used)
    if axons > 1_000_000:
        return math.prod(int(u.sum()) for u in used) * weight_bits + axons * (overhead + max(word, 1) - 1)
    counts = used[0]
    for axis in used[1:]:
        counts = np.multiply.outer(counts, axis).reshape(-1)
    if word <= 1:
        return int(counts.sum()) * weight_bits + counts.size * overhead
    return int((np.ceil((counts * weight_bits + overhead) / word) * word).sum())


def kernel_entries(layer: Layer) -> int:
    """Weights per output channel, as a chip sharing kernels stores them (a max pool stores none)."""
    if isinstance(layer, Pool):
        return 0
    if isinstance(layer, Affine):
        return 1
    return int(np.prod(layer.weight.shape[1:]))


def compartments(layer: Layer, group: int) -> int:
    """Compartments per neuron of a tile: the population's own in group 0, one partial sum in any other group."""
    return layer.compartments if isinstance(layer, IF) and group == 0 else 1


class OutputAxons:
    """The output axons of boxes of one population's neurons, from the tiles that read them (already tiled).

    Per neuron, the tiles that read it, once per synapse map: ``sum_t a_c[t] x a_h[t] x a_w[t]``
    over the reading tiles' masks (``mapping.read_masks``), tiles with the same rows and
    columns summed first. A box's count is the sum over its neurons, from a summed-area
    table; ``largest`` is the fullest box of a grid of tiles, which is where a tile sits
    matters: a stride-2 reader reads alternate rows twice as often.
    """

    def __init__(self, counts: np.ndarray):
        self.shape = counts.shape
        self.table = np.pad(counts.astype(np.int64).cumsum(0).cumsum(1).cumsum(2), ((1, 0), (1, 0), (1, 0)))

    @classmethod
    def of(cls, shape: tuple[int, int, int], readers: list[tuple[geometry.Projection, int, list[Tile]]]) -> OutputAxons:
        """``readers``: per outgoing synapse map, its index in its target's list and the target's tiles."""
        counts = np.zeros(shape)
        for p, index, tiles in readers:
            channels, rows, cols = read_masks(p, index, tiles)
            spatial, which = np.unique(np.concatenate([rows, cols], axis=1), axis=0, return_inverse=True)
            per_spatial = np.zeros((len(spatial), shape[0]))
            np.add.at(per_spatial, which.reshape(-1), channels)
            outer = spatial[:, :shape[1], None] & spatial[:, None, shape[1]:]
            counts += (per_spatial.T @ outer.reshape(len(spatial), -1)).reshape(shape)  # exact: sums of 0/1 below 2^53
        return cls(np.rint(counts))

    @classmethod
    def partial_sums(cls, shape: tuple[int, int, int]) -> OutputAxons:
        """An accumulating input group's: one partial sum per neuron, to the neuron's core."""
        return cls(np.ones(shape))

    def __call__(self, box: Box) -> int:
        return int(self._sums([np.array(span) for span in box]).item())

    def largest(self, tile: tuple[int, int, int]) -> int:
        """The most output axons of a tile in the grid of ``tile``-shaped boxes (the last ones cut short)."""
        edges = [np.minimum(np.arange(0, size + step, step), size) for size, step in zip(self.shape, tile)]
        return int(self._sums(edges).max())

    def _sums(self, edges: list[np.ndarray]) -> np.ndarray:
        """Sums over the boxes between consecutive ``edges`` along each axis."""
        corners = self.table[np.ix_(*edges)]
        return np.diff(np.diff(np.diff(corners, axis=0), axis=1), axis=2)


def core_uses(cores: tuple[Core, ...], edges: np.ndarray) -> list[Use]:
    """Each core's use; ``edges``: ``mapping.traffic`` of these cores at fan-out counts (no rates)."""
    sent = np.bincount(edges[:, 0].astype(int), weights=edges[:, 2], minlength=len(cores))
    routes = destinations(edges, len(cores))
    return [Use.of(core.resources, round(float(sent[core.index])), len(core.populations), len(routes[core.index]))
            for core in cores]


def check_mapping(graph: Graph, mapping: Mapping, target: Target, where: str) -> None:
    """Refuse a core map that ``target``'s chips cannot run, naming the core and every limit it breaks.

    For a loaded artifact, after ``artifact.read`` (which checked that every neuron of every
    population is on exactly one core, once per input group) and with the target it names:

    - every core at a place of a core on its chip, one core per place, on a chip the map counts;
    - every tile's resources as the program's synapse maps give them, the map's own figures
      being only a record;
    - every core's routes the cores its neurons and partial sums reach;
    - every core within its own capacity (``violations``).

    Each is a ``BadArtifactError`` whose text starts with ``where``.
    """
    limits = Limits.of(target)
    problems = _seating(mapping, limits) + _recorded_resources(graph, mapping, limits)
    if not problems:
        edges = traffic(graph, mapping.cores, {})
        problems = _routes(mapping, edges) + [
            f"core {core.index}: {reason}"
            for core, use in zip(mapping.cores, core_uses(mapping.cores, edges))
            for reason in violations(use, limits.capacity(core))]
    if problems:
        raise BadArtifactError(f"{where}: core table: {listing(problems)}; the file was altered or compiled for "
                               f"another target: compile the model again for {target.name}")


def listing(problems: list[str], most: int = 5) -> str:
    """The first ``most`` problems on one line, and how many more there are."""
    more = f"; and {len(problems) - most:,} more" if len(problems) > most else ""
    return "; ".join(problems[:most]) + more


def _seating(mapping: Mapping, limits: Limits) -> list[str]:
    """Cores at places of the chip's cores, one per place, on chips 0 .. chips - 1."""
    problems, seen = [], {}
    if mapping.target != limits.target:
        problems.append(f"the map is for {mapping.target!r}, not {limits.target!r}")
    for core in mapping.cores:
        seat = (core.chip, core.position)
        if not 0 <= core.chip < mapping.chips or core.position not in limits.places:
            problems.append(f"core {core.index}: chip {core.chip}, place {list(core.position)} is no core of the "
                            f"{mapping.chips} chip(s) of {limits.target}")
        elif seat in seen:
            problems.append(f"core {core.index}: chip {core.chip}, place {list(core.position)} is core "
                            f"{seen[seat]}'s too")
        seen.setdefault(seat, core.index)
    return problems


def _recorded_resources(graph: Graph, mapping: Mapping, limits: Limits) -> list[str]:
    """Tiles whose recorded resources differ from what the program's synapse maps give."""
    incoming = geometry.projections(graph)
    kernels = {p.weighted: kernel_entries(graph[p.weighted]) for maps in incoming.values() for p in maps}
    problems = []
    for core in mapping.cores:
        for tile in core.tiles:
            maps = [restricted(p, *tile.inputs[index][1:]) if tile.groups > 1 else p
                    for index, p in enumerate(incoming[tile.population])]
            actual = limits.tile_resources(tile.box, maps, compartments(graph[tile.population], tile.group), kernels)
            if actual != tile.resources:
                problems.append(f"core {core.index}: a tile of {tile.population!r} records {_short(tile.resources)} "
                                f"but the program gives {_short(actual)}")
    return problems


def restricted(p: geometry.Projection, first: int, end: int) -> geometry.Projection:
    """The synapse map from source channels ``first`` to ``end`` only (one input group's)."""
    channels = np.zeros_like(p.channels)
    channels[:, first:end] = p.channels[:, first:end]
    return dataclasses.replace(p, channels=channels)


def _short(resources: Resources) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in dataclasses.asdict(resources).items())


def _routes(mapping: Mapping, edges: np.ndarray) -> list[str]:
    reached = destinations(edges, len(mapping.cores))
    return [f"core {core.index}: routes {list(core.routes)} but its neurons reach cores {list(reached[core.index])}"
            for core in mapping.cores if tuple(core.routes) != reached[core.index]]
