"""Fold batch normalization and other per-channel affine maps into the weighted layers.

A BatchNorm is the affine map ``y = s * x + t`` with ``s = gamma / sqrt(var + eps)`` and
``t = beta - mean * s``. Each affine map (from BatchNorm or from Sub/Mul/Div/Add by
constants) is folded, exactly in float arithmetic, by the first rule that applies; ``s``
must be one value per channel, ``t`` may vary within a channel where a rule says so.

Backward, into what produces its input, when that producer feeds nothing else:

- a conv/dense: ``W'[o] = s[o] * W[o]``, ``b' = s * b + t`` (per neuron if ``t`` varies);
- another affine: ``s2 (s1 x + t1) + t2 = (s2 s1) x + (s2 t1 + t2)``;
- an Add (pre-activation ResNet order, BN after the sum): ``s (a + b) + t =
  (s a + t) + (s b)``, one affine per branch, ``t`` on the first;
- a Concat (DenseNet order): the affine splits by channel ranges, one piece per
  concatenated branch, ``concat(a, b)`` scaled by ``(s_a, s_b)`` being
  ``concat(s_a a + t_a, s_b b + t_b)``;
- an average pool whose every window divides by its count of real elements (no
  counted padding): ``s avg(x) + t = avg(s x + t)`` for ``s``, ``t`` per channel, so the
  affine moves before the pool and folds on backward (DenseNet's transition conv -> 2x2
  average pool -> the next block's BatchNorms).

The pieces of an Add or Concat are folded backward in turn (through nested Adds and
Concats); the split is kept only if every piece folds, else nothing changes.

Forward, into every reader (each reader takes the whole map, or nothing changes):

- a conv: ``W'[o, c] = W[o, c] * s[c]`` and ``b' = b + W (*) t``, the second term computed
  by running the layer on the constant map ``t`` with the layer's own zero padding, so a
  shift near a padded border stays exact (the bias becomes per neuron if it varies);
- a dense: ``W' = W diag(s)``, ``b' = b + W t``;
- through a Flatten: ``flatten(s x + t) = flatten(s) flatten(x) + flatten(t)``;
- through average or sum pooling (BatchNorm after ReLU, before the pool):
  ``pool(s x + t) = s pool(x) + pool(t)``, a per-channel linear map, with ``pool(t)``
  computed on the constant map ``t`` (padding, ``count_include_pad`` and ``ceil_mode``
  make it vary at the borders);
- through max pooling only where ``s >= 0`` in every channel and ``t`` is per channel:
  ``max(s x + t) = s max(x) + t`` (a negative scale would turn the max into a min).

After Flatten or pooling the moved affine folds forward again (a pool, then a conv).

Last, where every reader is a ReLU (pre-activation ResNet-v2 and DenseNet blocks, whose
running sum or concat also feeds the next block): backward as above, but a producer
(conv/dense, affine, Add, Concat) that feeds other layers is copied for this BatchNorm,
and a branch that reaches a layer without weights (a spiking ReLU, a max pool) gets the
piece as a 1x1 depthwise conv, ``W[c, 0, 0, 0] = s[c]``, ``b = t``. Exact; each copy
costs the copied layer's synapses again, each depthwise conv one synapse per neuron.

An affine map that fits no rule (a negative scale before max pooling, a BatchNorm whose
readers are no conv/dense/pool/ReLU) is kept as an ``Affine`` layer and listed in the notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from snnconv import ann
from snnconv.ir import Add, Affine, BatchNorm, Concat, Conv, Dense, Flatten, Graph, Layer, Pool, ReLU
from snnconv.ir.rewrite import PassResult, bypass, rewire

__all__ = ["FoldBatchNorm"]


class FoldBatchNorm:
    name = "fold_batchnorm"

    def run(self, graph: Graph) -> PassResult:
        layers = [_as_affine(layer) if isinstance(layer, BatchNorm) else layer for layer in graph]
        changed = any(isinstance(layer, BatchNorm) for layer in graph)
        folded = []
        progress = True
        while progress:  # a fold can make another affine foldable (two affines in a row)
            progress = False
            for name in [layer.name for layer in layers if isinstance(layer, Affine)]:
                affine = _named(layers, name)
                rewritten = _fold_backward(layers, affine) or _fold_forward(layers, affine) \
                    or _fold_into_copies(layers, affine)
                if rewritten is not None:
                    layers, changed, progress = rewritten, True, True
                    folded.append(name)
        kept = [layer.name for layer in layers if isinstance(layer, Affine)]
        result = graph.rebuilt(layers) if changed else graph
        return PassResult(result, changed, {"folded": folded, "kept_affine": kept})


def _as_affine(bn: BatchNorm) -> Affine:
    scale = bn.gamma.astype(np.float64) / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    shift = bn.beta - bn.mean * scale
    per_channel = (-1,) + (1,) * (len(bn.shape) - 1)
    return Affine(name=bn.name, inputs=bn.inputs, shape=bn.shape,
                  scale=scale.reshape(per_channel), shift=shift.reshape(per_channel))


def _channel_vector(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` as one value per channel (axis 0 of ``shape``), or None if it varies within a channel."""
    full = np.broadcast_to(array, shape).reshape(shape[0], -1)
    if not np.all(full == full[:, :1]):
        return None
    return full[:, 0].astype(np.float64)


