"""Partition: cut every neuron population into tiles that fit a core, and pack tiles into cores.

Each population (IF layer, spiking max pool, output) is tiled as a grid of boxes of
``ct`` channels x ``rt`` rows x ``xt`` columns. For every pair ``(rt, xt)`` (the values
that give distinct numbers of tiles), the largest ``ct`` whose tiles still fit a core is
found by bisection (a ``ct`` that fits, not always the largest: where a concat's synapse
maps meet, a range that straddles more of them can fail at a smaller ``ct``), against
every limit of ``snnconv.limits``: compartments, input axons (a convolution tile's
receptive field with its halo, through any pooling before it), synapse memory as the
target costs it, and output axons (what the tiles of the layers it feeds read of it:
populations are tiled from the last to the first, so those tiles are known). Inputs grow
with the box, so the interior tile (the largest receptive field) of each of the grid's
channel ranges is the one tested for them; output axons depend on where a tile sits, so
the fullest tile of the grid is taken for them. Every tile is then measured exactly
(once per distinct reading of its spans: ``_Tiler.resources``), a grid dropped at its
first tile that does not fit. The tiling with the fewest tiles wins; among equals, the
one with the fewest input axons in total (the least halo replication).

Where a chip's cores differ (Speck's memories), a population is tiled for each kind of
core (``Limits.kinds``) and takes the tiling with the fewest tiles, sized for the kind
it will go to; a core is packed for one kind, and place seats it on a core that holds it.

A neuron whose inputs alone exceed a core's axons or synapse memory has its synapse
maps split by source channels into the fewest groups that fit, where the target can
accumulate a neuron's input across cores (``core.accumulate``); each group is tiled on
its own, group 0 carrying the neurons and the others one accumulating compartment per
neuron. Targets that cannot accumulate refuse such a layer.

Tiles are then packed into cores, first-fit over the most recent cores, each core within
its capacity (at most ``core.populations_per_core`` populations among them: the neuron
and synapse configurations a core can hold). Where the target limits the cores one core
may send to (``core.fan_out``), the packed cores are checked against it. A population
whose single neuron does not fit a core is refused with what it needs against what the
core has, as is a core that sends to more cores than allowed.

With ``spread`` (``snnconv.compile(..., spread=True)``) a network that needs fewer cores
than one chip has is spread over them instead: each population's cores get a synapse
memory budget inversely proportional to its sources' rates, so every core expects about
the same synaptic operations per step, and the smallest budget that still fits the chip
is found by bisection (``_spread``). With per-neuron rates this is done again with each
population's rate corrected by its busiest tile, and the layout whose busiest core
expects less is kept (``_balanced``). The program is unchanged; only where it runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from snnconv import geometry, limits
from snnconv.errors import BadGraphError, DoesNotFitError
from snnconv.ir import Affine, Conv, Dense, Graph, Layer, Pool
from snnconv.ir.rewrite import PassResult
from snnconv.limits import Capacity, Limits, OutputAxons, Use
from snnconv.mapping import Box, Core, Mapping, Resources, Tile, traffic
from snnconv.targets.target import Target

__all__ = ["Partition"]

PACKING_WINDOW = 64  # open cores a tile tries before a new core is opened


class Partition:
    name = "partition"

    def __init__(self, target: Target, spread: bool = False, rates: dict[str, np.ndarray] | None = None):
        self.target = target
        self.spread = spread
        self.rates = rates

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("quantized"):
            raise BadGraphError(f"graph {graph.name!r} is not quantized; run quantize before partition")
        bounds = Limits.of(self.target)
        tiled, packed = _layout(graph, bounds)
        budget = None
        if self.spread:
            costs = self.target.costs
            update = costs.neuron_update_ns / costs.synop_ns if costs.synop_ns > 0 else 0.0
            budget, tiled, packed = _balanced(graph, bounds, tiled, packed, self.rates, update)
        populations = geometry.populations(graph)
        incoming = geometry.projections(graph)
        cores = tuple(Core(index, tuple(core.tiles)) for index, core in enumerate(packed))
        _check_destinations(graph, cores, [core.kind for core in packed], self.target)
        notes = {name: {"tile": list(tiling.shape), "tiles": len(tiling.pieces),
                        "input_groups": tiling.pieces[0].tile.groups,
                        "exact": all(p.exact for p in incoming[name])}
                 for name, tiling in ((layer.name, tiled[layer.name]) for layer in populations)}
        mapping = Mapping(self.target.name, cores, {name: tiled[name].shape for name in notes})
        summary = {"cores": len(cores), "tiles": sum(note["tiles"] for note in notes.values()), "layers": notes}
        if self.spread:
            summary["spread_memory_bits"] = budget
        return PassResult(graph.rebuilt(graph.layers, mapping=mapping), True, summary)


def _layout(graph: Graph, bounds: Limits, budgets: dict[str, float] | None = None
            ) -> tuple[dict[str, _Tiling], list[_Open]]:
    """Every population tiled (the last first) and the tiles packed into cores, within ``bounds``; a population
    in ``budgets`` on cores of at most that many synapse-memory bits."""
    incoming = geometry.projections(graph)
    kernels = {layer.name: limits.kernel_entries(layer) for layer in graph
               if isinstance(layer, (Conv, Dense, Affine, Pool))}
    populations = geometry.populations(graph)
    tiled: dict[str, _Tiling] = {}
    refused: dict[str, DoesNotFitError] = {}
    for population in reversed(populations):  # the tiles that read a population are known before it is tiled
        readers = [(p, index, [piece.tile for piece in tiled[target].pieces])
                   for target, maps in incoming.items() for index, p in enumerate(maps)
                   if p.source == population.name and target in tiled]
        try:
            own = bounds if budgets is None else _squeezed(bounds, budgets.get(population.name, math.inf))
            tiled[population.name] = _tile_population(population, incoming[population.name], readers, own, kernels)
        except DoesNotFitError as error:
            refused[population.name] = error
    if refused:  # the first layer, in the network's order, that does not fit
        raise next(refused[layer.name] for layer in populations if layer.name in refused)
    return tiled, _pack([piece for population in populations for piece in tiled[population.name].pieces],
                        tightest=budgets is not None)


def _spread(graph: Graph, bounds: Limits, tiled: dict, packed: list, activity: dict[str, float]
            ) -> tuple[float | None, dict, list]:
    """The layout with the smallest budget of expected synaptic operations per core that still fits one chip.

    Why: a step ends when the busiest core is done (``snnconv.chip``), and the static
    power of the whole chip is paid for that long, so a network packed into the fewest
    cores leaves the rest of the chip idle while its fullest core works. A tile's
    synapse memory counts the synapses it holds; times the mean rate of their sources
    (``activity``) it is the tile's expected synaptic operations per step. Each
    population's cores get ``budget / activity`` bits, so a layer fed by busy sources is
    cut finer. A budget is kept only if every population keeps its input groups (no
    extra accumulating compartments: the same program) and the cores fit one chip;
    ``None`` and the fewest-core layout where none does. Bisection to 1% of the budget.
    """
    chip_cores = len(bounds.cores)
    groups = {name: tiling.pieces[0].tile.groups for name, tiling in tiled.items()}
    busiest = max(activity.values(), default=0.0)
    if len(packed) >= chip_cores or not bounds.uniform or busiest <= 0:
        return None, tiled, packed
    low, high = 0.0, float(bounds.cores[0].memory_bits) * busiest  # at ``high`` no population is squeezed
    best = (None, tiled, packed)
    while high - low > high / 100:
        budget = (low + high) / 2
        try:
            trial = _layout(graph, bounds, {name: budget / rate for name, rate in activity.items() if rate > 0})
        except DoesNotFitError:
            trial = None
        if trial and len(trial[1]) <= chip_cores and all(
                tiling.pieces[0].tile.groups == groups[name] for name, tiling in trial[0].items()):
            high, best = budget, (budget, *trial)
        else:
            low = budget
    return best


def _balanced(graph: Graph, bounds: Limits, tiled: dict, packed: list, rates: dict[str, np.ndarray] | None,
              update: float) -> tuple[float | None, dict, list]:
    """``_spread`` with each population's mean activity, then once more with it corrected by what its tiles
    expect from per-neuron ``rates`` (activity varies across a feature map, so a uniform grid of tiles does
    not carry uniform loads); the layout whose busiest core expects fewer operations is kept."""
    activity = _activities(graph, rates)
    first = _spread(graph, bounds, tiled, packed, activity)
    if first[0] is None or rates is None or not any(np.ndim(r) > 1 for r in rates.values()):
        return first
    incoming = geometry.projections(graph)
    ratios = {name: max(_tile_load(piece.tile, incoming[name], rates) / (piece.use.memory_bits * activity[name])
                        for piece in tiling.pieces if piece.use.memory_bits)
              for name, tiling in first[1].items() if activity.get(name, 0) > 0 and tiling.pieces[0].tile.groups == 1}
    second = _spread(graph, bounds, tiled, packed, {name: rate * ratios.get(name, 1.0)
                                                     for name, rate in activity.items()})
    return min((first, second), key=lambda layout: _busiest(layout[2], incoming, rates, update))


def _tile_load(tile: Tile, projections: list[geometry.Projection], rates: dict[str, np.ndarray]) -> float:
    """A tile's expected synaptic operations per step: per synapse map, its sources' rates (a neuron's mean
    messages per step; a per-channel rate stands for every position) times the synapses each has in the tile."""
    (c0, c1), (r0, r1), (x0, x1) = tile.box
    load = 0.0
    for p in projections:
        if p.source not in rates:
            continue
        shape = (p.channels.shape[1], p.rows.shape[1], p.cols.shape[1])
        rate = np.asarray(rates[p.source], float)
        rate = rate.reshape(shape) if rate.size == math.prod(shape) else np.broadcast_to(
            rate.reshape(-1, 1, 1), shape)
        load += float(np.einsum("chw,c,h,w->", rate, p.channels[c0:c1].sum(axis=0), p.rows[r0:r1].sum(axis=0),
                                p.cols[x0:x1].sum(axis=0)))
    return load


def _busiest(packed: list, incoming: dict, rates: dict[str, np.ndarray], update: float) -> float:
    """The longest step a core of ``packed`` expects, in synaptic operations: its expected operations plus its
    compartments' updates at ``update`` operations each."""
    return max(sum(_tile_load(tile, incoming[tile.population], rates) for tile in core.tiles if tile.group == 0)
               + core.use.neurons * update for core in packed)


