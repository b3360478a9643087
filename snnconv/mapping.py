"""Where every neuron lives: tiles of populations, packed into cores, placed on chips.

A ``Tile`` is a box of one population's neurons (channel, row and column ranges; a vector
population is ``(F, 1, 1)``) with the resources it needs. A ``Core`` holds one or more
tiles; after placement it knows its chip and mesh position. ``Mapping`` is the whole
result, kept on the graph as the fact ``"mapping"``; the backend, the report and the
checker in the tests read it.

Resources of a tile, from its incoming synapse maps (``snnconv.geometry``):

- neurons: compartments, ``neurons * compartments per neuron``;
- input axons: distinct source neurons feeding the tile, summed over its synapse maps;
- synapses, and synapse memory as the target costs it: ``per_synapse``: every axon's
  row holds ``n`` synapses in ``ceil((n * weight_bits + row_overhead_bits) / word_bits)``
  words; ``shared_kernel``: the weights of the tile's output channels, stored once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnconv.geometry import Projection

__all__ = ["Tile", "Core", "Mapping", "Box", "tile_resources", "Resources"]

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


def tile_resources(box: Box, projections: list[Projection], compartments: int, weight_bits: int,
                   synapse_cost: str, row_overhead_bits: int, word_bits: int,
                   kernel_entries: dict[str, int]) -> Resources:
    """What a box of one population's neurons needs (see the module docstring)."""
    (c0, c1), (r0, r1), (x0, x1) = box
    neurons = (c1 - c0) * (r1 - r0) * (x1 - x0)
    axons = synapses = memory = 0
    for p in projections:
        blocks = (p.channels[c0:c1], p.rows[r0:r1], p.cols[x0:x1])
        per_axon = [block.sum(axis=0) for block in blocks]
        used = [counts[counts > 0] for counts in per_axon]
        axons += math.prod(len(u) for u in used)
        synapses += math.prod(int(counts.sum()) for counts in per_axon)
        if synapse_cost == "per_synapse":
            memory += _row_bits(used, weight_bits, row_overhead_bits, word_bits)
        else:
            memory += int((p.channels[c0:c1].any(axis=1)).sum()) * kernel_entries[p.weighted] * weight_bits
    return Resources(neurons * compartments, axons, synapses, memory)


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
