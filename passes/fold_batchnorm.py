"""Fold batch normalization and other per-channel affine maps into the weighted layers.

A BatchNorm is the affine map ``y = s * x + t`` with ``s = gamma / sqrt(var + eps)`` and
``t = beta - mean * s``. Each affine map (from BatchNorm or from Sub/Mul/Div/Add by
constants) is folded, exactly in float arithmetic, by the first rule that applies:

- backward, into the conv/dense that produces its input (and feeds nothing else), when
  ``s`` and ``t`` are per output channel: ``W' = s[o] * W``, ``b' = s * b + t``;
- forward, into every conv/dense that reads it (through a Flatten for dense layers):
  ``W'[o, c] = W[o, c] * s[c]`` and ``b' = b + W (*) t``, the second term computed by
  running the layer on the constant map ``t`` with the layer's own zero padding, so a
  shift near a padded border stays exact (the bias becomes per neuron if it varies).

An affine map that fits neither (e.g. a BatchNorm between an Add and its ReLU whose
branches cannot absorb it) is kept as an ``Affine`` layer and listed in the notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnconv.ir import Affine, BatchNorm, Conv, Dense, Flatten, Graph, Layer
from snnconv.ir.rewrite import PassResult, bypass

__all__ = ["FoldBatchNorm"]


class FoldBatchNorm:
    name = "fold_batchnorm"

    def run(self, graph: Graph) -> PassResult:
        layers = [_as_affine(layer) if isinstance(layer, BatchNorm) else layer for layer in graph]
        changed = any(isinstance(layer, BatchNorm) for layer in graph)
        folded, kept = [], []
        for affine in [layer for layer in layers if isinstance(layer, Affine)]:
            rewritten = _fold_backward(layers, affine) or _fold_forward(layers, affine)
            if rewritten is None:
                kept.append(affine.name)
            else:
                layers, changed = rewritten, True
                folded.append(affine.name)
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


def _readers(layers: list[Layer], name: str) -> list[Layer]:
    return [layer for layer in layers if name in layer.inputs]


def _fold_backward(layers: list[Layer], affine: Affine) -> list[Layer] | None:
    producer = next(layer for layer in layers if layer.name == affine.inputs[0])
    if not isinstance(producer, (Conv, Dense)) or len(_readers(layers, producer.name)) != 1:
        return None
    scale, shift = _channel_vector(affine.scale, affine.shape), _channel_vector(affine.shift, affine.shape)
    if scale is None or shift is None:
        return None
    weight = producer.weight * scale.reshape(-1, *([1] * (producer.weight.ndim - 1)))
    bias_shape = (-1,) + (1,) * (producer.bias.ndim - 1)
    bias = producer.bias * scale.reshape(bias_shape) + shift.reshape(bias_shape)
    folded = dataclasses.replace(producer, weight=weight.astype(np.float32), bias=bias.astype(np.float32))
    return bypass([folded if layer is producer else layer for layer in layers], affine.name)


def _fold_forward(layers: list[Layer], affine: Affine) -> list[Layer] | None:
    """Fold into every reader; all readers must be conv/dense (or Flatten -> dense only)."""
    readers = _readers(layers, affine.name)
    plans = []
    for reader in readers:
        if isinstance(reader, Flatten):
            dense_readers = _readers(layers, reader.name)
            if not dense_readers or not all(isinstance(d, Dense) for d in dense_readers):
                return None
            scale = np.broadcast_to(affine.scale, affine.shape).reshape(-1)
            shift = np.broadcast_to(affine.shift, affine.shape).reshape(-1)
            plans += [(d, _dense_absorb(d, scale, shift)) for d in dense_readers]
        elif isinstance(reader, Dense):
            plans.append((reader, _dense_absorb(reader, affine.scale, affine.shift)))
        elif isinstance(reader, Conv):
            absorbed = _conv_absorb(reader, affine)
            if absorbed is None:
                return None
            plans.append((reader, absorbed))
        else:
            return None
    if not plans:
        return None
    replacement = {id(old): new for old, new in plans}
    return bypass([replacement.get(id(layer), layer) for layer in layers], affine.name)


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
    bias = bias + _conv_of_constant(conv, shift_map)
    flat = bias.reshape(bias.shape[0], -1)
    if np.all(flat == flat[:, :1]):
        bias = flat[:, 0]
    return dataclasses.replace(conv, weight=weight.astype(np.float32), bias=bias.astype(np.float32))


def _conv_of_constant(conv: Conv, value: np.ndarray) -> np.ndarray:
    """The convolution (no bias) of one fixed input map, in float64 with numpy."""
    top, left, bottom, right = conv.pads
    padded = np.pad(value, ((0, 0), (top, bottom), (left, right)))
    out_c, per_group, kh, kw = conv.weight.shape
    _, oh, ow = conv.shape
    result = np.zeros((out_c, oh, ow))
    group_out = out_c // conv.groups
    for o in range(out_c):
        channels = padded[(o // group_out) * per_group:(o // group_out + 1) * per_group]
        for u in range(kh):
            for v in range(kw):
                rows = u * conv.dilation[0] + conv.stride[0] * np.arange(oh)
                cols = v * conv.dilation[1] + conv.stride[1] * np.arange(ow)
                window = channels[:, rows][:, :, cols]
                result[o] += np.tensordot(conv.weight[o, :, u, v].astype(np.float64), window, axes=(0, 0))
    return result