def _named(layers: list[Layer], name: str) -> Layer:
    return next(layer for layer in layers if layer.name == name)


def _readers(layers: list[Layer], name: str) -> list[Layer]:
    return [layer for layer in layers if name in layer.inputs]


def _fresh_name(layers: list[Layer], base: str) -> str:
    taken = {layer.name for layer in layers}
    name, count = base, 1
    while name in taken:
        name, count = f"{base}.{count}", count + 1
    return name


def _fold_backward(layers: list[Layer], affine: Affine, copy: bool = False) -> list[Layer] | None:
    """Fold into the producer; with ``copy``, into a copy of a producer that feeds other layers too,
    and as a 1x1 depthwise conv after a producer that is no conv/dense/affine/Add/Concat."""
    producer = _named(layers, affine.inputs[0])
    foldable = isinstance(producer, (Conv, Dense, Affine, Add, Concat)) or _commutes_with_pool(layers, producer, affine)
    if copy and not foldable:
        return _as_depthwise_conv(layers, affine)
    if not foldable or len(_readers(layers, producer.name)) != 1 and not copy:
        return None
    if len(_readers(layers, producer.name)) != 1:
        clone = dataclasses.replace(producer, name=_fresh_name(layers, f"{producer.name}/{affine.name}"))
        reading = dataclasses.replace(affine, inputs=(clone.name,))
        layers = [reading if layer is affine else layer for layer in layers] + [clone]
        producer, affine = clone, reading
    if isinstance(producer, (Conv, Dense)):
        return _scale_weighted(layers, producer, affine)
    if isinstance(producer, Pool):
        return _move_before_pool(layers, producer, affine, copy)
    if isinstance(producer, Affine):
        merged = dataclasses.replace(producer, scale=affine.scale * producer.scale,
                                     shift=affine.scale * producer.shift + affine.shift)
        return bypass([merged if layer is producer else layer for layer in layers], affine.name)
    return _split(layers, producer, affine, copy)


def _commutes_with_pool(layers: list[Layer], pool: Layer, affine: Affine) -> bool:
    """Whether ``pool(s x + t) = s pool(x) + t`` for this per-channel affine, for an average pool over real
    elements only (every window's divisor its count of real inputs: the pool of a constant map is that constant).

    (A max pool with ``s >= 0`` commutes too, but moving the affine before it never helps: a
    spiking max pool must read spikes, not the conv the affine would fold into.)
    """
    if not (isinstance(pool, Pool) and pool.mode == "avg"):
        return False
    if _channel_vector(affine.scale, affine.shape) is None or _channel_vector(affine.shift, affine.shape) is None:
        return False
    ones = np.ones((1, *_named(layers, pool.inputs[0]).shape[1:]), np.float64)
    return bool(np.all(_apply(pool, ones) == 1.0))


def _move_before_pool(layers: list[Layer], pool: Pool, affine: Affine, copy: bool) -> list[Layer] | None:
    """``s pool(x) + t = pool(s x + t)`` (``_commutes_with_pool``): the affine moves before the pool and folds
    backward from there (DenseNet's transition conv -> avg pool -> BatchNorm); None unless it folds."""
    scale, shift = (_channel_vector(a, affine.shape).reshape(-1, 1, 1) for a in (affine.scale, affine.shift))
    before = Affine(name=_fresh_name(layers, f"{affine.name}/before_{pool.name}"), inputs=pool.inputs,
                    shape=_named(layers, pool.inputs[0]).shape, scale=scale, shift=shift)
    moved = dataclasses.replace(pool, inputs=(before.name,))
    layers = bypass([moved if layer is pool else layer for layer in layers], affine.name)
    return _fold_backward(layers[:layers.index(moved)] + [before] + layers[layers.index(moved):], before, copy)