def _squeezed(bounds: Limits, memory_bits: float) -> Limits:
    """``bounds`` with every core's synapse memory at most ``memory_bits``."""
    if memory_bits >= bounds.span("memory_bits")[1]:
        return bounds
    return dataclasses.replace(bounds, cores=tuple(dataclasses.replace(c, memory_bits=min(c.memory_bits, memory_bits))
                                                   for c in bounds.cores))


def _activities(graph: Graph, rates: dict[str, np.ndarray] | None) -> dict[str, float]:
    """Per population, its synapses' mean source rate (messages per step; each source channel weighted by the
    synapses it feeds), from ``rates`` {population: per-channel or per-neuron rate}; 1 for every source without
    rates (synapse memory alone then balances), 0 for a population fed only by the input (no synaptic operations
    counted)."""
    found = {}
    for name, projections in geometry.projections(graph).items():
        weighted = total = 0.0
        for p in projections:
            per_source = p.channels.sum(axis=0) * float(p.rows.sum()) * float(p.cols.sum())
            rate = np.ones(len(per_source)) if rates is None else np.asarray(rates.get(p.source, 0.0), float)
            if rate.ndim > 1:  # per neuron: the channel's mean over positions
                rate = rate.reshape(len(per_source), -1).mean(axis=1)
            weighted += float((per_source * np.broadcast_to(rate, per_source.shape)).sum())
            total += float(per_source.sum())
        found[name] = weighted / total if total else 0.0
    return found


