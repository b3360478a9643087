"""Who connects to whom: each synapse map of a lowered graph as a product of three small matrices.

A neuron population of shape (C, H, W) (a vector population (F,) is (F, 1, 1)) receives
spikes from a source population through one weighted layer and weight-free routing. For
the layers snnconv lowers to (zero padding, nearest upsampling, sum pooling, convolution, affine, dense after
flatten, concat, add), the connection count between target neuron ``(c, y, x)`` and
source neuron ``(c', y', x')`` factorizes:

    n[(c, y, x), (c', y', x')] = channels[c, c'] * rows[y, y'] * cols[x, x']

where each factor says whether some path joins the two positions along one axis (1) or
none (0). The paths themselves may be several: a sum pool window overlapping itself, or
a 3x3 conv after a 2x nearest upsample, whose taps reach one source up to twice per axis;
the chip's table holds one synapse per (target, source) pair, their weights summed, so
the factors keep only whether a pair is joined (the nonzero pattern of a Kronecker
product is the product of the factors' patterns). So a box of target neurons (a tile)
needs as input axons ``nnz_cols(channels[box]) * nnz_cols(rows[box]) * nnz_cols(cols[box])``
distinct source neurons and holds ``sum(channels[box]) * sum(rows[box]) * sum(cols[box])``
synapses, computed from matrices of at most a few thousand rows, never from the
millions of synapses of a real layer. A chain this cannot describe (a flatten between a
convolution and its neurons) falls back to all-to-all, an upper bound, with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnconv.errors import DoesNotFitError, UnsupportedOpError
from snnconv.ir import IF, Add, Affine, Concat, Conv, Dense, Flatten, Graph, Input, Layer, Output, Pad, Pool, Upsample

__all__ = ["Projection", "host_computed", "is_integrator", "is_population", "is_routing", "is_spike_source",
           "is_weighted", "population_box_shape", "populations", "projections"]


MAX_AXIS = 4096  # positions along one axis (channels, rows or columns) of any layer that is mapped to cores


@dataclass(frozen=True, eq=False)
class Projection:
    """One synapse map: ``source`` population -> ``target`` population through ``weighted``."""

    source: str
    target: str
    weighted: str
    channels: np.ndarray  # (target C, source C) 1 where a path joins the two, else 0
    rows: np.ndarray  # (target H, source H)
    cols: np.ndarray  # (target W, source W)
    exact: bool  # False: an all-to-all upper bound stands in for a chain not described exactly

    def synapses(self) -> int:
        return int(self.channels.sum()) * int(self.rows.sum()) * int(self.cols.sum())


# The one vocabulary of a lowered graph's layers, used by the passes, the report and the chip model.


def is_population(layer: Layer) -> bool:
    """Layers that occupy neurons on a chip: IF layers, the output integrator, spiking max pools."""
    return isinstance(layer, (IF, Output)) or isinstance(layer, Pool) and layer.mode == "max"


def is_integrator(layer: Layer) -> bool:
    """Populations whose neurons integrate weighted input (IF layers and the output), not max pools."""
    return isinstance(layer, (IF, Output))


def is_spike_source(layer: Layer) -> bool:
    """Layers whose output is spikes (0 or 1 per step): the input when encoded, IF layers, spiking max pools."""
    return isinstance(layer, (Input, IF)) or isinstance(layer, Pool) and layer.mode == "max"


def is_weighted(layer: Layer) -> bool:
    """Layers that hold synapse weights."""
    return isinstance(layer, (Conv, Dense, Affine))


def is_routing(layer: Layer) -> bool:
    """Weight-free layers a chip does by routing spikes."""
    return isinstance(layer, (Flatten, Pad, Upsample, Add, Concat)) or isinstance(layer, Pool) and layer.mode == "sum"


def populations(graph: Graph) -> list[Layer]:
    return [layer for layer in graph if is_population(layer)]


def population_box_shape(layer: Layer) -> tuple[int, int, int]:
    """A population's neurons as a (C, H, W) box; vectors are (F, 1, 1)."""
    return tuple(layer.shape) if len(layer.shape) == 3 else (int(math.prod(layer.shape)), 1, 1)


def projections(graph: Graph) -> dict[str, list[Projection]]:
    """Every population's incoming synapse maps (host-computed inputs have none: they arrive as biases).

    Computed once per graph; callers read, never change, what they get.
    """
    return graph.derived("projections", lambda: _projections(graph))