def _fold_into_copies(layers: list[Layer], affine: Affine) -> list[Layer] | None:
    """The last resort where every reader is a ReLU (pre-activation blocks whose sums feed several layers).

    ``relu(s x + t)``: the affine folds backward as above, but a producer that feeds other
    layers too (the running sum of a ResNet-v2 stage, the growing concat of a DenseNet
    block) is copied for this reader, and where a branch reaches a layer without weights
    (a ReLU, a pool) the piece becomes a 1x1 depthwise conv ``W[c] = s[c]``, ``b = t``.
    Each copy costs its synapses again; the ReLU then receives through one weighted layer.
    """
    readers = _readers(layers, affine.name)
    if not readers or not all(isinstance(reader, ReLU) for reader in readers):
        return None
    return _fold_backward(layers, affine, copy=True)


def _as_depthwise_conv(layers: list[Layer], affine: Affine) -> list[Layer] | None:
    """``s x + t`` as a 1x1 conv with one input channel per output channel (feature maps only)."""
    scale = _channel_vector(affine.scale, affine.shape)
    if scale is None or len(affine.shape) != 3:
        return None
    shift = _channel_vector(affine.shift, affine.shape)
    bias = shift if shift is not None else np.broadcast_to(affine.shift, affine.shape)
    conv = Conv(name=affine.name, inputs=affine.inputs, shape=affine.shape, groups=affine.shape[0],
                weight=scale.reshape(-1, 1, 1, 1).astype(np.float32), bias=np.asarray(bias, np.float32))
    return [conv if layer is affine else layer for layer in layers]