@dataclass(frozen=True)
class _Piece:
    """A tile, what it uses (its output axons included) and the kind of core it is sized for."""

    tile: Tile
    use: Use
    kind: Capacity


@dataclass(frozen=True)
class _Tiling:
    shape: tuple[int, int, int]
    pieces: list[_Piece]


def _tile_population(population: Layer, projections: list[geometry.Projection], readers, bounds: Limits,
                     kernels: dict[str, int]) -> _Tiling:
    """The tiling with the fewest tiles over the kinds of core; refused if no kind holds one neuron."""
    tilings, refusal = [], None
    output_axons = OutputAxons.of(geometry.population_box_shape(population), readers)
    for kind in bounds.kinds:
        try:
            tilings.append(_tile_for(population, projections, output_axons, bounds, kind, kernels))
        except DoesNotFitError as error:
            refusal = error
    if not tilings:
        raise refusal
    return min(tilings, key=lambda tiling: len(tiling.pieces))


def _tile_for(population: Layer, projections: list[geometry.Projection], output_axons: OutputAxons, bounds: Limits,
              kind: Capacity, kernels: dict[str, int]) -> _Tiling:
    """Tiles for one population on one kind of core, splitting its inputs into the fewest groups that fit."""
    whole = _Tiler(population, projections, output_axons, bounds, kind, kernels)
    if whole.fits_one_neuron() or not bounds.accumulate or not projections:
        return whole.best()
    if output_axons.largest((1, 1, 1)) > kind.output_axons:  # input groups split a neuron's inputs, not its outputs
        raise whole.refusal()
    most = max(p.channels.shape[1] for p in projections)
    for groups in range(2, most + 1):
        ranges = [_split(p.channels.shape[1], groups) for p in projections]
        tilers = [_Tiler(population, [limits.restricted(p, *r[g]) for p, r in zip(projections, ranges)],
                         output_axons, bounds, kind, kernels, group=g) for g in range(groups)]
        if all(t.fits_one_neuron() for t in tilers):
            pieces, shape = [], None
            for g, tiler in enumerate(tilers):
                tiling = tiler.best()
                shape = shape or tiling.shape
                inputs = tuple((p.source, *r[g]) for p, r in zip(projections, ranges))
                pieces += [dataclasses.replace(piece, tile=dataclasses.replace(piece.tile, group=g, groups=groups,
                                                                               inputs=inputs))
                           for piece in tiling.pieces]
            return _Tiling(shape, pieces)
    raise whole.refusal()


