"""Lower to synapses: one weighted layer on every path from a spike source to a neuron population.

A chip connects spike sources (IF populations, spiking max pools, spike-encoded input)
to neuron populations (IF layers, the output integrator) through synapses: one weight
per connection. So every path from a source to a population must cross exactly one
weighted layer (conv, dense, or affine, an affine being one synapse per neuron), with
only weight-free routing around it (flatten, zero pad, nearest upsampling, sum pooling,
add, concat). This pass makes it so, exactly in float arithmetic:

- average pooling becomes sum pooling followed by an affine ``1 / count`` (one value,
  or one per position where borders count fewer elements): a pooling window's spikes
  all reach the same synapse;
- an affine read by several layers is copied per reader, consecutive affines merge, a
  per-channel scale moves past a sum pool, and each affine folds into the weighted layer
  next to it: backwards into the conv/dense producing it (``w * s``, ``b * s + t``; also
  through sum pooling, as ``t / K`` where every window sums ``K`` real elements, and
  through nearest upsampling, both of which commute with a per-channel scale), or
  forwards into the conv/dense reading it (``w[:, c] * s[c]``, also through nearest
  upsampling; through flatten into a dense, ``w * s`` by column and ``b + w @ t``);
- where only other readers of the conv or of a pool after it stop an affine from folding
  back (DenseNet's transition conv -> avg pool, read by the next block's concat and its
  first BatchNorm), the affine gets its own copy of conv and pool (a second synapse map);
- two pointwise layers in a row (dense -> dense, 1x1 conv -> 1x1 conv: a linear
  bottleneck without ReLU) compose into one, ``W2 W1``, ``W2 b1 + b2``; a pointwise layer
  reading a sum of such terms (MobileNet-v2's residual stream) is first distributed over
  the sum, ``W (a + b) + c = (W a + c) + W b``;
- a path with no weighted layer (an identity shortcut) gets an affine of scale 1 (an
  upsample or zero pad shared with weighted paths is first copied per reader, so that
  affine sits on the shortcut only).

Paths from a constant-current input are computed by the host and are left alone.
What cannot be lowered (two weighted layers with no neurons between them) is refused
with the layers named.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from snnconv import ann
from snnconv.errors import UnsupportedOpError
from snnconv.geometry import host_computed, is_integrator, is_routing, is_spike_source, is_weighted
from snnconv.ir import Add, Affine, Conv, Dense, Flatten, Graph, Layer, Pad, Pool, Upsample
from snnconv.ir.rewrite import PassResult, bypass, rewire

__all__ = ["LowerToSynapses"]


class LowerToSynapses:
    name = "lower_to_synapses"

    def run(self, graph: Graph) -> PassResult:
        layers = _sum_pools(graph)
        host = host_computed(graph)
        fired: dict[str, int] = {"average_pools": sum(1 for a in graph if isinstance(a, Pool) and a.mode == "avg")}
        while True:
            for rule in (_one_affine_per_reader, _merge_affines, _fold_backward, _fold_forward, _past_sum_pool,
                         _compose, _distribute, _copy_for_affine):
                rewritten = rule(layers, host)
                if rewritten is not None:
                    layers = rewritten
                    fired[rule.__name__.strip("_")] = fired.get(rule.__name__.strip("_"), 0) + 1
                    break
            else:
                break
        layers, fired["identity_synapses"] = _identity_synapses(layers, host)
        lowered = graph.rebuilt(layers, lowered=True)
        _check_one_weighted_layer_per_path(lowered, host)
        return PassResult(lowered, any(fired.values()), {"rewrites": fired})


def _sum_pools(graph: Graph) -> list[Layer]:
    """Each average pool becomes a sum pool and an affine by 1 / (elements counted per window)."""
    result = []
    for layer in graph:
        if not (isinstance(layer, Pool) and layer.mode == "avg"):
            result.append(layer)
            continue
        summed = dataclasses.replace(layer, name=f"{layer.name}/sum", mode="sum")
        scale = _inverse_counts(layer, graph.input_shapes(layer)[0])
        result += [summed, Affine(name=layer.name, inputs=(summed.name,), shape=layer.shape, scale=scale,
                                  shift=np.zeros(1, np.float32))]
    return result


def _inverse_counts(pool: Pool, in_shape: tuple[int, ...]) -> np.ndarray:
    """``1 / count`` per output position (1, H, W), as one value when all windows count alike."""
    ones = [torch.ones((1, 1, *in_shape[1:]), dtype=torch.float64)]
    averages = ann.apply_layer(pool, ones).numpy()[0]
    sums = ann.apply_layer(dataclasses.replace(pool, mode="sum"), ones).numpy()[0]
    inverse = averages / sums
    return np.full((1, 1, 1), inverse.flat[0]) if np.all(inverse == inverse.flat[0]) else inverse


def _readers(layers: list[Layer], name: str) -> list[Layer]:
    return [layer for layer in layers if name in layer.inputs]


def _by_name(layers: list[Layer]) -> dict[str, Layer]:
    return {layer.name: layer for layer in layers}


def _channel_scale(affine: Affine) -> np.ndarray | None:
    """The affine's scale as one value per channel (per feature of a vector); None if it varies by position."""
    return _channel_values(affine.scale, affine.shape)