def _projections(graph: Graph) -> dict[str, list[Projection]]:
    _refuse_long_axes(graph)
    host = host_computed(graph)
    result: dict[str, list[Projection]] = {layer.name: [] for layer in graph if is_population(layer)}
    for layer in graph:
        if isinstance(layer, Pool) and layer.mode == "max":
            result[layer.name].append(_compose(graph, layer.inputs[0], layer.name, layer, [], []))
            continue
        if not isinstance(layer, (Conv, Dense, Affine)) or layer.name in host:
            continue
        for target, down in _downstream_paths(graph, layer):
            for source, up in _upstream_paths(graph, layer):
                result[target].append(_compose(graph, source, target, layer, up, down))
    return result


def host_computed(graph: Graph) -> frozenset[str]:
    """Layers that depend on a constant-current input only: the host computes them once (none for rate input)."""
    return graph.derived("host_computed", lambda: _host_computed(graph))


def _host_computed(graph: Graph) -> frozenset[str]:
    if graph.fact("encoding", "current") != "current":
        return frozenset()
    host = {graph.input.name}
    for layer in graph.layers[1:]:
        if not is_population(layer) and layer.inputs and all(src in host for src in layer.inputs):
            host.add(layer.name)
    return frozenset(host)


def _refuse_long_axes(graph: Graph) -> None:
    """Refuse a layer longer than ``MAX_AXIS`` along one axis before any matrix of that size is built.

    The per-axis matrices are dense (out x in), so one axis of n positions costs n^2
    entries: a 1 MB model with a 1x1 convolution to 262,144 channels would ask for 550 GB.
    A flatten read only by a dense layer is not measured: the pair is mapped on the
    flatten's input box (``_flatten_before_dense``), so VGG's 512 x 7 x 7 features never
    form one axis of 25,088.
    """
    for layer in graph:
        if isinstance(layer, Flatten) and _read_by_one_dense(layer, graph):
            continue
        axes = population_box_shape(layer)
        if max(axes) > MAX_AXIS:
            raise DoesNotFitError(f"layer {layer.name!r} ({layer.kind}, shape {list(layer.shape)}): {max(axes):,} "
                                  f"positions along one axis, more than the {MAX_AXIS:,} snnconv maps onto cores; "
                                  "split the layer, or reshape a long vector into channels x rows x columns")


def _upstream_paths(graph: Graph, weighted: Layer) -> list[tuple[str, list[tuple[Layer, int]]]]:
    """(source, [(routing layer, which input), ...] from the source to the weighted layer)."""
    paths = []

    def walk(name: str, reader: Layer, index: int, trail: list) -> None:
        layer = graph[name]
        step = trail + [(reader, index)]
        if is_spike_source(layer):
            paths.append((name, list(reversed(step[1:]))))
            return
        for i, src in enumerate(layer.inputs):
            walk(src, layer, i, step)

    walk(weighted.inputs[0], weighted, 0, [])
    return paths


def _downstream_paths(graph: Graph, weighted: Layer) -> list[tuple[str, list[tuple[Layer, int]]]]:
    """(target population, [(routing layer, which of its inputs the path enters), ...])."""
    paths = []

    def walk(name: str, trail: list) -> None:
        for reader in graph.consumers(name):
            index = reader.inputs.index(name)
            if is_population(reader):
                paths.append((reader.name, trail))
            else:
                walk(reader.name, trail + [(reader, index)])

    walk(weighted.name, [])
    return paths


def _compose(graph: Graph, source: str, target: str, weighted: Layer, up: list, down: list) -> Projection:
    """Multiply the per-axis matrices of every layer from the source to the target."""
    shape = population_box_shape(graph[source])
    factors = [np.eye(n, dtype=np.int64) for n in shape]  # maps source -> current position
    exact = True
    for layer, index in up + [(weighted, 0)] + down:
        current = tuple(f.shape[0] for f in factors)
        in_shape = current if isinstance(layer, Dense) else _box(graph.input_shapes(layer)[index])
        step = _axis_maps(layer, index, in_shape, graph)
        if step is None:
            exact = False
            break
        factors = [_product(m, f) for m, f in zip(step, factors)]
    if not exact:
        target_shape = population_box_shape(graph[target])
        factors = [np.ones((t, s), np.int64) for t, s in zip(target_shape, shape)]
    joined = [(f > 0).astype(np.int64) for f in factors]  # paths counted above; one synapse per joined pair
    return Projection(source, target, weighted.name, *joined, exact)


