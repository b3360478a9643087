"""AveragePool, MaxPool, GlobalAveragePool, GlobalMaxPool, ReduceMean and ReduceMax over H, W -> ``Pool``.

1-D pooling over ``[N, C, L]`` is 2-D pooling over ``(C, 1, L)`` (see ``conv.py``) with
kernel ``(1, k)``, strides ``(1, s)`` and pads ``(0, begin, 0, end)``: each window holds the
same elements, so the sum, count and maximum are the 1-D ones. A global pool over ``L``
is the window ``(1, L)``, and ReduceMean over the last axis of 1-D data is that pool.
"""

from __future__ import annotations

from snnconv.frontend.context import Context, Node
from snnconv.frontend.ops.conv import pair, spatial_pads, spatial_rank
from snnconv.frontend.registry import converter
from snnconv.ir import Flatten, Pool


def _feature_map(node: Node, ctx: Context) -> tuple[int, int, int]:
    """The input's (C, H, W); (C, 1, L) for 1-D data."""
    spatial_rank(node, ctx)
    return ctx.shape(node.inputs[0], node)


def _windowed_pool(node: Node, ctx: Context, mode: str, count_include_pad: bool) -> None:
    _, h, w = _feature_map(node, ctx)
    one_d = ctx.is_one_d(node.inputs[0], node)
    kernel = pair(node, "kernel_shape", None, one_d)
    strides, dilations = pair(node, "strides", 1, one_d), pair(node, "dilations", 1, one_d)
    pads = spatial_pads(node, (h, w), kernel, strides, dilations, one_d)
    ctx.emit(node, Pool, [node.inputs[0]], mode=mode, kernel=kernel, stride=strides, pads=pads,
             dilation=dilations, ceil_mode=bool(node.attr("ceil_mode", 0)), count_include_pad=count_include_pad)


@converter("AveragePool", 7, 10, 11, 19, 22)
def average_pool(node: Node, ctx: Context) -> None:
    _windowed_pool(node, ctx, "avg", bool(node.attr("count_include_pad", 0)))


@converter("MaxPool", 8, 10, 11, 12, 22)
def max_pool(node: Node, ctx: Context) -> None:
    if len([t for t in node.outputs if t]) > 1:
        raise node.unsupported("the Indices output is requested; only the pooled values convert")
    _windowed_pool(node, ctx, "max", False)


def _global_pool(node: Node, ctx: Context, mode: str, output: str | None = None) -> None:
    _, h, w = _feature_map(node, ctx)
    ctx.emit(node, Pool, [node.inputs[0]], output=output, mode=mode, kernel=(h, w), stride=(1, 1))


@converter("GlobalAveragePool", 1, 22)
def global_average_pool(node: Node, ctx: Context) -> None:
    _global_pool(node, ctx, "avg")


@converter("GlobalMaxPool", 1, 22)
def global_max_pool(node: Node, ctx: Context) -> None:
    _global_pool(node, ctx, "max")


@converter("ReduceMean", 1, 11, 13, 18)
def reduce_mean(node: Node, ctx: Context) -> None:
    """The mean over all spatial axes (H and W; L of 1-D data) is a global average pool
    (plus a flatten without keepdims)."""
    _spatial_reduction(node, ctx, "avg")


@converter("ReduceMax", 1, 11, 12, 13, 18, 20)
def reduce_max(node: Node, ctx: Context) -> None:
    """The maximum over all spatial axes is a global max pool: what the dynamo exporter writes for
    ``AdaptiveMaxPool2d(1)``."""
    _spatial_reduction(node, ctx, "max")


def _spatial_reduction(node: Node, ctx: Context, mode: str) -> None:
    if node.opset >= 18:
        axes = ctx.optional_const(node, 1, "axes")
        axes = None if axes is None else axes.tolist()
    else:
        axes = node.attr("axes")
    rank = spatial_rank(node, ctx) + 2
    spatial = list(range(2, rank))
    if axes is None or sorted(a % rank for a in axes) != spatial:
        raise node.unsupported(f"{node.op} over axes {axes}; only the {'mean' if mode == 'avg' else 'maximum'} "
                               f"over the spatial axes {spatial} converts")
    if node.attr("keepdims", 1):
        _global_pool(node, ctx, mode)
        return
    pooled = node.outputs[0] + "/pool"
    _global_pool(node, ctx, mode, output=pooled)
    ctx.emit(node, Flatten, [pooled], suffix="/flatten")
