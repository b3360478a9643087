"""Partition: cut every neuron population into tiles that fit a core, and pack tiles into cores.

Each population (IF layer, spiking max pool, output) is tiled as a grid of boxes of
``ct`` channels x ``rt`` rows x ``xt`` columns. For every pair ``(rt, xt)`` (the values
that give distinct numbers of tiles), the largest ``ct`` whose tile still fits a core is
found by bisection: neurons (compartments), input axons (a convolution tile's receptive
field with its halo, through any pooling before it), synapse memory as the target costs
it. Resources grow with the box, so the interior tile (the largest receptive field) is
the one tested; every tile is then measured exactly. The tiling with the fewest tiles
wins; among equals, the one with the fewest input axons in total (the least halo
replication).

A neuron whose inputs alone exceed a core's axons or synapse memory has its synapse
maps split by source channels into the fewest groups that fit, where the target can
accumulate a neuron's input across cores (``core.accumulate``); each group is tiled on
its own, group 0 carrying the neurons and the others one accumulating compartment per
neuron. Targets that cannot accumulate refuse such a layer.

Tiles are then packed into cores, first-fit decreasing by their largest share of a
core's resources, trying the most recent cores; a core holds tiles of at most
``core.populations_per_core`` populations (the neuron and synapse configurations a
core can hold). A population whose single neuron does not fit a core is refused with
what it needs against what the core has.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from snnconv import geometry
from snnconv.errors import BadGraphError, DoesNotFitError
from snnconv.ir import IF, Affine, Conv, Dense, Graph, Layer, Pool
from snnconv.ir.rewrite import PassResult
from snnconv.mapping import Box, Core, Mapping, Resources, Tile, tile_resources
from snnconv.targets.target import Target

__all__ = ["Partition", "Limits"]

PACKING_WINDOW = 64  # open cores a tile tries before a new core is opened


@dataclass(frozen=True)
class Limits:
    """One core's capacity and how the target costs synapses."""

    neurons: float
    axons: float
    memory_bits: float
    populations: float
    accumulate: bool
    weight_bits: int
    synapse_cost: str
    row_overhead_bits: int
    word_bits: int

    @classmethod
    def of(cls, target: Target) -> Limits:
        core, precision = target.core, target.precision
        weight_bits = precision.weight_bits or 32
        return cls(_largest(core.neurons), core.input_axons, _largest(core.synapse_memory_bits),
                   getattr(core, "populations_per_core", 8), getattr(core, "accumulate", True), weight_bits,
                   core.synapse_cost,
                   getattr(core, "row_overhead_bits", 10), getattr(core, "word_bits", 64))

    def fits(self, r: Resources) -> bool:
        return r.neurons <= self.neurons and r.axons <= self.axons and r.memory_bits <= self.memory_bits

    def share(self, r: Resources) -> float:
        """The largest fraction of a core this takes."""
        return max(r.neurons / self.neurons, r.axons / self.axons, r.memory_bits / self.memory_bits)


def _largest(value) -> float:
    return max(value) if isinstance(value, tuple) else value


class Partition:
    name = "partition"

    def __init__(self, target: Target):
        self.target = target

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("quantized"):
            raise BadGraphError(f"graph {graph.name!r} is not quantized; run quantize before partition")
        limits = Limits.of(self.target)
        incoming = geometry.projections(graph)
        kernels = {layer.name: _kernel_entries(layer) for layer in graph if isinstance(layer, (Conv, Dense, Affine, Pool))}
        tiles, shapes, notes = [], {}, {}
        for population in geometry.populations(graph):
            shape, population_tiles = _tile_population(population, incoming[population.name], limits, kernels)
            shapes[population.name] = shape
            tiles += population_tiles
            notes[population.name] = {"tile": list(shape), "tiles": len(population_tiles),
                                      "input_groups": population_tiles[0].groups,
                                      "exact": all(p.exact for p in incoming[population.name])}
        cores = _pack(tiles, limits)
        mapping = Mapping(self.target.name, tuple(cores), shapes)
        summary = {"cores": len(cores), "tiles": len(tiles), "layers": notes}
        return PassResult(graph.rebuilt(graph.layers, mapping=mapping), True, summary)


def _kernel_entries(layer: Layer) -> int:
    """Weights per output channel, as a chip sharing kernels stores them (a max pool stores none)."""
    if isinstance(layer, Pool):
        return 0
    if isinstance(layer, Affine):
        return 1
    return int(np.prod(layer.weight.shape[1:]))


def _tile_population(population: Layer, projections: list[geometry.Projection], limits: Limits,
                     kernels: dict[str, int]) -> tuple[tuple[int, int, int], list[Tile]]:
    """Tiles for one population, splitting its inputs into the fewest groups that fit where needed."""
    whole = _Tiler(population, projections, limits, kernels)
    if whole.fits_one_neuron() or not limits.accumulate or not projections:
        return whole.best()
    most = max(p.channels.shape[1] for p in projections)
    for groups in range(2, most + 1):
        ranges = [_split(p.channels.shape[1], groups) for p in projections]
        tilers = [_Tiler(population, [_restricted(p, r[g]) for p, r in zip(projections, ranges)], limits, kernels,
                         accumulator=g > 0) for g in range(groups)]
        if all(t.fits_one_neuron() for t in tilers):
            tiles, shape = [], None
            for g, tiler in enumerate(tilers):
                group_shape, group_tiles = tiler.best()
                shape = shape or group_shape
                inputs = tuple((p.source, *r[g]) for p, r in zip(projections, ranges))
                tiles += [dataclasses.replace(t, group=g, groups=groups, inputs=inputs) for t in group_tiles]
            return shape, tiles
    whole.best()  # refuses with the per-neuron needs
    raise AssertionError("unreachable")


