"""Conv -> ``Conv`` layers (1-D or 2-D, any groups, strides, dilations, explicit or auto pads).

A 1-D convolution over ``[N, C, L]`` is the 2-D one over ``(C, 1, L)`` (``Context``) with
kernel ``(1, k)``, strides ``(1, s)``, dilations ``(1, d)`` and pads ``(0, begin, 0, end)``:
``y[o, 0, j] = b[o] + sum_{c, v} W[o, c, 0, v] * xpad[c, 0, j*s + v*d]``, the 1-D sum term
for term, so the conversion is exact.
"""

from __future__ import annotations

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Conv


def spatial_rank(node: Node, ctx: Context) -> int:
    """1 or 2: the spatial axes of ``node``'s input, ``[N, C, L]`` or ``[N, C, H, W]``."""
    full = ctx.full_shape(node.inputs[0], node)
    if len(full) == 4 or (len(full) == 3 and ctx.is_one_d(node.inputs[0], node)):
        return len(full) - 2
    if len(full) == 3:
        raise node.unsupported(f"input of shape {list(full)} is not 1-D data: snnconv reads (N, C, L) as 1-D when it "
                               "is the model's input and the model has Conv, pooling, Pad or ReduceMean nodes, and "
                               "keeps it 1-D through those and elementwise ops")
    raise node.unsupported(f"input of shape {list(full)}; snnconv supports 1-D (N, C, L) and 2-D (N, C, H, W) "
                           "spatial ops")


def spatial_pads(node: Node, in_hw: tuple[int, int], kernel: tuple[int, int],
                 strides: tuple[int, int], dilations: tuple[int, int], one_d: bool = False) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``, for Conv and the pools.

    ``SAME_*`` gives ``out = ceil(in / stride)`` with the total padding
    ``max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - in)`` split evenly, the odd
    one at the end (UPPER) or at the beginning (LOWER). For 1-D ops (``one_d``: height 1,
    kernel height 1) the 1-D ``pads`` (begin, end) become (0, begin, 0, end), and ``SAME_*``
    gives the height no padding.
    """
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        rank = 1 if one_d else 2
        pads = tuple(node.attr("pads", [0] * 2 * rank))
        if len(pads) != 2 * rank:
            raise node.unsupported(f"pads {list(pads)} are not {rank}-D like its input; fix or re-export the model")
        if min(pads) < 0:
            raise node.unsupported(f"negative pads {list(pads)} (cropping) are not supported")
        return (0, pads[0], 0, pads[1]) if one_d else pads
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.unsupported(f"auto_pad {auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return (begins[0], begins[1], ends[0], ends[1])


def pair(node: Node, name: str, default: int | None = None, one_d: bool = False) -> tuple[int, int]:
    """A positive int attribute (strides, dilations, kernel_shape) as (height, width), ``default`` where absent.

    A 1-D op's single value is the width; its height is 1.
    """
    rank = 1 if one_d else 2
    value = tuple(node.attr(name, [] if default is None else [default] * rank))
    if len(value) != rank:
        raise node.unsupported(f"{name} {list(value)} is not {rank}-D like its input; fix or re-export the model")
    if min(value) < 1:
        raise BadModelError(f"{node.label}: {name} {list(value)} must be positive; fix or re-export the model")
    return (1, *value) if one_d else value


@converter("Conv", 1, 11, 22)
def conv(node: Node, ctx: Context) -> None:
    weight = ctx.require_const(node, 1, "weights").astype(np.float32)
    rank = spatial_rank(node, ctx)
    if weight.ndim != rank + 2:
        raise node.unsupported(f"weights of shape {list(weight.shape)} for a {rank}-D input; fix or re-export the model")
    one_d = rank == 1
    bias = ctx.optional_const(node, 2, "bias")
    out_channels = weight.shape[0]
    bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)
    if tuple(node.attr("kernel_shape", weight.shape[2:])) != weight.shape[2:]:
        raise node.unsupported(f"kernel_shape {node.attr('kernel_shape')} differs from the weights' {weight.shape[2:]}")
    if one_d:
        weight = weight[:, :, None, :]
    kernel = tuple(weight.shape[2:])
    strides, dilations = pair(node, "strides", 1, one_d), pair(node, "dilations", 1, one_d)
    in_hw = ctx.shape(node.inputs[0], node)[1:]
    pads = spatial_pads(node, in_hw, kernel, strides, dilations, one_d)
    groups = int(node.attr("group", 1))
    if groups < 1:
        raise BadModelError(f"{node.label}: group {groups} must be positive; fix or re-export the model")
    ctx.emit(node, Conv, [node.inputs[0]], weight=weight, bias=bias, stride=strides, pads=pads,
             dilation=dilations, groups=groups)