def _split(n: int, groups: int) -> list[tuple[int, int]]:
    bounds = [round(i * n / groups) for i in range(groups + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


class _Tiler:
    """The tile-shape search for one population (or one input group of it) on one kind of core."""

    def __init__(self, population: Layer, projections, output_axons: OutputAxons, bounds: Limits, kind: Capacity,
                 kernels: dict[str, int], group: int = 0):
        self.population = population
        self.projections = projections
        self.bounds = bounds
        self.kind = kind
        self.kernels = kernels
        self.shape = geometry.population_box_shape(population)
        self.compartments = limits.compartments(population, group)
        self.output_axons = output_axons if group == 0 else OutputAxons.partial_sums(self.shape)
        self._spans: dict[tuple[int, int, int], tuple] = {}  # (axis, lo, hi) -> what a box reads along it
        self._measured: dict[tuple, Resources] = {}  # the three spans' readings -> the box's resources

    def fits_one_neuron(self) -> bool:
        return limits.fits(self.estimate((1, 1, 1)), self.kind)

    def piece(self, box: Box) -> _Piece:
        resources = self.resources(box)
        return _Piece(Tile(self.population.name, box, resources), Use.of(resources, self.output_axons(box)),
                      self.kind)

    def estimate(self, tile: tuple[int, int, int]) -> Use:
        """What the fullest tile of this shape uses: per resource, the most over the interior tiles of every channel
        range of the grid (inputs grow with the box; a concat's ranges read different synapse maps, and one that
        straddles their boundaries reads several: DenseNet-121's n329 read three through 4,352 input axons in its
        channels 248-310, where its first and its fullest ranges read one), the fullest tile's output axons."""
        channels = self.shape[0]
        _, rows, cols = self._interior(*tile)
        measured = [dataclasses.astuple(self.resources(((start, min(start + tile[0], channels)), rows, cols)))
                    for start in range(0, channels, tile[0])]
        return Use.of(Resources(*map(max, zip(*measured))), self.output_axons.largest(tile))

    def resources(self, box: Box) -> Resources:
        """``Limits.tile_resources`` of ``box``, measured once per distinct reading: along each axis, the box's span
        length and, per synapse map, the counts of its targets per source position there (and, for channels, how
        many targets read anything), which is all the measurement reads. The tiles of a grid read alike but for
        a shift (a conv's interior tiles), so a grid costs a few measurements, not one per tile: DenseNet-121's
        populations (up to 25 synapse maps, 1,000 tiles and more) measured 370,000 tiles in 440 s before."""
        key = tuple(self._span(axis, *span) for axis, span in enumerate(box))
        if key not in self._measured:
            self._measured[key] = self.bounds.tile_resources(box, self.projections, self.compartments, self.kernels)
        return self._measured[key]

    def _span(self, axis: int, lo: int, hi: int) -> tuple:
        if (axis, lo, hi) not in self._spans:
            reading: list = [hi - lo]
            for p in self.projections:
                block = (p.channels, p.rows, p.cols)[axis][lo:hi]
                counts = block.sum(axis=0)
                reading.append(counts[counts > 0].tobytes())
                if axis == 0:
                    reading.append(int(block.any(axis=1).sum()))
            self._spans[axis, lo, hi] = tuple(reading)
        return self._spans[axis, lo, hi]

    def best(self) -> _Tiling:
        candidates = []
        channels, height, width = self.shape
        for rows in _sizes(height):
            for cols in _sizes(width):
                ct = self._largest_channels(rows, cols)
                if ct:
                    count = math.ceil(channels / ct) * math.ceil(height / rows) * math.ceil(width / cols)
                    axons = count * self.estimate((ct, rows, cols)).input_axons
                    candidates.append((count, axons, (ct, rows, cols)))
        if not candidates:
            raise self.refusal()
        for _, _, shape in sorted(candidates):
            pieces = []
            for box in _grid(self.shape, shape):  # a grid is dropped at its first tile that does not fit
                pieces.append(self.piece(box))
                if not limits.fits(pieces[-1].use, self.kind):
                    break
            else:
                return _Tiling(shape, pieces)
        raise self.refusal()

    def _interior(self, ct: int, rows: int, cols: int) -> Box:
        _, height, width = self.shape
        r0, x0 = (height // 2 // rows) * rows, (width // 2 // cols) * cols
        return (0, ct), (r0, min(r0 + rows, height)), (x0, min(x0 + cols, width))

    def _largest_channels(self, rows: int, cols: int) -> int:
        """Bisection: the most channels a tile of ``rows`` x ``cols`` can take (0 if none); where fitting is not
        monotone in the channels (a concat's ranges move across its synapse maps), some number that fits."""
        low, high = 0, int(min(self.shape[0], self.kind.neurons / (rows * cols * self.compartments)))
        while low < high:
            middle = (low + high + 1) // 2
            if limits.fits(self.estimate((middle, rows, cols)), self.kind):
                low = middle
            else:
                high = middle - 1
        return low

    def refusal(self) -> DoesNotFitError:
        """What one neuron of this population needs beyond the core, and what to do."""
        reasons = limits.violations(self.estimate((1, 1, 1)), self.kind)
        advice = "a target with bigger cores" + ("" if self.bounds.accumulate else
                                                  " or one that accumulates across cores")
        if any(reason.startswith("output axons") for reason in reasons):
            advice += ", fewer tiles in the layers this one feeds"
        needs = "; ".join(reasons) or "no tiling found"
        return DoesNotFitError(
            f"layer {self.population.name!r} ({self.population.kind}, {len(self.projections)} synapse maps): one "
            f"neuron alone needs more than a core has ({needs}, on {self.bounds.target}); use {advice}, or reduce "
            f"this layer's fan-in (fewer input channels or a smaller kernel)")


def _sizes(n: int) -> list[int]:
    """Tile sizes along an axis of ``n`` that give distinct numbers of tiles: ceil(n / k) for k = 1..n."""
    return sorted({math.ceil(n / k) for k in range(1, n + 1)}, reverse=True)


def _grid(shape: tuple[int, int, int], tile: tuple[int, int, int]) -> list[Box]:
    ranges = [[(start, min(start + step, size)) for start in range(0, size, step)] for size, step in zip(shape, tile)]
    return [(c, r, x) for c in ranges[0] for r in ranges[1] for x in ranges[2]]


@dataclass
class _Open:
    """A core being packed: its tiles, their use, and the kind of core it is packed for."""

    kind: Capacity
    tiles: list[Tile]
    use: Use
    populations: set[str]

    def takes(self, piece: _Piece, tightest: bool = False) -> bool:
        """Whether the core still fits its kind with ``piece`` added (and, ``tightest``, the piece's kind too)."""
        populations = len(self.populations) + (piece.tile.population not in self.populations)
        use = self.use.plus(piece.use, populations)
        return limits.fits(use, self.kind) and (not tightest or limits.fits(use, piece.kind))

    def add(self, piece: _Piece, tightest: bool = False) -> None:
        self.tiles.append(piece.tile)
        self.populations.add(piece.tile.population)
        self.use = self.use.plus(piece.use, len(self.populations))
        if tightest and piece.kind.memory_bits < self.kind.memory_bits:
            self.kind = piece.kind


def _pack(pieces: list[_Piece], tightest: bool = False) -> list[_Open]:
    """First-fit, in population order, over the ``PACKING_WINDOW`` most recent cores; each core within its kind
    (``tightest``: within the smallest synapse memory among its tiles' kinds, where a spread budgets them)."""
    cores: list[_Open] = []
    for piece in pieces:
        for core in cores[-PACKING_WINDOW:]:
            if core.takes(piece, tightest):
                core.add(piece, tightest)
                break
        else:
            cores.append(_Open(piece.kind, [piece.tile], piece.use, {piece.tile.population}))
    return cores


def _check_destinations(graph: Graph, cores: tuple[Core, ...], kinds: list[Capacity], target: Target) -> None:
    """Refuse cores that send to more cores than the target allows (only computed where it sets a limit)."""
    if all(kind.destinations == math.inf for kind in kinds):
        return
    uses = limits.core_uses(cores, traffic(graph, cores, {}))
    problems = [f"core {core.index} ({', '.join(map(repr, core.populations))}): {reason}"
                for core, use, kind in zip(cores, uses, kinds) for reason in limits.violations(use, kind)]
    if problems:
        raise DoesNotFitError(f"the cores of {target.name} cannot route this network: {limits.listing(problems)}; "
                              "give the layers these feed fewer cores (fewer channels or smaller feature maps), or "
                              "choose a target whose cores send to more cores")
