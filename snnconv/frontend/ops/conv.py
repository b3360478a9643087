"""Conv -> ``Conv`` layers (2-D, any groups, strides, dilations, explicit or auto pads)."""

from __future__ import annotations

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Conv


def spatial_pads(node: Node, in_hw: tuple[int, int], kernel: tuple[int, int],
                 strides: tuple[int, int], dilations: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``, for Conv and the pools.

    ``SAME_*`` gives ``out = ceil(in / stride)`` with the total padding
    ``max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - in)`` split evenly, the odd
    one at the end (UPPER) or at the beginning (LOWER).
    """
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = tuple(node.attr("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise node.unsupported(f"pads {list(pads)} are not 2-D; snnconv supports 2-D spatial ops")
        if min(pads) < 0:
            raise node.unsupported(f"negative pads {list(pads)} (cropping) are not supported")
        return pads
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


def pair(node: Node, name: str, default: int | None = None) -> tuple[int, int]:
    """A 2-element positive int attribute (strides, dilations, kernel_shape), ``default`` in both if absent."""
    value = tuple(node.attr(name, [] if default is None else [default, default]))
    if len(value) != 2:
        raise node.unsupported(f"{name} {list(value)} is not 2-D; snnconv supports 2-D spatial ops")
    if min(value) < 1:
        raise BadModelError(f"{node.label}: {name} {list(value)} must be positive; fix or re-export the model")
    return value


@converter("Conv", 1, 11, 22)
def conv(node: Node, ctx: Context) -> None:
    weight = ctx.require_const(node, 1, "weights").astype(np.float32)
    if weight.ndim != 4:
        raise node.unsupported(f"a {weight.ndim - 2}-D convolution; snnconv supports 2-D convolutions")
    bias = ctx.optional_const(node, 2, "bias")
    out_channels = weight.shape[0]
    bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)
    kernel = tuple(weight.shape[2:])
    if tuple(node.attr("kernel_shape", kernel)) != kernel:
        raise node.unsupported(f"kernel_shape {node.attr('kernel_shape')} differs from the weights' {kernel}")
    strides, dilations = pair(node, "strides", 1), pair(node, "dilations", 1)
    in_hw = ctx.shape(node.inputs[0], node)[1:]
    if len(in_hw) != 2:
        raise node.unsupported(f"input of sample shape {ctx.shape(node.inputs[0], node)}; expected (C, H, W)")
    pads = spatial_pads(node, in_hw, kernel, strides, dilations)
    groups = int(node.attr("group", 1))
    if groups < 1:
        raise BadModelError(f"{node.label}: group {groups} must be positive; fix or re-export the model")
    ctx.emit(node, Conv, [node.inputs[0]], weight=weight, bias=bias, stride=strides, pads=pads,
             dilation=dilations, groups=groups)
