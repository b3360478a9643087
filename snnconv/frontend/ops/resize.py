"""Resize and Upsample with mode ``nearest`` by integer factors -> ``Upsample``.

Nearest upsampling by an integer factor ``f`` along an axis of ``n`` positions gives
``n * f`` positions, each a copy of one input: output ``i`` takes input ``index(i)``, where
ONNX computes ``index`` from the coordinate transformation and the nearest mode::

    half_pixel, pytorch_half_pixel, half_pixel_symmetric:  x = (i + 0.5) / f - 0.5
    asymmetric (and Upsample, Resize-10):                  x = i / f
    tf_half_pixel_for_nn:                                  x = (i + 0.5) / f
    align_corners:                                         x = i * (n - 1) / (n * f - 1)
    index(i) = clamp(nearest_mode(x), 0, n - 1)

The IR's ``Upsample`` is ``index(i) = i // f``, which half_pixel with either rounding
mode gives (``x = i // f + (r - (f - 1) / 2) / f`` for ``i = f (i // f) + r``: the offset
lies strictly within 1/2), as do asymmetric with floor (torch's and Upsample's map) and,
for some sizes, align_corners. The map is computed here for the node's own modes and the
axis's size, and converts only where it is exactly ``i // f`` on every axis; other
combinations (half_pixel with floor or ceil, asymmetric with rounding for ``f > 2``) are
refused, naming the modes. Channel or batch factors other than 1, fractional factors, downsampling,
``tf_crop_and_resize`` and the ``linear``/``cubic`` modes are refused too.

1-D data ``[N, C, L]`` (held as ``(C, 1, L)``) upsamples its one axis: factor ``(1, f)``.
"""

from __future__ import annotations

import numpy as np

from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Upsample

_WORKAROUND = ("convert the network up to this node (onnx.utils.extract_model) and resize on the host, or retrain "
               "with nearest upsampling by an integer factor")

_COORDINATES = {
    "half_pixel": lambda i, f, n: (i + 0.5) / f - 0.5,
    "pytorch_half_pixel": lambda i, f, n: (i + 0.5) / f - 0.5 if n * f > 1 else 0.0 * i,
    "half_pixel_symmetric": lambda i, f, n: (i + 0.5) / f - 0.5,  # its offset is 0 when n * f is the output size
    "asymmetric": lambda i, f, n: i / f,
    "tf_half_pixel_for_nn": lambda i, f, n: (i + 0.5) / f,
    "align_corners": lambda i, f, n: i * (n - 1) / (n * f - 1) if n * f > 1 else 0.0 * i,
}

_NEAREST = {
    "round_prefer_floor": lambda x: np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x)),
    "round_prefer_ceil": lambda x: np.where(x - np.floor(x) == 0.5, np.ceil(x), np.round(x)),
    "floor": np.floor,
    "ceil": np.ceil,
}


def _factors(node: Node, ctx: Context) -> list[float] | None:
    """The factor per ONNX axis (batch first), or None where neither scales nor sizes are constants."""
    full = ctx.full_shape(node.inputs[0], node)
    if node.op == "Upsample" and node.opset < 9:
        return [float(s) for s in node.attr("scales")]
    scales_at = 1 if node.op == "Upsample" or node.opset < 11 else 2
    scales = ctx.optional_const(node, scales_at, "scales")
    sizes = ctx.optional_const(node, 3, "sizes") if node.op == "Resize" and node.opset >= 11 else None
    given = scales if scales is not None and scales.size else sizes
    if given is None:
        return None
    axes = node.attr("axes") if node.opset >= 18 else None
    axes = list(range(len(full))) if axes is None else [a % len(full) for a in axes]
    if given.size != len(axes):
        return None
    factors = [1.0] * len(full)
    for axis, value in zip(axes, given.astype(np.float64).ravel().tolist()):
        factors[axis] = value if given is scales else value / full[axis]
    return factors


def _modes(node: Node) -> tuple[str, str]:
    """(coordinate transformation, nearest mode): Upsample and Resize-10 map ``x = i / f`` and floor it."""
    if node.op == "Upsample" or node.opset < 11:
        return "asymmetric", "floor"
    return node.attr("coordinate_transformation_mode", "half_pixel"), node.attr("nearest_mode", "round_prefer_floor")


def _repeats(coordinates: str, nearest: str, size: int, factor: int) -> bool:
    """Whether the node's map along an axis of ``size`` positions is ``index(i) = i // factor``."""
    i = np.arange(size * factor, dtype=np.float64)
    index = np.clip(_NEAREST[nearest](_COORDINATES[coordinates](i, factor, size)), 0, size - 1)
    return bool(np.array_equal(index, i // factor))


def _upsample(node: Node, ctx: Context) -> None:
    mode = node.attr("mode", "nearest")
    if mode != "nearest":
        raise node.unsupported(f"{node.op} mode {mode!r} interpolates between neighbours, which no synapse map of "
                               f"spikes computes exactly; {_WORKAROUND}")
    factors = _factors(node, ctx)
    spatial = factors[2:] if factors is not None else None
    if factors is None or factors[:2] != [1.0, 1.0] or not all(s >= 1 and float(s).is_integer() for s in spatial):
        shown = "computed at run time" if factors is None else f"{[float(f) for f in factors]}"
        raise node.unsupported(f"{node.op} by factors {shown}; only nearest upsampling of the spatial axes by "
                               f"constant integer factors converts; {_WORKAROUND}")
    coordinates, nearest = _modes(node)
    if coordinates not in _COORDINATES or nearest not in _NEAREST:
        raise node.unsupported(f"coordinate_transformation_mode {coordinates!r} with nearest_mode {nearest!r} is "
                               f"not a repetition of each value; {_WORKAROUND}")
    held = ctx.shape(node.inputs[0], node)
    factor = (1, int(spatial[0])) if len(spatial) == 1 else tuple(int(s) for s in spatial)
    if len(held) != 3 or len(spatial) not in (1, 2):
        raise node.unsupported(f"{node.op} of a tensor of shape {list(ctx.full_shape(node.inputs[0], node))}; "
                               f"only [N, C, H, W] and [N, C, L] feature maps upsample")
    for size, f in zip(held[1:], factor):
        if not _repeats(coordinates, nearest, size, f):
            raise node.unsupported(
                f"coordinate_transformation_mode {coordinates!r} with nearest_mode {nearest!r} by {f} does not "
                f"repeat each value {f} times (output i reads an input other than i // {f}); export with "
                f"'asymmetric' + 'floor' or 'half_pixel' (torch's nn.Upsample(mode='nearest') does), or {_WORKAROUND}")
    ctx.emit(node, Upsample, [node.inputs[0]], factor=factor)


@converter("Resize", 10, 11, 13, 18, 19)
def resize(node: Node, ctx: Context) -> None:
    if node.opset >= 18 and node.attr("keep_aspect_ratio_policy", "stretch") != "stretch" \
            and ctx.optional_const(node, 3, "sizes") is not None:
        raise node.unsupported(f"keep_aspect_ratio_policy {node.attr('keep_aspect_ratio_policy')!r} with sizes; "
                               f"give the integer factors as scales; {_WORKAROUND}")
    _upsample(node, ctx)


@converter("Upsample", 7, 9, 10)  # 10 only deprecates it
def upsample(node: Node, ctx: Context) -> None:
    _upsample(node, ctx)