def _box(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (int(math.prod(shape)), 1, 1)


def _product(m: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``m @ f`` exactly (through BLAS: the counts are small integers), skipping the product where either is the
    identity, as most axes of most layers are (ResNet-50's 2,048-channel products were most of 9 s per load)."""
    if _is_identity(m):
        return f
    if _is_identity(f):
        return m
    return (m.astype(np.float64) @ f.astype(np.float64)).round().astype(np.int64)


def _is_identity(m: np.ndarray) -> bool:
    return m.shape[0] == m.shape[1] and np.count_nonzero(m) == len(m) and bool(np.all(np.diagonal(m) == 1))


def _axis_maps(layer: Layer, index: int, in_shape: tuple[int, int, int], graph: Graph):
    """The (channels, rows, cols) matrices of one layer (out x in), or None if not a product."""
    c, h, w = in_shape
    if isinstance(layer, (Affine, Add)):
        return [np.eye(n, dtype=np.int64) for n in in_shape]
    if isinstance(layer, Pad):
        top, left, bottom, right = layer.pads
        return [np.eye(c, dtype=np.int64), _shift(h, top, bottom), _shift(w, left, right)]
    if isinstance(layer, Pool):
        return [np.eye(c, dtype=np.int64), *_windows(layer, h, w)]
    if isinstance(layer, Upsample):
        return [np.eye(c, dtype=np.int64), _repeat(h, layer.factor[0]), _repeat(w, layer.factor[1])]
    if isinstance(layer, Conv):
        return [_grouped(layer), *_windows(layer, h, w)]
    if isinstance(layer, Concat):
        offset = sum(_box(s)[0] for s in graph.input_shapes(layer)[:index])
        total = layer.shape[0]
        channels = np.zeros((total, c), np.int64)
        channels[offset + np.arange(c), np.arange(c)] = 1
        return [channels, np.eye(h, dtype=np.int64), np.eye(w, dtype=np.int64)]
    if isinstance(layer, Flatten):
        return [np.eye(c, dtype=np.int64), np.eye(h, dtype=np.int64), np.eye(w, dtype=np.int64)] \
            if h == w == 1 else _flatten_before_dense(layer, in_shape, graph)
    if isinstance(layer, Dense):
        return [np.ones((layer.shape[0], c), np.int64), np.ones((1, h), np.int64), np.ones((1, w), np.int64)]
    raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}) cannot sit between neuron populations")


def _flatten_before_dense(layer: Flatten, in_shape, graph: Graph):
    """A flatten whose only reader is a dense layer: the pair connects every input to every output."""
    if _read_by_one_dense(layer, graph):
        c, h, w = in_shape
        return [np.eye(c, dtype=np.int64), np.eye(h, dtype=np.int64), np.eye(w, dtype=np.int64)]
    return None


def _read_by_one_dense(layer: Layer, graph: Graph) -> bool:
    readers = graph.consumers(layer.name)
    return len(readers) == 1 and isinstance(readers[0], Dense)


def _shift(size: int, before: int, after: int) -> np.ndarray:
    out = np.zeros((size + before + after, size), np.int64)
    out[before + np.arange(size), np.arange(size)] = 1
    return out


def _repeat(size: int, factor: int) -> np.ndarray:
    """Nearest upsampling along one axis: output ``o`` reads input ``o // factor``."""
    return np.repeat(np.eye(size, dtype=np.int64), factor, axis=0)


def _windows(layer: Pool | Conv, h: int, w: int) -> list[np.ndarray]:
    """Rows and columns: output position o reads inputs o * stride - pad + j * dilation, j < kernel."""
    kernel = layer.kernel if isinstance(layer, Pool) else layer.weight.shape[2:]
    top, left = layer.pads[0], layer.pads[1]
    maps = []
    for size, out, k, s, p, d in ((h, layer.shape[1], kernel[0], layer.stride[0], top, layer.dilation[0]),
                                  (w, layer.shape[2], kernel[1], layer.stride[1], left, layer.dilation[1])):
        matrix = np.zeros((out, size), np.int64)
        positions = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
        rows = np.repeat(np.arange(out), k)
        valid = (positions.reshape(-1) >= 0) & (positions.reshape(-1) < size)
        np.add.at(matrix, (rows[valid], positions.reshape(-1)[valid]), 1)
        maps.append(matrix)
    return maps


def _grouped(conv: Conv) -> np.ndarray:
    """Output channel o reads the input channels of its group."""
    out_channels, per_group = conv.weight.shape[:2]
    group = np.arange(out_channels) // (out_channels // conv.groups)
    in_channels = per_group * conv.groups
    return (np.arange(in_channels)[None, :] // per_group == group[:, None]).astype(np.int64)
