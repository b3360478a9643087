"""Ops that move data without computing: Flatten, Reshape, Concat, Pad, Identity, Dropout."""

from __future__ import annotations

import math

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.ops import recurrent
from snnconv.frontend.registry import converter
from snnconv.ir import Concat, Flatten, Pad


def _value_of(node: Node, ctx: Context) -> tuple[str, tuple[str, str] | None]:
    """The tensor whose values ``node`` rearranges, and the output function applied to them if any.

    After a Softmax, LogSoftmax or Sigmoid head the values are those before the head: a
    reshape that keeps their order commutes with the head (see ``output.py``).
    """
    head = ctx.output_activations.get(node.inputs[0])
    return (node.inputs[0], None) if head is None else (head[1], head)


def _reshape_sample(node: Node, ctx: Context, sample: tuple[int, ...]) -> None:
    """``node`` gives its input's values the sample shape ``sample``: unchanged, flattened, or 1-D data
    ``(C, L)`` seen as the 2-D ``(C, 1, L)`` and back (all held as ``(C, 1, L)``) converts."""
    source, head = _value_of(node, ctx)
    full = ctx.full_shape(source, node)
    held = ctx.shape(source, node)
    if head is None and len(held) == 3 and held[1] == 1 and sample in (held, (held[0], held[2])) and sample != full[1:]:
        ctx.alias(node, source, one_d=len(sample) == 2)  # (C, L) <-> (C, 1, L): the same layer, seen 1-D or 2-D
        return
    if sample != full[1:] and len(sample) != 1:
        raise node.unsupported(
            f"reshape of a sample {list(full[1:])} to {list(sample)}; only flattening to (batch, features) converts"
            + _shuffle_hint(full[1:], sample)
        )
    if head is None and (sample == full[1:] or len(ctx.shape(source, node)) == 1):
        ctx.alias(node, source)
    elif head is None:
        ctx.emit(node, Flatten, [source])
    elif sample == full[1:]:
        ctx.output_activations[node.outputs[0]] = head
    else:
        flat = node.outputs[0] + "/values"
        ctx.emit(node, Flatten, [source], output=flat)
        ctx.mark_output_activation(node, head[0], flat)


def _shuffle_hint(shape: tuple[int, ...], sample: tuple[int, ...]) -> str:
    """Why a reshape that splits the channels into groups is refused: it begins a channel shuffle."""
    if len(shape) < 2 or len(sample) != len(shape) + 1 or sample[2:] != shape[1:] or sample[0] * sample[1] != shape[0]:
        return ""
    return (f"; splitting {shape[0]} channels into {sample[0]} groups begins a channel shuffle (ShuffleNet's Reshape "
            "-> Transpose -> Reshape), a permutation of channels, which no IR layer expresses yet")


@converter("Flatten", 9, 11, 13, 21, 23, 24, 25)
def flatten(node: Node, ctx: Context) -> None:
    full = ctx.full_shape(_value_of(node, ctx)[0], node)
    axis = node.attr("axis", 1)
    if axis % len(full) != 1:
        raise node.unsupported(f"Flatten at axis {axis}; only flattening to (batch, features), axis 1, converts")
    _reshape_sample(node, ctx, (math.prod(full[1:]),))


def _resolve_target(node: Node, full: tuple[int, ...], target: list[int]) -> list[int]:
    """Reshape's target with 0 (copy) and -1 (infer) replaced by sizes."""
    allow_zero = node.attr("allowzero", 0)
    resolved = [full[i] if d == 0 and not allow_zero and i < len(full) else d for i, d in enumerate(target)]
    if resolved.count(-1) > 1:
        raise BadModelError(f"{node.label}: reshape target {target} has more than one -1")
    if -1 in resolved:
        known = math.prod(d for d in resolved if d != -1)
        if known == 0 or math.prod(full) % known:
            raise BadModelError(f"{node.label}: cannot reshape {list(full)} to {target}")
        resolved[resolved.index(-1)] = math.prod(full) // known
    if math.prod(resolved) != math.prod(full):
        raise BadModelError(f"{node.label}: cannot reshape {list(full)} to {target}")
    return resolved


@converter("Reshape", 5, 13, 14, 19, 21, 23, 24, 25)
def reshape(node: Node, ctx: Context) -> None:
    """Supported: flattening to (batch, features), and reshapes that change nothing.

    The target may be a constant such as ``[N, -1]``, ``[-1, C*H*W]`` or ``[0, -1]``, or be
    computed from the input's shape (``x.view(x.size(0), -1)`` exports ``Shape -> Gather ->
    Unsqueeze -> Concat``), which the importer folds to a constant. The batch size stands
    for the dynamic batch axis while folding, so ``[1, -1]`` converts in a model of batch 1.
    """
    full = ctx.full_shape(_value_of(node, ctx)[0], node)
    target = ctx.require_const(node, 1, "shape").astype(np.int64).ravel().tolist()
    resolved = _resolve_target(node, full, target)
    if resolved[0] != full[0]:
        raise node.unsupported(f"reshape of {list(full)} to {target} mixes the batch with other axes")
    _reshape_sample(node, ctx, tuple(resolved[1:]))


