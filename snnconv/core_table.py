"""The artifact's core table as four integer arrays, and its checks on reading them back.

A network of hundreds of thousands of cores (DenseNet-121 on loihi: 266,702) wrote a
315 MB JSON core table, more than a reader may be asked to parse; as arrays the same
table is about 0.2 GB unpacked (its 37.9 M routes at 4 bytes each) and 5.5 MB zipped,
checked with a few vectorized comparisons. Each array has one row per item and named
columns (``COLUMNS``); a row's count column says how many rows of the next array it
owns, in order:

    cores   chip, row, column, tiles, routes    (the mesh place; how many tiles and routes)
    tiles   population, box (6), resources (4), group, groups, inputs
    inputs  source, first channel, end channel  (per synapse map of the tile's group)
    routes  core                                (a destination core)

Populations and sources are indices into the manifest's ``names``. ``decode`` refuses,
before building anything, counts that do not add up, a table whose objects would take
more than ``MAX_OBJECT_BYTES``, any value outside its column's range, tiles outside
their population or with input groups that do not fit its synapse maps, routes to cores
that do not exist; then that every neuron of every population is on exactly one core.
"""

from __future__ import annotations

import math

import numpy as np

from snnconv import geometry
from snnconv.errors import BadArtifactError
from snnconv.ir import Graph, Layer
from snnconv.mapping import Core, Resources, Tile

__all__ = ["COLUMNS", "MAX_OBJECT_BYTES", "ROW_BYTES", "decode", "encode", "object_bytes"]

COLUMNS = {
    "cores": ("chip", "row", "column", "tiles", "routes"),
    "tiles": ("population", "channel_start", "channel_stop", "row_start", "row_stop", "column_start", "column_stop",
              "neurons", "axons", "synapses", "memory_bits", "group", "groups", "inputs"),
    "inputs": ("source", "start", "stop"),
    "routes": ("core",),
}
# What the rows take once built as Python objects, in bytes (measured with tracemalloc: a tile with its box and
# resources, an input range, a core with its place, one route), and what a reader builds at most. DenseNet-121 on
# loihi, the largest table compiled (benchmarks/compile_zoo.py), takes 1.85 GB by this count, 1.5 GB of it its
# 37.9 M routes.
ROW_BYTES = {"cores": 350, "tiles": 850, "inputs": 150, "routes": 40}
MAX_OBJECT_BYTES = 2 << 30
_MAX = 1 << 31  # counts and sizes, far below this
_UNPLACED = ("chip", "row", "column")  # -1 before placement