def _split(n: int, groups: int) -> list[tuple[int, int]]:
    bounds = [round(i * n / groups) for i in range(groups + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _restricted(p: geometry.Projection, columns: tuple[int, int]) -> geometry.Projection:
    """The synapse map from source channels ``columns`` only."""
    channels = np.zeros_like(p.channels)
    channels[:, columns[0]:columns[1]] = p.channels[:, columns[0]:columns[1]]
    return dataclasses.replace(p, channels=channels)


class _Tiler:
    """The tile-shape search for one population (or one input group of it)."""

    def __init__(self, population: Layer, projections, limits: Limits, kernels: dict[str, int],
                 accumulator: bool = False):
        self.population = population
        self.projections = projections
        self.limits = limits
        self.kernels = kernels
        self.shape = geometry.population_box_shape(population)
        compartments = population.compartments if isinstance(population, IF) else 1
        self.compartments = 1 if accumulator else compartments

    def fits_one_neuron(self) -> bool:
        return self.limits.fits(self.resources(self._interior(1, 1, 1)))

    def resources(self, box: Box) -> Resources:
        lim = self.limits
        return tile_resources(box, self.projections, self.compartments, lim.weight_bits, lim.synapse_cost,
                              lim.row_overhead_bits, lim.word_bits, self.kernels)

    def best(self) -> tuple[tuple[int, int, int], list[Tile]]:
        candidates = []
        channels, height, width = self.shape
        for rows in _sizes(height):
            for cols in _sizes(width):
                ct = self._largest_channels(rows, cols)
                if ct:
                    count = math.ceil(channels / ct) * math.ceil(height / rows) * math.ceil(width / cols)
                    axons = count * self.resources(self._interior(ct, rows, cols)).axons
                    candidates.append((count, axons, (ct, rows, cols)))
        if not candidates:
            self._refuse()
        for _, _, shape in sorted(candidates):
            tiles = [Tile(self.population.name, box, self.resources(box)) for box in _grid(self.shape, shape)]
            if all(self.limits.fits(tile.resources) for tile in tiles):
                return shape, tiles
        self._refuse()

    def _interior(self, ct: int, rows: int, cols: int) -> Box:
        _, height, width = self.shape
        r0, x0 = (height // 2 // rows) * rows, (width // 2 // cols) * cols
        return (0, ct), (r0, min(r0 + rows, height)), (x0, min(x0 + cols, width))

    def _largest_channels(self, rows: int, cols: int) -> int:
        """Bisection: the most channels a tile of ``rows`` x ``cols`` can take (0 if none)."""
        low, high = 0, int(min(self.shape[0], self.limits.neurons / (rows * cols * self.compartments)))
        while low < high:
            middle = (low + high + 1) // 2
            if self.limits.fits(self.resources(self._interior(middle, rows, cols))):
                low = middle
            else:
                high = middle - 1
        return low

    def _refuse(self):
        one = self.resources(self._interior(1, 1, 1))
        lim = self.limits
        reasons = [f"{what} {need:,} > {have:,}" for what, need, have in (
            ("compartments", one.neurons, lim.neurons), ("input axons", one.axons, lim.axons),
            ("synapse memory bits", one.memory_bits, lim.memory_bits)) if need > have]
        raise DoesNotFitError(
            f"layer {self.population.name!r} ({self.population.kind}, {len(self.projections)} synapse maps): one "
            f"neuron alone needs more than a core has ({'; '.join(reasons) or 'no tiling found'}); "
            f"use a target with bigger cores{'' if lim.accumulate else ' or one that accumulates across cores'}, "
            f"or reduce this layer's fan-in (fewer input channels or a smaller kernel)")


def _sizes(n: int) -> list[int]:
    """Tile sizes along an axis of ``n`` that give distinct numbers of tiles: ceil(n / k) for k = 1..n."""
    return sorted({math.ceil(n / k) for k in range(1, n + 1)}, reverse=True)


def _grid(shape: tuple[int, int, int], tile: tuple[int, int, int]) -> list[Box]:
    ranges = [[(start, min(start + step, size)) for start in range(0, size, step)] for size, step in zip(shape, tile)]
    return [(c, r, x) for c in ranges[0] for r in ranges[1] for x in ranges[2]]


def _pack(tiles: list[Tile], limits: Limits) -> list[Core]:
    """First-fit decreasing over the most recent cores, at most ``limits.populations`` populations per core."""
    order = range(len(tiles))
    contents: list[list[Tile]] = []
    used: list[Resources] = []
    for i in order:
        tile = tiles[i]
        for k in range(max(0, len(contents) - PACKING_WINDOW), len(contents)):
            populations = {t.population for t in contents[k]} | {tile.population}
            if len(populations) <= limits.populations and limits.fits(used[k] + tile.resources):
                contents[k].append(tile)
                used[k] = used[k] + tile.resources
                break
        else:
            contents.append([tile])
            used.append(tile.resources)
    return [Core(index, tuple(tiles_in)) for index, tiles_in in enumerate(contents)]