def _scale_weighted(layers: list[Layer], producer: Conv | Dense, affine: Affine) -> list[Layer] | None:
    """``s (W x + b) + t``: scale the rows of ``W``, and ``b' = s b + t``."""
    scale = _channel_vector(affine.scale, affine.shape)
    if scale is None:
        return None
    shift = _channel_vector(affine.shift, affine.shape)
    if shift is None and not isinstance(producer, Conv):
        return None
    weight = producer.weight * scale.reshape(-1, *([1] * (producer.weight.ndim - 1)))
    if shift is not None and producer.bias.ndim == 1:
        bias = producer.bias * scale + shift
    else:  # a per-neuron bias (O, OH, OW): one of the two varies over positions
        per_channel = scale.reshape(-1, 1, 1)
        full_shift = np.broadcast_to(affine.shift, affine.shape)
        bias = np.broadcast_to(producer.bias.reshape(producer.bias.shape[0], -1, 1)
                               if producer.bias.ndim == 1 else producer.bias, affine.shape) * per_channel + full_shift
    folded = dataclasses.replace(producer, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
    return bypass([folded if layer is producer else layer for layer in layers], affine.name)


def _split(layers: list[Layer], junction: Add | Concat, affine: Affine, copy: bool = False) -> list[Layer] | None:
    """One affine per branch of ``junction``, each folded backward; None unless all fold."""
    scale = np.broadcast_to(affine.scale, affine.shape)
    shift = np.broadcast_to(affine.shift, affine.shape)
    pieces, start = [], 0
    for index, src in enumerate(junction.inputs):
        shape = _named(layers, src).shape
        if isinstance(junction, Concat):
            part = slice(start, start + shape[0])
            piece_scale, piece_shift = scale[part], shift[part]
            start += shape[0]
        else:
            piece_scale, piece_shift = scale, shift if index == 0 else np.zeros_like(shift)
        name = _fresh_name(layers + pieces, f"{affine.name}/{index}")
        pieces.append(Affine(name=name, inputs=(src,), shape=shape, scale=piece_scale, shift=piece_shift))
    rejoined = dataclasses.replace(junction, inputs=tuple(piece.name for piece in pieces))
    layers = bypass([rejoined if layer is junction else layer for layer in layers] + pieces, affine.name)
    for piece in pieces:
        layers = _fold_backward(layers, piece, copy)
        if layers is None:
            return None
    return layers


def _fold_forward(layers: list[Layer], affine: Affine) -> list[Layer] | None:
    """Fold into every reader of ``affine``; None unless all take it."""
    names = [layer.name for layer in _readers(layers, affine.name)]
    if not names:
        return None
    for name in names:
        layers = _absorb(layers, affine, _named(layers, name))
        if layers is None:
            return None
    return [layer for layer in layers if layer is not affine]


def _absorb(layers: list[Layer], affine: Affine, reader: Layer) -> list[Layer] | None:
    """``reader`` reads the affine's input instead, with the map folded into it or moved past it."""
    if len(reader.inputs) != 1:
        return None
    if isinstance(reader, Dense):
        absorbed = _dense_absorb(reader, affine.scale, affine.shift)
    elif isinstance(reader, Conv):
        absorbed = _conv_absorb(reader, affine)
    elif isinstance(reader, Flatten):
        flat_scale, flat_shift = (np.broadcast_to(a, affine.shape).reshape(-1) for a in (affine.scale, affine.shift))
        return _move_past(layers, affine, reader, flat_scale, flat_shift)
    elif isinstance(reader, Pool):
        return _move_past_pool(layers, affine, reader)
    else:
        return None
    if absorbed is None:
        return None
    absorbed = dataclasses.replace(absorbed, inputs=affine.inputs)
    return [absorbed if layer is reader else layer for layer in layers]


def _move_past(layers: list[Layer], affine: Affine, reader: Layer, scale: np.ndarray,
               shift: np.ndarray) -> list[Layer] | None:
    """``reader`` reads the affine's input; a new affine ``(scale, shift)`` follows it and folds forward."""
    moved = dataclasses.replace(reader, inputs=affine.inputs)
    after = Affine(name=_fresh_name(layers, f"{affine.name}/{reader.name}"), inputs=(reader.name,),
                   shape=reader.shape, scale=scale, shift=shift)
    layers = rewire([moved if layer is reader else layer for layer in layers], reader.name, after.name)
    return _fold_forward(layers + [after], after)


def _move_past_pool(layers: list[Layer], affine: Affine, pool: Pool) -> list[Layer] | None:
    """``pool(s x + t) = s pool(x) + pool(t)`` (max pooling: ``s >= 0`` and ``t`` per channel)."""
    scale = _channel_vector(affine.scale, affine.shape)
    if scale is None:
        return None
    if pool.mode == "max" and (np.any(scale < 0) or _channel_vector(affine.shift, affine.shape) is None):
        return None
    shift_map = np.broadcast_to(affine.shift, affine.shape).astype(np.float64)
    pooled = _apply(pool, shift_map)
    return _move_past(layers, affine, pool, scale.reshape(-1, 1, 1), pooled)


def _apply(layer: Layer, value: np.ndarray) -> np.ndarray:
    """``layer`` (ANN semantics) on one fixed input map, in float64."""
    return ann.apply_layer(layer, [torch.from_numpy(np.array(value, np.float64)[None])])[0].numpy()


def _dense_absorb(dense: Dense, scale: np.ndarray, shift: np.ndarray) -> Dense:
    """``W (s x + t) + b = (W diag(s)) x + (W t + b)``."""
    n_in = dense.weight.shape[1]
    scale = np.broadcast_to(scale, (n_in,)).astype(np.float64)
    shift = np.broadcast_to(shift, (n_in,)).astype(np.float64)
    weight = dense.weight.astype(np.float64)
    return dataclasses.replace(dense, weight=(weight * scale).astype(np.float32),
                               bias=(dense.bias + weight @ shift).astype(np.float32))


def _conv_absorb(conv: Conv, affine: Affine) -> Conv | None:
    """``conv(s x + t) = conv'(x) + conv_nobias(t_padded)`` with ``W'[o, c] = W[o, c] s[c]``."""
    scale = _channel_vector(affine.scale, affine.shape)
    if scale is None:
        return None
    groups = conv.groups
    per_group = conv.weight.shape[1]
    in_channel = (np.arange(conv.weight.shape[0])[:, None] // (conv.weight.shape[0] // groups)) * per_group \
        + np.arange(per_group)[None, :]
    weight = conv.weight.astype(np.float64) * scale[in_channel][:, :, None, None]
    shift_map = np.broadcast_to(affine.shift, affine.shape).astype(np.float64)
    bias = conv.bias.astype(np.float64)
    if bias.ndim == 1:
        bias = bias[:, None, None]
    bias = bias + _apply(dataclasses.replace(conv, bias=np.zeros(conv.weight.shape[0])), shift_map)
    flat = bias.reshape(bias.shape[0], -1)
    if np.all(flat == flat[:, :1]):
        bias = flat[:, 0]
    return dataclasses.replace(conv, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