def encode(cores: tuple[Core, ...]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The names the table refers to, and its four arrays (int32) keyed as in ``COLUMNS``."""
    names: dict[str, int] = {}
    rows: dict[str, list[tuple[int, ...]]] = {key: [] for key in COLUMNS}
    for core in cores:
        rows["cores"].append((core.chip, *core.position, len(core.tiles), len(core.routes)))
        rows["routes"].extend((destination,) for destination in core.routes)
        for tile in core.tiles:
            resources, box = tile.resources, (i for axis in tile.box for i in axis)
            rows["tiles"].append((names.setdefault(tile.population, len(names)), *box, resources.neurons,
                                  resources.axons, resources.synapses, resources.memory_bits, tile.group, tile.groups,
                                  len(tile.inputs)))
            rows["inputs"].extend((names.setdefault(source, len(names)), start, stop)
                                  for source, start, stop in tile.inputs)
    return list(names), {key: np.array(rows[key], np.int32).reshape(-1, len(COLUMNS[key])) for key in COLUMNS}


def decode(names: list[str], arrays: dict[str, np.ndarray], graph: Graph, where: str) -> tuple[Core, ...]:
    """The cores of ``arrays`` (as ``encode`` writes them), each checked against ``graph``; else BadArtifactError."""
    _check_size({key: len(arrays[key]) if arrays[key].ndim else 1 for key in COLUMNS}, where)
    table = {key: _checked(key, arrays[key], where) for key in COLUMNS}
    cores, tiles, inputs, routes = table.values()
    _check_counts(table, where)
    core_of_tile = np.repeat(np.arange(len(cores)), cores[:, 3])
    first_tile = np.concatenate([[0], np.cumsum(cores[:, 3])])

    def tile_label(row: int) -> str:
        core = int(core_of_tile[row])
        return f"{where}: core {core}, tile {row - int(first_tile[core])}"

    _check_tiles(tiles, inputs, names, graph, tile_label)
    bad = np.flatnonzero(routes[:, 0] >= len(cores))
    if bad.size:
        core = int(np.searchsorted(np.cumsum(cores[:, 4]), bad[0], side="right"))
        raise BadArtifactError(f"{where}: core {core}: routes name core {int(routes[bad[0], 0])}, beyond the "
                               f"{len(cores):,} there are")
    built = _build(cores, tiles, inputs, routes, names)
    _check_coverage(built, graph, where)
    return built


def _checked(key: str, array: np.ndarray, where: str) -> np.ndarray:
    """``array`` as int64 rows of ``COLUMNS[key]``, every value in its column's range."""
    columns = COLUMNS[key]
    if array.dtype.kind not in "iu" or array.ndim != 2 or array.shape[1] != len(columns):
        raise BadArtifactError(f"{where}: {key} is a {array.dtype} array of shape {array.shape}, not integer rows of "
                               f"{len(columns)} ({', '.join(columns)}); the file was altered: compile the model again")
    values = array.astype(np.int64)
    low = np.array([-1 if column in _UNPLACED else 0 for column in columns])
    outside = (values < low) | (values >= _MAX)
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise BadArtifactError(f"{where}: {key} row {row}: {columns[column]} = {values[row, column]} is not an "
                               f"integer in [{low[column]}, {_MAX}); the file was altered: compile the model again")
    return values


def object_bytes(rows: dict[str, int]) -> int:
    """About what a table of ``rows`` rows per array takes as Python objects (``ROW_BYTES``)."""
    return sum(ROW_BYTES[key] * count for key, count in rows.items())


def _check_size(rows: dict[str, int], where: str) -> None:
    """Refuse, before converting a value, a table whose objects would take more than ``MAX_OBJECT_BYTES``."""
    size = object_bytes(rows)
    if size > MAX_OBJECT_BYTES:
        raise BadArtifactError(f"{where}: {', '.join(f'{count:,} {key}' for key, count in rows.items())} take about "
                               f"{size:,} bytes as objects, more than a core table holds ({MAX_OBJECT_BYTES:,}); "
                               "refused: the file is damaged or not from snnconv")


def _check_counts(table: dict[str, np.ndarray], where: str) -> None:
    """The count columns add up to the rows of the arrays they own."""
    for owner, column, owned in (("cores", 3, "tiles"), ("cores", 4, "routes"), ("tiles", 13, "inputs")):
        claimed = int(table[owner][:, column].sum())
        if claimed != len(table[owned]):
            raise BadArtifactError(f"{where}: the {owner} claim {claimed:,} {owned} but {len(table[owned]):,} are "
                                   "listed; the core table is damaged: compile the model again")


def _check_tiles(tiles: np.ndarray, inputs: np.ndarray, names: list[str], graph: Graph, label) -> None:
    """Each tile a box inside a population of neurons, its input group among its groups, one input range per synapse
    map where the group is one of several, each source a name and each range in order."""
    incoming = geometry.projections(graph)
    extents = np.array([geometry.population_box_shape(graph[name]) if name in incoming else (0, 0, 0)
                        for name in names], np.int64).reshape(-1, 3)
    maps = np.array([len(incoming.get(name, ())) for name in names], np.int64)
    population = tiles[:, 0]
    unknown = np.flatnonzero(population >= len(names))
    if unknown.size:
        raise BadArtifactError(f"{label(unknown[0])}: population {population[unknown[0]]} is not one of the "
                               f"{len(names)} names")
    stranger = np.flatnonzero(~np.isin(population, [i for i, name in enumerate(names) if name in incoming]))
    if stranger.size:
        name = names[population[stranger[0]]]
        raise BadArtifactError(f"{label(stranger[0])}: {name[:40]!r} is not a population of neurons in the program")
    starts, stops, extent = tiles[:, 1:7:2], tiles[:, 2:7:2], extents[population]
    outside = np.flatnonzero(~np.all((starts < stops) & (stops <= extent), axis=1))
    if outside.size:
        row = outside[0]
        box = [[int(a), int(b)] for a, b in zip(starts[row], stops[row])]
        raise BadArtifactError(f"{label(row)}: box {box} is not inside {names[population[row]]!r} of "
                               f"{tuple(int(e) for e in extent[row])}")
    group, groups, count = tiles[:, 11], tiles[:, 12], tiles[:, 13]
    misfit = np.flatnonzero((groups < 1) | (group >= groups) | (groups > 1) & (count != maps[population]))
    if misfit.size:
        row = misfit[0]
        raise BadArtifactError(f"{label(row)}: group {group[row]} of {groups[row]} with {count[row]} input ranges "
                               f"does not fit the {maps[population[row]]} synapse maps of {names[population[row]]!r}")
    wrong = np.flatnonzero((inputs[:, 0] >= len(names)) | (inputs[:, 1] > inputs[:, 2]))
    if wrong.size:
        row = int(np.searchsorted(np.cumsum(count), wrong[0], side="right"))
        source, start, stop = (int(v) for v in inputs[wrong[0]])
        raise BadArtifactError(f"{label(row)}: input [{source}, {start}, {stop}] is not [a name of the "
                               f"{len(names)}, first channel, end channel]")


def _build(cores: np.ndarray, tiles: np.ndarray, inputs: np.ndarray, routes: np.ndarray,
           names: list[str]) -> tuple[Core, ...]:
    """The checked rows as ``Core`` and ``Tile`` objects (plain Python ints, as the partition makes them)."""
    tile_rows, input_rows, route_rows = tiles.tolist(), inputs.tolist(), routes[:, 0].tolist()
    next_tile = next_input = next_route = 0
    built = []
    for index, (chip, row, column, tile_count, route_count) in enumerate(cores.tolist()):
        held = []
        for population, c0, c1, r0, r1, x0, x1, neurons, axons, synapses, bits, group, groups, count in \
                tile_rows[next_tile:next_tile + tile_count]:
            ranges = tuple((names[source], start, stop) for source, start, stop in
                           input_rows[next_input:next_input + count])
            next_input += count
            held.append(Tile(names[population], ((c0, c1), (r0, r1), (x0, x1)),
                             Resources(neurons, axons, synapses, bits), group, groups, ranges))
        next_tile += tile_count
        destinations = tuple(route_rows[next_route:next_route + route_count])
        built.append(Core(index, tuple(held), chip, (row, column), destinations))
        next_route += route_count
    return tuple(built)


def _check_coverage(cores: tuple[Core, ...], graph: Graph, where: str) -> None:
    """Every neuron of every population on exactly one core, once per input group.

    The chip model and the report look up the cores of each population: a table that leaves
    one out (an empty table, say) or holds a neuron twice describes no chip.
    """
    boxes: dict[tuple[str, int], list] = {}
    groups: dict[str, set[int]] = {}
    for core in cores:
        for tile in core.tiles:
            boxes.setdefault((tile.population, tile.group), []).append(tile.box)
            groups.setdefault(tile.population, set()).add(tile.groups)
    for layer in geometry.populations(graph):
        counts = groups.get(layer.name, set())
        if len(counts) != 1:
            found = f"tiles in {sorted(counts)} input groups" if counts else "no tile on any core"
            raise BadArtifactError(f"{where}: population {layer.name!r} has {found}; the core table is damaged: "
                                   "compile the model again")
        for group in range(counts.pop()):
            _check_cover(layer, group, boxes.get((layer.name, group), []), where)


def _check_cover(layer: Layer, group: int, boxes: list, where: str) -> None:
    """``boxes`` hold each neuron of ``layer`` once: their sizes add up to the population's and no two overlap."""
    extent = geometry.population_box_shape(layer)
    held = sum(math.prod(stop - start for start, stop in box) for box in boxes)
    if held == math.prod(extent):
        covered = np.zeros(extent, bool)
        for (c0, c1), (r0, r1), (x0, x1) in boxes:
            window = covered[c0:c1, r0:r1, x0:x1]
            if window.any():
                break
            window[...] = True
        else:
            return
    raise BadArtifactError(f"{where}: the tiles of {layer.name!r} (input group {group}) hold {held:,} neurons, not "
                           f"its {math.prod(extent):,} once each; the core table is damaged: compile the model again")