def _channel_values(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` broadcast to ``shape`` as one value per channel; None if it varies by position."""
    full = np.broadcast_to(array, shape)
    flat = full.reshape(full.shape[0], -1)
    return flat[:, 0].astype(np.float64) if np.all(flat == flat[:, :1]) else None


def _one_affine_per_reader(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """An affine read by several layers becomes one copy per reader, so each copy can fold its own way."""
    for affine in layers:
        readers = _readers(layers, affine.name) if isinstance(affine, Affine) and affine.name not in host else []
        if len(readers) > 1:
            extra = readers[1]
            copy = dataclasses.replace(affine, name=f"{affine.name}/for_{extra.name}")
            rewired = dataclasses.replace(extra, inputs=tuple(copy.name if src == affine.name else src
                                                              for src in extra.inputs))
            layers = [rewired if layer is extra else layer for layer in layers]
            layers.insert(layers.index(affine) + 1, copy)  # in order: _reaches_population_unweighted walks it so
            return layers
    return None


def _merge_affines(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """``affine -> affine`` is one affine: ``(x * s1 + t1) * s2 + t2``."""
    by_name = _by_name(layers)
    for second in layers:
        first = by_name.get(second.inputs[0]) if isinstance(second, Affine) and second.name not in host else None
        if isinstance(first, Affine) and len(_readers(layers, first.name)) == 1:
            merged = dataclasses.replace(second, inputs=first.inputs, scale=first.scale * second.scale,
                                         shift=first.shift * second.scale + second.shift)
            return [merged if layer is second else layer for layer in layers if layer is not first]
    return None


def _past_sum_pool(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """``affine -> sum pool`` becomes ``sum pool -> affine`` for a per-channel scale without shift
    (they commute), so the affine can reach a weighted layer or another affine after the pool."""
    for affine in layers:
        if not isinstance(affine, Affine) or affine.name in host or affine.shift.any():
            continue
        readers = _readers(layers, affine.name)
        pool = readers[0] if len(readers) == 1 else None
        if isinstance(pool, Pool) and pool.mode == "sum" and _channel_scale(affine) is not None:
            moved_pool = dataclasses.replace(pool, inputs=affine.inputs)
            scale = _channel_scale(affine).reshape(-1, *([1] * (len(pool.shape) - 1)))
            moved_affine = dataclasses.replace(affine, inputs=(pool.name,), shape=pool.shape, scale=scale)
            at = layers.index(pool) - 1  # after the affine's inputs, before the pool's readers: still in order
            layers = rewire([layer for layer in layers if layer is not affine and layer is not pool], pool.name,
                            affine.name)
            return layers[:at] + [moved_pool, moved_affine] + layers[at:]
    return None


def _chain_back(layers: list[Layer], affine: Affine) -> tuple[Layer, list[Layer], float] | None:
    """The conv/dense an affine's shift and per-channel scale can fold back into, the sum pools and upsamples
    between (in reading order), and the elements each output of the chain sums per element of the producer's
    (the product of the pools' window counts); None where there is none.

    A per-channel scale commutes with sum pooling and nearest upsampling. A shift ``t``
    passes back through a sum pool as ``t / K`` where every window sums ``K`` real
    elements (no padding in any window: DenseNet's 2x2/2 transition pool, ``K = 4``):
    ``sum_K(x + t / K) = sum_K(x) + t``; through an upsample as ``t``.
    """
    by_name = _by_name(layers)
    producer, between, count = by_name[affine.inputs[0]], [], 1.0
    while isinstance(producer, (Upsample, Pool)) and (isinstance(producer, Upsample) or producer.mode == "sum"):
        if isinstance(producer, Pool):
            window = _uniform_count(producer, by_name[producer.inputs[0]].shape)
            if window is None and affine.shift.any():
                return None
            count *= window or 1.0
        between.insert(0, producer)
        producer = by_name[producer.inputs[0]]
    if not isinstance(producer, (Conv, Dense)) or _channel_scale(affine) is None:
        return None
    return producer, between, count


def _uniform_count(pool: Pool, in_shape: tuple[int, ...]) -> float | None:
    """The real input elements every window of a sum pool adds, where all windows add as many; else None."""
    ones = [torch.ones((1, 1, *in_shape[1:]), dtype=torch.float64)]
    counts = ann.apply_layer(pool, ones).numpy()
    return float(counts.flat[0]) if np.all(counts == counts.flat[0]) else None


def _fold_backward(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """``conv/dense [-> sum pool | upsample ...] -> affine``: the affine's scale and shift go into the weights and
    bias (``_chain_back``: ``w * s``, ``b * s + t / K``)."""
    for affine in layers:
        if not isinstance(affine, Affine) or affine.name in host:
            continue
        found = _chain_back(layers, affine)
        if found is None:
            continue
        producer, between, count = found
        shift = affine.shift if not between else _channel_values(affine.shift, affine.shape)
        if shift is None or any(len(_readers(layers, x.name)) != 1 for x in [producer, *between]):
            continue
        channel_scale = _channel_scale(affine)
        weight = producer.weight * channel_scale.reshape(-1, *([1] * (producer.weight.ndim - 1)))
        bias = producer.bias * channel_scale.reshape(-1, *([1] * (producer.bias.ndim - 1)))
        if between:
            shift = (shift / count).reshape(-1, *([1] * (len(producer.shape) - 1)))
        bias = _add_shift(bias, shift, producer)
        folded = dataclasses.replace(producer, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
        layers = [folded if layer is producer else layer for layer in layers]
        return bypass(layers, affine.name)
    return None


def _compose(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """``dense -> dense`` or ``1x1 conv -> 1x1 conv`` (stride 1, no padding, one group) with nothing between:
    one layer (a first layer that others read too stays for them, so the composition costs its synapses again), ``W = W2 W1``, ``b = W2 b1 + b2`` (a linear bottleneck, a
    projection without ReLU read by the next layer). Exact in float64; where the second conv has a window or
    padding, the pair stays and is refused with both named."""
    by_name = _by_name(layers)
    for second in layers:
        first = by_name.get(second.inputs[0]) if isinstance(second, (Conv, Dense)) and second.name not in host \
            else None
        if first is None or type(first) is not type(second) or first.name in host \
                or not all(_pointwise(layer) for layer in (first, second)):
            continue
        w1, w2 = (layer.weight.astype(np.float64).reshape(layer.weight.shape[0], -1) for layer in (first, second))
        weight = (w2 @ w1).reshape(second.weight.shape[0], *first.weight.shape[1:])
        bias = w2 @ first.bias.astype(np.float64) + second.bias
        composed = dataclasses.replace(second, name=second.name, inputs=first.inputs,
                                       weight=weight.astype(np.float32), bias=bias.astype(np.float32))
        shared = len(_readers(layers, first.name)) > 1  # its other readers keep it: the composition is a copy
        return [composed if layer is second else layer for layer in layers if shared or layer is not first]
    return None


def _distribute(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """A pointwise layer reading a sum whose terms include a pointwise layer (MobileNet-v2's residual stream
    ``x + project(h)`` read by the next expansion): ``W (a + b) + c = (W a + c) + W b``, one copy of the layer
    per term (the bias on the first), summed; each copy then composes with its term (``_compose``) or reads
    spikes. A sum that other layers read too is first copied for this one (routing costs no synapses)."""
    by_name = _by_name(layers)
    for second in layers:
        add = by_name.get(second.inputs[0]) if _pointwise(second) and second.name not in host else None
        if not isinstance(add, Add) or add.name in host or not any(
                type(by_name[src]) is type(second) and _pointwise(by_name[src]) for src in add.inputs):
            continue
        copies = [dataclasses.replace(second, name=f"{second.name}/{index}", inputs=(src,),
                                      bias=second.bias if index == 0 else np.zeros_like(second.bias))
                  for index, src in enumerate(add.inputs)]
        total = Add(name=second.name, inputs=tuple(copy.name for copy in copies), shape=second.shape)
        keep_add = len(_readers(layers, add.name)) > 1
        at = layers.index(second)
        return [layer for layer in layers[:at] if keep_add or layer is not add] + copies + [total] \
            + layers[at + 1:]
    return None


def _pointwise(layer: Layer) -> bool:
    """A dense, or a conv of one position per output (1x1, stride 1, no padding, one group, per-channel bias)."""
    if isinstance(layer, Dense):
        return True
    return isinstance(layer, Conv) and layer.weight.shape[2:] == (1, 1) and layer.stride == (1, 1) \
        and not any(layer.pads) and layer.groups == 1 and layer.bias.ndim == 1


def _copy_for_affine(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """Last resort, where no other rule applies: an affine that could fold back into a conv/dense but for a layer
    of the chain that other layers read too (DenseNet's transition pool, read by the next block's concat and by
    its first BatchNorm) gets its own copy of the chain, into which it then folds. Exact; costs a second synapse
    map from the conv's sources (a copied weighted layer, no neurons)."""
    for affine in layers:
        found = _chain_back(layers, affine) if isinstance(affine, Affine) and affine.name not in host else None
        if found is None:
            continue
        producer, between, _ = found
        chain = [producer, *between]
        if all(len(_readers(layers, x.name)) == 1 for x in chain):
            continue
        copies, source = [], producer.inputs
        for layer in chain:
            copies.append(dataclasses.replace(layer, name=f"{layer.name}/for_{affine.name}", inputs=source))
            source = (copies[-1].name,)
        rewired = dataclasses.replace(affine, inputs=source)
        at = layers.index(affine)
        return layers[:at] + copies + [rewired] + layers[at + 1:]
    return None


def _add_shift(bias: np.ndarray, shift: np.ndarray, producer: Layer) -> np.ndarray:
    """``bias + shift``; a shift that varies over positions turns a conv's bias into a per-neuron map."""
    total = np.broadcast_to(bias.reshape(bias.shape + (1,) * (len(producer.shape) - bias.ndim)), producer.shape) \
        + np.broadcast_to(shift, producer.shape)
    if isinstance(producer, Conv) and np.all(total == total[:, :1, :1]):
        return total[:, 0, 0].copy()
    return total.copy()


def _fold_forward(layers: list[Layer], host: set[str]) -> list[Layer] | None:
    """``affine [-> upsample ...] -> conv`` (per-channel scale, no shift) or ``affine [-> flatten] -> dense``."""
    for affine in layers:
        if not isinstance(affine, Affine) or affine.name in host:
            continue
        readers = _readers(layers, affine.name)
        if len(readers) != 1:
            continue
        reader, flatten, upsampled = readers[0], None, False
        while isinstance(reader, Upsample) and len(_readers(layers, reader.name)) == 1:
            reader, upsampled = _readers(layers, reader.name)[0], True
        if isinstance(reader, Flatten) and not upsampled and len(_readers(layers, reader.name)) == 1:
            flatten, reader = reader, _readers(layers, reader.name)[0]
        if isinstance(reader, Dense) and not upsampled:
            folded = _scaled_dense_columns(reader, affine)
        elif isinstance(reader, Conv) and flatten is None and not affine.shift.any() \
                and _channel_scale(affine) is not None:
            folded = _scaled_conv_inputs(reader, affine)
        else:
            continue
        layers = [folded if layer is reader else layer for layer in layers]
        return bypass(layers, affine.name)
    return None


def _scaled_dense_columns(dense: Dense, affine: Affine) -> Dense:
    scale = np.broadcast_to(affine.scale, affine.shape).reshape(-1)
    shift = np.broadcast_to(affine.shift, affine.shape).reshape(-1)
    weight = dense.weight.astype(np.float64) * scale
    bias = dense.bias + dense.weight.astype(np.float64) @ shift
    return dataclasses.replace(dense, weight=weight.astype(np.float32), bias=bias.astype(np.float32))


def _scaled_conv_inputs(conv: Conv, affine: Affine) -> Conv:
    """Input channel ``c`` of the conv scaled by ``s[c]`` (grouped convs: each group its own channels)."""
    scale = _channel_scale(affine)
    per_group = conv.weight.shape[1]
    out_per_group = conv.weight.shape[0] // conv.groups
    group_of_output = np.arange(conv.weight.shape[0]) // out_per_group
    input_channel = group_of_output[:, None] * per_group + np.arange(per_group)[None, :]
    weight = conv.weight * scale[input_channel][:, :, None, None]
    return dataclasses.replace(conv, weight=weight.astype(np.float32))


def _identity_synapses(layers: list[Layer], host: set[str]) -> tuple[list[Layer], int]:
    """An affine of scale 1 on each edge from a source whose path onward has no weighted layer."""
    layers = _copy_per_reader(layers, host)
    by_name = _by_name(layers)
    unweighted = _reaches_population_unweighted(layers)
    result, inserted = list(layers), 0
    for layer in layers:
        new_inputs = []
        for src in layer.inputs:
            source = by_name[src]
            needs = is_spike_source(source) and src not in host and not isinstance(layer, Pool) \
                and (is_integrator(layer) or is_routing(layer) and layer.name in unweighted)
            if needs:
                name = f"{layer.name}/from_{src}"
                result.append(Affine(name=name, inputs=(src,), shape=source.shape,
                                     scale=np.ones((1,) * len(source.shape), np.float32),
                                     shift=np.zeros(1, np.float32)))
                inserted += 1
                src = name
            new_inputs.append(src)
        if tuple(new_inputs) != layer.inputs:
            result = [dataclasses.replace(x, inputs=tuple(new_inputs)) if x.name == layer.name else x for x in result]
    return result, inserted


def _copy_per_reader(layers: list[Layer], host: set[str]) -> list[Layer]:
    """An upsample or zero pad read by several layers, one of which reaches a population without a weighted
    layer, is copied per reader: the identity synapse that path needs goes before its own copy, not on the
    paths through the other readers' weights (routing copies cost nothing on a chip)."""
    while True:
        unweighted = _reaches_population_unweighted(layers)
        shared = next((layer for layer in layers if isinstance(layer, (Upsample, Pad)) and layer.name not in host
                       and layer.name in unweighted and len(_readers(layers, layer.name)) > 1), None)
        if shared is None:
            return layers
        extra = _readers(layers, shared.name)[1]
        copy = dataclasses.replace(shared, name=f"{shared.name}/for_{extra.name}")
        rewired = dataclasses.replace(extra, inputs=tuple(copy.name if src == shared.name else src
                                                          for src in extra.inputs))
        layers = [rewired if layer is extra else layer for layer in layers]
        layers.insert(layers.index(shared) + 1, copy)  # in order: the walks below go through the list in order


def _reaches_population_unweighted(layers: list[Layer]) -> set[str]:
    """Routing layers from which some path reaches a population without a weighted layer."""
    found: set[str] = set()
    for layer in reversed(layers):
        if not is_routing(layer):
            continue
        for reader in _readers(layers, layer.name):
            if is_integrator(reader) or reader.name in found:
                found.add(layer.name)
    return found


def _check_one_weighted_layer_per_path(graph: Graph, host: set[str]) -> None:
    """Count weighted layers along every path from a source; a population must see exactly one."""
    counts: dict[str, set[int]] = {}  # layer -> numbers of weighted layers on the paths reaching it
    crossed: dict[str, list[str]] = {}  # layer -> the weighted layers on those paths, in the graph's order
    order = {layer.name: index for index, layer in enumerate(graph)}
    for layer in graph:
        if is_spike_source(layer) and not is_integrator(layer) or layer.name in host:
            counts[layer.name], crossed[layer.name] = {0}, []
            if isinstance(layer, Pool):
                _check_max_pool_input(graph, layer)
            continue
        seen = set().union(*(counts[src] for src in layer.inputs))
        names = sorted({w for src in layer.inputs for w in crossed[src]}, key=order.get)
        if is_weighted(layer):
            seen, names = {c + 1 for c in seen}, names + [layer.name]
        if is_integrator(layer) and seen != {1} and not all(src in host for src in layer.inputs):
            _refuse_positional_average(graph, layer, names)
            raise UnsupportedOpError(
                f"layer {layer.name!r} ({layer.kind}) receives spikes through "
                f"{' or '.join(str(count) for count in sorted(seen))} weighted layers "
                f"({', '.join(names) or 'none'}); a chip needs exactly one synapse map between neuron "
                f"populations: put a ReLU between {' and '.join(names[-2:]) if len(names) > 1 else 'them'}, or "
                f"fuse them before export")
        counts[layer.name], crossed[layer.name] = (({0}, []) if is_integrator(layer) else (seen, names))


def _refuse_positional_average(graph: Graph, population: Layer, names: list[str]) -> None:
    """The refusal where one of the weighted layers is an average pool's division by a count that varies by
    position (count_include_pad=0 with padding: Inception's 3x3 pools divide border windows by 4 or 6, not 9).

    Its scale differs between positions of one channel, so it cannot join a conv's kernel
    (shared by all positions) or a dense's columns after a conv, and it sits between a
    sum pool and the conv that reads it: no one synapse map of the IR computes both.
    """
    for name in names:
        layer = graph[name]
        if isinstance(layer, Affine) and _channel_scale(layer) is None and f"{name}/sum" in graph:
            others = ", ".join(other for other in names if other != name)
            raise UnsupportedOpError(
                f"layer {population.name!r} ({population.kind}) receives spikes through average pool {name!r}, "
                f"whose windows at the borders count fewer elements (count_include_pad=0 with padding: a "
                f"division that varies by position), and then through {others}, whose weights are shared by all "
                f"positions: no one synapse map computes both; export the pool with count_include_pad=1 (then "
                f"check the model's accuracy with snnconv eval), or put a ReLU between the pool and {others}")


def _check_max_pool_input(graph: Graph, pool: Pool) -> None:
    source = graph[pool.inputs[0]]
    if isinstance(source, Affine) and np.any(np.asarray(source.scale) < 0):
        raise UnsupportedOpError(f"max pool {pool.name!r} reads {source.name!r}, which scales by negative factors "
                                 f"(a BatchNorm or Mul with a negative scale after a ReLU): the max of the scaled "
                                 f"values is the min of the ReLU's, which no spiking max pool computes; move the "
                                 f"scaling after the pool, or use an average pool")
    if not is_spike_source(source):
        raise UnsupportedOpError(f"max pool {pool.name!r} reads {source.name!r} ({source.kind}), not spikes; "
                                 f"spiking max pooling needs an IF layer before it")