@converter("Squeeze", 1, 11, 13, 21, 23, 24, 25)
def squeeze(node: Node, ctx: Context) -> None:
    """Dropping size-1 axes of a sample, e.g. ``[N, C, 1, 1] -> [N, C]`` after a global pool: a flatten.

    Without ``axes`` every size-1 axis but the batch goes (the batch axis is dynamic).
    """
    if recurrent.stacked(node, ctx):  # Squeeze(Y, 1) of an RNN: the input of a stacked one
        return
    full = ctx.full_shape(_value_of(node, ctx)[0], node)
    if node.opset >= 13:
        axes = ctx.optional_const(node, 1, "axes")
        axes = None if axes is None else axes.astype(np.int64).ravel().tolist()
    else:
        axes = node.attr("axes")
    if axes is None:
        axes = [a for a in range(1, len(full)) if full[a] == 1]
    axes = sorted({a % len(full) for a in axes})
    if 0 in axes:
        raise node.unsupported("squeezes the batch axis; only axes of one sample can be squeezed")
    if any(full[a] != 1 for a in axes):
        raise BadModelError(f"{node.label}: squeezes axes {axes} of {list(full)}, not all of size 1")
    _reshape_sample(node, ctx, tuple(d for a, d in enumerate(full) if a and a not in axes))


@converter("Unsqueeze", 1, 11, 13, 21, 23, 24, 25)
def unsqueeze(node: Node, ctx: Context) -> None:
    """Only 1-D data ``[N, C, L]`` at axis 2, to ``[N, C, 1, L]`` (torch's legacy export of 1-D pooling):
    the layer already holds it so."""
    full = ctx.full_shape(_value_of(node, ctx)[0], node)
    if node.opset >= 13:
        axes = ctx.require_const(node, 1, "axes").astype(np.int64).ravel().tolist()
    else:
        axes = list(node.attr("axes", []))
    rank = len(full) + len(axes)
    axes = sorted(a % rank for a in axes)
    if len(full) != 3 or axes != [2]:
        raise node.unsupported(f"Unsqueeze of {list(full)} at axes {axes}; only 1-D data (N, C, L) at axis 2 "
                               "converts; export the model with 2-D ops, or 1-D ops without the Unsqueeze")
    _reshape_sample(node, ctx, (full[1], 1, full[2]))


@converter("Concat", 4, 11, 13)
def concat(node: Node, ctx: Context) -> None:
    if recurrent.stacked(node, ctx):  # torch's h_n of a stacked RNN: the layers' Y_h
        return
    rank = len(ctx.full_shape(node.inputs[0], node))
    if node.attr("axis") % rank != 1:
        raise node.unsupported(f"Concat along axis {node.attr('axis')}; only channel concatenation (axis 1) converts")
    if any(t in ctx.constants for t in node.inputs):
        raise node.unsupported("concatenates a constant with activations")
    ctx.emit(node, Concat, list(node.inputs))


def _pad_spec(node: Node, ctx: Context, rank: int) -> tuple[list[int], float, str]:
    """Pads over all ``rank`` axes as [begin..., end...], the fill value and the mode."""
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        return list(node.attr("pads")), float(node.attr("value", 0.0)), mode
    pads = ctx.require_const(node, 1, "pads").astype(np.int64).ravel().tolist()
    value = ctx.optional_scalar(node, 2, "constant_value")
    axes = ctx.optional_const(node, 3, "axes")
    if axes is not None:
        axes = axes.ravel().tolist()
        per_axis = dict(zip([a % rank for a in axes], zip(pads[: len(axes)], pads[len(axes):])))
        pads = [per_axis.get(a, (0, 0))[0] for a in range(rank)] + [per_axis.get(a, (0, 0))[1] for a in range(rank)]
    return pads, 0.0 if value is None else value, mode


@converter("Pad", 2, 11, 13, 18, 19, 21, 23, 24, 25)
def pad(node: Node, ctx: Context) -> None:
    rank = len(ctx.full_shape(node.inputs[0], node))
    pads, value, mode = _pad_spec(node, ctx, rank)
    if mode != "constant" or value != 0:
        raise node.unsupported(f"Pad mode {mode!r} value {value}; only zero padding converts")
    one_d = rank == 3 and ctx.is_one_d(node.inputs[0], node)
    if not (rank == 4 or one_d) or len(pads) != 2 * rank:
        raise node.unsupported(f"pads {pads} on a rank-{rank} tensor; only spatial padding of (N, C, H, W) "
                               "or (N, C, L) converts")
    begins, ends = pads[:rank], pads[rank:]
    if begins[:2] != [0, 0] or ends[:2] != [0, 0]:
        raise node.unsupported(f"pads {pads} pad the batch or channel axes; only the spatial axes may be padded")
    if min(pads) < 0:
        raise node.unsupported(f"negative pads {pads} (cropping) are not supported")
    if one_d:  # (C, 1, L): the length is the width
        begins, ends = [0, 0, 0, begins[2]], [0, 0, 0, ends[2]]
    ctx.emit(node, Pad, [node.inputs[0]], pads=(begins[2], begins[3], ends[2], ends[3]))


@converter("Identity", 1, 13, 14, 16, 19, 21, 23, 24, 25)
def identity(node: Node, ctx: Context) -> None:
    ctx.alias(node, node.inputs[0])


@converter("Dropout", 7, 10, 12, 13, 22)
def dropout(node: Node, ctx: Context) -> None:
    """Dropout is the identity at inference; training mode cannot be converted."""
    if node.opset >= 12:
        training = ctx.optional_const(node, 2, "training_mode")
        if training is not None and bool(training):
            raise node.unsupported("training_mode is true; export the model in eval mode")
    ctx.alias(node, node.inputs[0])
