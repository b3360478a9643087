"""Place: cores onto chips and mesh positions, keeping traffic on chip and short.

Traffic is estimated per pair of cores as messages per timestep: every source neuron
sends one message to each core holding neurons it connects to, at its firing rate
(``rates``: per population and channel, from the calibration data; without them every
neuron counts as firing each step, i.e. fan-out counts). A neuron connecting to two
tiles of one core is counted twice, so the figures are upper bounds. Input groups that
accumulate across cores add one message per neuron per step to the neuron's core.

Placement orders the cores and cuts the order into chips of ``chip.cores`` consecutive
cores; within a chip, cores follow a serpentine path over the mesh, so consecutive cores
are one hop apart. Two orders are tried and the one with the fewest messages across
chips (then the fewest hop-weighted messages on chip) is kept:

- by layer: cores sorted by the first population they hold, in topological order (a
  feed-forward network talks mostly between neighbouring layers);
- by region: cores sorted by where their first tile sits in its feature map (a Z-order
  curve over an 8 x 8 grid of normalized positions), then by layer: when layers need
  many chips each, a region's neurons in consecutive layers stay together.

Both are heuristics; the traffic they reach is measured and reported, not assumed optimal.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from snnconv import geometry
from snnconv.errors import BadGraphError, DoesNotFitError
from snnconv.ir import Graph
from snnconv.ir.rewrite import PassResult
from snnconv.mapping import Core, Mapping, Tile
from snnconv.targets.target import Target

__all__ = ["Place", "core_traffic"]


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
        per_chip = self.target.chip.cores
        needed = math.ceil(len(mapping.cores) / per_chip)
        if needed > self.chips:
            raise DoesNotFitError(_too_big(mapping, needed, self.chips, self.target))
        order = {layer.name: i for i, layer in enumerate(graph)}
        shapes = {layer.name: geometry.population_box_shape(layer) for layer in geometry.populations(graph)}
        path = _serpentine(*self.target.chip.mesh)
        trials = []
        for name, rank in (("layer", _by_layer(order)), ("region", _by_region(order, shapes))):
            ranked = sorted(mapping.cores, key=rank)
            cores = tuple(dataclasses.replace(core, index=i, chip=i // per_chip, position=path[i % per_chip])
                          for i, core in enumerate(ranked))
            summary = _summarize(core_traffic(graph, cores, self.rates), cores)
            trials.append((summary["across_chips"], summary["hop_weighted"], name, cores, summary))
            if needed == 1:
                break
        _, _, chosen, cores, traffic = min(trials, key=lambda trial: trial[:2])
        cores = _with_routes(cores, core_traffic(graph, cores, {}))
        traffic |= {"rates": "calibration" if self.rates else "fan-out counts", "order": chosen}
        placed = dataclasses.replace(mapping, cores=cores, chips=needed, traffic=traffic)
        notes = {"chips": needed, "cores": len(cores)} | {k: v for k, v in traffic.items() if k != "per_chip"}
        return PassResult(graph.rebuilt(graph.layers, mapping=placed), True, notes)


def _with_routes(cores: tuple[Core, ...], edges: np.ndarray) -> tuple[Core, ...]:
    """Each core's destination cores: every core one of its neurons has a synapse into, whatever the rates."""
    destinations: dict[int, set[int]] = {}
    for source, destination in edges[:, :2].astype(int):
        destinations.setdefault(int(source), set()).add(int(destination))
    return tuple(dataclasses.replace(core, routes=tuple(sorted(destinations.get(core.index, ())))) for core in cores)


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


def _serpentine(rows: int, cols: int) -> list[tuple[int, int]]:
    return [(r, c if r % 2 == 0 else cols - 1 - c) for r in range(rows) for c in range(cols)]


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


def core_traffic(graph: Graph, cores: tuple[Core, ...], rates: dict[str, np.ndarray]) -> np.ndarray:
    """Messages per step between cores: rows of (source core, destination core, messages)."""
    where: dict[str, list[tuple[Tile, int]]] = {}
    for core in cores:
        for tile in core.tiles:
            where.setdefault(tile.population, []).append((tile, core.index))
    blocks = []
    for target, maps in geometry.projections(graph).items():
        for index, p in enumerate(maps):
            blocks.append(_projection_traffic(p, index, where.get(p.source, []), where[target], rates.get(p.source)))
        blocks.append(_accumulation_traffic(where[target]))
    edges = np.concatenate([b for b in blocks if len(b)]) if any(len(b) for b in blocks) else np.zeros((0, 3))
    return edges[edges[:, 0] != edges[:, 1]] if len(edges) else edges


def _projection_traffic(p: geometry.Projection, index: int, sources, targets, rate) -> np.ndarray:
    """For every (source tile, target tile): rate-weighted source neurons of the one that the other reads."""
    if not sources:  # the input layer (rate-coded input arrives from the host)
        return np.zeros((0, 3))
    channel_rate = np.ones(p.channels.shape[1]) if rate is None else np.asarray(rate, np.float64)
    reads = _reads(p, index, targets)
    has = [np.stack([_indicator(size, t.box[k]) for t, _ in sources]) for k, size in
           enumerate((p.channels.shape[1], p.rows.shape[1], p.cols.shape[1]))]
    overlap = (reads[0] * channel_rate) @ has[0].T
    for k in (1, 2):
        overlap = overlap * (reads[k] @ has[k].T)
    t_index, s_index = np.nonzero(overlap)
    source_cores = np.array([c for _, c in sources])[s_index]
    target_cores = np.array([c for _, c in targets])[t_index]
    return np.stack([source_cores, target_cores, overlap[t_index, s_index]], axis=1)


def _reads(p: geometry.Projection, index: int, targets) -> list[np.ndarray]:
    """Per target tile and axis, which source positions it reads (restricted to its input group).

    ``index``: the synapse map's place in its target's list, which a tile's ``inputs`` follow.
    """
    masks = []
    for k, axis in enumerate((p.channels, p.rows, p.cols)):
        rows = []
        for tile, _ in targets:
            lo, hi = tile.box[k]
            used = axis[lo:hi].sum(axis=0) > 0
            if k == 0 and tile.groups > 1:
                group = np.zeros_like(used)
                _, lo, hi = tile.inputs[index]
                group[lo:hi] = True
                used = used & group
            rows.append(used)
        masks.append(np.stack(rows).astype(np.float64))
    return masks


def _indicator(size: int, span: tuple[int, int]) -> np.ndarray:
    out = np.zeros(size)
    out[span[0]:span[1]] = 1
    return out


def _accumulation_traffic(tiles) -> np.ndarray:
    """Accumulating groups send each neuron's partial current to the neuron's own core every step."""
    somas = [(t, c) for t, c in tiles if t.group == 0]
    rows = []
    for tile, core in tiles:
        if tile.group == 0:
            continue
        for soma, soma_core in somas:
            shared = math.prod(max(0, min(a[1], b[1]) - max(a[0], b[0])) for a, b in zip(tile.box, soma.box))
            if shared:
                rows.append((core, soma_core, float(shared)))
    return np.array(rows) if rows else np.zeros((0, 3))


def _summarize(edges: np.ndarray, cores: tuple[Core, ...]) -> dict:
    """Totals within and across chips, hop-weighted on chip, and per chip what leaves each core."""
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
