"""Ops that move data without computing: Flatten, Reshape, Concat, Pad, Identity, Dropout."""

from __future__ import annotations

import math

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Concat, Flatten, Pad


def _flatten_or_alias(node: Node, ctx: Context) -> None:
    if len(ctx.shape(node.inputs[0], node)) == 1:
        ctx.alias(node, node.inputs[0])
    else:
        ctx.emit(node, Flatten, [node.inputs[0]])


@converter("Flatten", 9, 11, 13, 21, 23, 24, 25)
def flatten(node: Node, ctx: Context) -> None:
    rank = len(ctx.full_shape(node.inputs[0], node))
    axis = node.attr("axis", 1)
    if axis % rank != 1:
        raise node.unsupported(f"Flatten at axis {axis}; only flattening to (batch, features), axis 1, converts")
    _flatten_or_alias(node, ctx)


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
    """Supported: flattening to (batch, features), and reshapes that change nothing."""
    full = ctx.full_shape(node.inputs[0], node)
    target = ctx.require_const(node, 1, "shape").astype(np.int64).ravel().tolist()
    resolved = _resolve_target(node, full, target)
    if resolved[0] != full[0]:
        raise node.unsupported(f"reshape of {list(full)} to {target} mixes the batch with other axes")
    sample = tuple(resolved[1:])
    if sample == full[1:]:
        ctx.alias(node, node.inputs[0])
    elif len(sample) == 1:
        _flatten_or_alias(node, ctx)
    else:
        raise node.unsupported(
            f"reshape of a sample {list(full[1:])} to {list(sample)}; only flattening to (batch, features) converts"
        )


@converter("Concat", 4, 11, 13)
def concat(node: Node, ctx: Context) -> None:
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
    if rank != 4 or len(pads) != 8:
        raise node.unsupported(f"pads {pads} on a rank-{rank} tensor; only spatial padding of (N, C, H, W) converts")
    begins, ends = pads[:4], pads[4:]
    if begins[:2] != [0, 0] or ends[:2] != [0, 0]:
        raise node.unsupported(f"pads {pads} pad the batch or channel axes; only H and W may be padded")
    if min(pads) < 0:
        raise node.unsupported(f"negative pads {pads} (cropping) are not supported")
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
