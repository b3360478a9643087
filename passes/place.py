"""Place: cores onto chips and the cores of a chip, keeping traffic on chip and short.

Traffic is estimated per pair of cores as messages per timestep (``mapping.traffic``):
every source neuron sends one message to each tile that reads it, at its firing rate
(``rates``: per population and channel, from the calibration data; without them every
neuron counts as firing each step, i.e. fan-out counts). A neuron connecting to two
tiles of one core is counted twice, so the figures are upper bounds. Input groups that
accumulate across cores add one message per neuron per step to the neuron's core.
Traffic is computed once for the partition's cores and renumbered for each order tried.

Placement orders the cores and fills chips in that order; within a chip, core ``k`` sits
at the ``k``-th place of a serpentine path over the mesh (``mapping.places``), so
consecutive cores are one hop apart. Where a chip's cores differ (``snnconv.limits``),
each core is seated on a core of the chip that holds what it uses (a bipartite matching,
by augmenting paths), and a chip is full when the next core finds no seat on it. Two
orders are tried and the one with the fewest chips, then the fewest messages across
chips, then the fewest hop-weighted messages on chip, is kept:

- by layer: cores sorted by the first population they hold, in topological order (a
  feed-forward network talks mostly between neighbouring layers);
- by region: cores sorted by where their first tile sits in its feature map (a Z-order
  curve over an 8 x 8 grid of normalized positions), then by layer: when layers need
  many chips each, a region's neurons in consecutive layers stay together.

Both are heuristics; the traffic they reach is measured and reported, not assumed optimal.
Each core's routes (the cores it sends to, whatever the rates) close the pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnconv import geometry, limits
from snnconv.errors import BadGraphError, DoesNotFitError
from snnconv.ir import Graph
from snnconv.ir.rewrite import PassResult
from snnconv.limits import Limits, Use
from snnconv.mapping import Core, Mapping, destinations, traffic
from snnconv.targets.target import Target

__all__ = ["Place"]


class Place:
    """Options: ``chips`` available (default: the target's), ``rates`` {population: per-channel rate}."""

    name = "place"

    def __init__(self, target: Target, chips: int | None = None, rates: dict[str, np.ndarray] | None = None):
        self.target = target
        self.chips = chips or target.chip.chips
        self.rates = rates or {}

    def run(self, graph: Graph) -> PassResult:
        mapping: Mapping | None = graph.fact("mapping")
        if mapping is None:
            raise BadGraphError(f"graph {graph.name!r} is not partitioned; run partition before place")
        bounds = Limits.of(self.target)
        fan_out = traffic(graph, mapping.cores, {})
        messages = traffic(graph, mapping.cores, self.rates) if self.rates else fan_out
        uses = limits.core_uses(mapping.cores, fan_out)
        order = {layer.name: i for i, layer in enumerate(graph)}
        shapes = {layer.name: geometry.population_box_shape(layer) for layer in geometry.populations(graph)}
        trials = []
        for name, rank in (("layer", _by_layer(order)), ("region", _by_region(order, shapes))):
            ranked = sorted(mapping.cores, key=rank)
            seats = _seats(ranked, [uses[core.index] for core in ranked], bounds)
            cores = tuple(dataclasses.replace(core, index=i, chip=chip, position=bounds.places[k])
                          for i, (core, (chip, k)) in enumerate(zip(ranked, seats)))
            renumber = np.empty(len(ranked), int)
            renumber[[core.index for core in ranked]] = np.arange(len(ranked))
            summary = _summarize(_renumbered(messages, renumber), cores)
            chips = seats[-1][0] + 1
            trials.append((chips, summary["across_chips"], summary["hop_weighted"], name, cores, renumber, summary))
            if chips == 1:
                break
        needed, _, _, chosen, cores, renumber, traffic_summary = min(trials, key=lambda trial: trial[:3])
        if needed > self.chips:
            raise DoesNotFitError(_too_big(mapping, needed, self.chips, self.target))
        routes = destinations(_renumbered(fan_out, renumber), len(cores))
        cores = tuple(dataclasses.replace(core, routes=routes[core.index]) for core in cores)
        traffic_summary |= {"rates": "calibration" if self.rates else "fan-out counts", "order": chosen}
        placed = dataclasses.replace(mapping, cores=cores, chips=needed, traffic=traffic_summary)
        notes = {"chips": needed, "cores": len(cores)} | {k: v for k, v in traffic_summary.items() if k != "per_chip"}
        return PassResult(graph.rebuilt(graph.layers, mapping=placed), True, notes)


def _seats(ranked: list[Core], uses: list[Use], bounds: Limits) -> list[tuple[int, int]]:
    """(chip, core of the chip) for each of the ``ranked`` cores: they fill chip 0, then chip 1, ...

    Where all cores of a chip are alike, core ``i`` takes core ``i % n`` of chip ``i // n``.
    Otherwise each core may sit on the cores of the chip that hold it; a chip takes the
    next core while a seat can still be found for every core on it (augmenting paths).
    """
    per_chip = len(bounds.cores)
    if bounds.uniform:
        return [(i // per_chip, i % per_chip) for i in range(len(ranked))]
    options = [[k for k, capacity in enumerate(bounds.cores) if limits.fits(use, capacity)] for use in uses]
    seats: list[tuple[int, int]] = [(-1, -1)] * len(ranked)
    chips: list[dict[int, int]] = [{}]  # per chip: its core -> the ranked core seated there
    for i, core in enumerate(ranked):
        if _augment(i, options, chips[-1], set()):
            continue
        chips.append({})
        if not _augment(i, options, chips[-1], set()):
            nearest = min((limits.violations(uses[i], kind) for kind in bounds.kinds), key=len)
            raise DoesNotFitError(f"core {core.index} ({', '.join(map(repr, core.populations))}) fits no core of "
                                  f"{bounds.target} ({'; '.join(nearest)}); partition the network for this target")
    for chip, owner in enumerate(chips):
        for k, i in owner.items():
            seats[i] = (chip, k)
    return seats


def _augment(i: int, options: list[list[int]], owner: dict[int, int], seen: set[int]) -> bool:
    """Seat core ``i`` on a free core of the chip it fits, moving seated cores to other cores that hold them."""
    for k in options[i]:
        if k not in seen:
            seen.add(k)
            if k not in owner or _augment(owner[k], options, owner, seen):
                owner[k] = i
                return True
    return False


def _renumbered(edges: np.ndarray, renumber: np.ndarray) -> np.ndarray:
    """``traffic`` rows with the cores' new numbers."""
    out = edges.copy()
    out[:, :2] = renumber[edges[:, :2].astype(int)]
    return out


def _by_layer(order: dict[str, int]):
    def rank(core: Core) -> tuple:
        first = min(core.tiles, key=lambda t: (order[t.population], t.group, t.box))
        return order[first.population], first.group, first.box
    return rank


def _by_region(order: dict[str, int], shapes: dict[str, tuple[int, int, int]], bits: int = 3):
    def rank(core: Core) -> tuple:
        first = core.tiles[0]
        _, height, width = shapes[first.population]
        (_, _), (r0, r1), (x0, x1) = first.box
        y, x = (int((r0 + r1) / 2 / height * 2 ** bits), int((x0 + x1) / 2 / width * 2 ** bits))
        return _z_order(y, x, bits), order[first.population], first.group, first.box
    return rank


def _z_order(y: int, x: int, bits: int) -> int:
    """Interleave the bits of ``y`` and ``x``: nearby cells get nearby codes."""
    code = 0
    for i in range(bits):
        code |= ((y >> i) & 1) << (2 * i + 1) | ((x >> i) & 1) << (2 * i)
    return code


def _too_big(mapping: Mapping, needed: int, available: int, target: Target) -> str:
    per_layer: dict[str, int] = {}
    for core in mapping.cores:
        for population in core.populations:
            per_layer[population] = per_layer.get(population, 0) + 1
    largest = sorted(per_layer.items(), key=lambda item: -item[1])[:5]
    listing = ", ".join(f"{name}: {count} cores" for name, count in largest)
    return (f"the network needs {len(mapping.cores):,} cores = {needed} chips of {target.name} "
            f"({target.chip.cores} cores each) but {available} are available (largest layers: {listing}); "
            f"pass --chips {needed}, choose a target with bigger cores, or shrink these layers")


def _summarize(edges: np.ndarray, cores: tuple[Core, ...]) -> dict:
    """Totals within and across chips, hop-weighted on chip, and per chip what leaves each core.

    A core's messages to itself cross no link: they are not traffic.
    """
    edges = edges[edges[:, 0] != edges[:, 1]]
    if not len(edges):
        return {"within_chip": 0.0, "across_chips": 0.0, "hop_weighted": 0.0, "per_chip": {}}
    chip = np.array([core.chip for core in cores])
    position = np.array([core.position for core in cores])
    src, dst, messages = edges[:, 0].astype(int), edges[:, 1].astype(int), edges[:, 2]
    across = chip[src] != chip[dst]
    hops = np.abs(position[src] - position[dst]).sum(axis=1)
    chips = int(chip.max()) + 1
    out = np.bincount(chip[src], weights=messages, minlength=chips)
    out_across = np.bincount(chip[src][across], weights=messages[across], minlength=chips)
    per_chip = {str(c): {"out": float(out[c]), "across": float(out_across[c])} for c in range(chips)}
    return {"within_chip": float(messages[~across].sum()), "across_chips": float(messages[across].sum()),
            "hop_weighted": float((messages[~across] * hops[~across]).sum()), "per_chip": per_chip}
