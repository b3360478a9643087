"""AveragePool, MaxPool, GlobalAveragePool, GlobalMaxPool, ReduceMean over H, W -> ``Pool``."""

from __future__ import annotations

from snnconv.frontend.context import Context, Node
from snnconv.frontend.ops.conv import pair, spatial_pads
from snnconv.frontend.registry import converter
from snnconv.ir import Flatten, Pool


def _feature_map(node: Node, ctx: Context) -> tuple[int, int, int]:
    shape = ctx.shape(node.inputs[0], node)
    if len(shape) != 3:
        raise node.unsupported(f"input of sample shape {shape}; 2-D pooling needs (C, H, W)")
    return shape


def _windowed_pool(node: Node, ctx: Context, mode: str, count_include_pad: bool) -> None:
    _, h, w = _feature_map(node, ctx)
    kernel = pair(node, "kernel_shape")
    strides, dilations = pair(node, "strides", 1), pair(node, "dilations", 1)
    pads = spatial_pads(node, (h, w), kernel, strides, dilations)
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
    """The mean over both spatial axes is a global average pool (plus a flatten without keepdims)."""
    if node.opset >= 18:
        axes = ctx.optional_const(node, 1, "axes")
        axes = None if axes is None else axes.tolist()
    else:
        axes = node.attr("axes")
    _feature_map(node, ctx)
    if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
        raise node.unsupported(f"ReduceMean over axes {axes}; only the mean over H and W (axes 2, 3) converts")
    if node.attr("keepdims", 1):
        _global_pool(node, ctx, "avg")
        return
    pooled = node.outputs[0] + "/pool"
    _global_pool(node, ctx, "avg", output=pooled)
    ctx.emit(node, Flatten, [pooled], suffix="/flatten")
