"""Activation quantizers of QDQ models: a QuantizeLinear -> DequantizeLinear pair on a computed tensor.

(A DequantizeLinear of constant integer weights never reaches these converters: the
importer folds it to float weights, ``(q - zero_point) * scale``.)

onnxruntime's ``quantize_static`` (QuantFormat.QDQ) and torch's quantized exports put a
pair on every activation. With scale ``s``, zero point ``z`` and the integer type's range
``[q_min, q_max]``, the pair computes::

    y = s * (clip(round(x / s) + z, q_min, q_max) - z) = round_s(clip(x, lo, hi))
    lo = s * (q_min - z),  hi = s * (q_max - z)

where ``round_s`` rounds to the nearest multiple of ``s`` (it commutes with a clip at
multiples of ``s``). A rate-coded spiking neuron computes ``clip(x, 0, lam)`` on a grid of
``lam / T`` (one spike per step at most), so the pair maps onto it as far as ``lo`` allows:

- ``lo = 0`` (uint8 with ``z = 0``, int8 with ``z = -128``): the pair is a ReLU capped at
  ``hi`` (onnxruntime removes the model's Relu then: the pair clips at 0 itself). It
  becomes ``ReLU(max_value=hi)``; normalization takes ``hi`` as the scale where it is
  tighter than the calibration percentile (``passes/normalize``: a ceiling caps the scale).
- ``x`` known to lie in ``[0, c]`` (a ReLU, or max or average pooling, padding, flatten or
  concat of ReLUs): ``y = round_s(min(x, hi))``: nothing when ``c <= hi``, else a
  ``ReLU(max_value=hi)``, which canonicalize merges into the ReLU before it.
- ``lo < 0`` on a tensor that may be negative (a conv's output before its ReLU, the logits):
  the clip at ``lo`` has no one-neuron form (a neuron never passes negative values), so
  the pair is dropped; the value still reaches the next layer as current, unchanged
  wherever it lies in ``[lo, hi]``, which the quantizer's calibration chose to hold it.
- on the network's input: dropped; the chip reads the input as it comes (analog current
  or rate-coded spikes), not on the quantizer's grid.
- after the model's output function (onnxruntime quantizes a Softmax's probabilities):
  dropped; the host applies the function to the integrated output (``output.py``).

In every case the rounding to multiples of ``s`` is dropped: the SNN rounds to
``lam / T`` instead. What each pair became is recorded in the graph fact ``fake_quant``
(one entry per pair: tensor, node, scale, zero point, type, lo, hi, action), so reports
can show what was dropped. Pairs that rescale (Q and DQ with different scales or zero
points), per-channel or blocked activation scales, and float8/float4 grids are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Concat, Flatten, Input, Layer, Pad, Pool, ReLU

VERSIONS = (10, 13, 19, 21, 23, 24, 25, 28)  # later versions add element types and attributes for them only
INTEGER_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
                  "int4": (-8, 7), "uint4": (0, 15), "int2": (-2, 1), "uint2": (0, 3)}
FACT = "fake_quant"


@dataclass(frozen=True)
class Grid:
    """What a QuantizeLinear of an activation leaves for its DequantizeLinear: its source and integer grid."""

    source: str  # the float tensor quantized
    scale: float
    zero_point: int
    dtype: str  # a key of INTEGER_RANGES
    node: str  # the QuantizeLinear's label, for errors

    @property
    def low(self) -> float:
        return self.scale * (INTEGER_RANGES[self.dtype][0] - self.zero_point)

    @property
    def high(self) -> float:
        return self.scale * (INTEGER_RANGES[self.dtype][1] - self.zero_point)


@converter("QuantizeLinear", *VERSIONS)
def quantize_linear(node: Node, ctx: Context) -> None:
    """Records the grid of ``node``'s integer codes; its DequantizeLinear decides what the pair becomes."""
    if node.inputs[0] not in ctx.output_activations:  # else the pair quantizes a head's probabilities
        ctx.layer_of(node.inputs[0], node)
    ctx.pending[node.outputs[0]] = _grid(node, ctx, node.inputs[0], "uint8")


@converter("DequantizeLinear", *VERSIONS)
def dequantize_linear(node: Node, ctx: Context) -> None:
    codes = node.inputs[0]
    grid = ctx.pending.get(codes)
    if not isinstance(grid, Grid):
        raise node.unsupported(f"dequantizes {codes!r}, integer codes that no QuantizeLinear of an activation "
                               "made (a QOperator model, or integer inputs); snnconv reads QDQ models: convert "
                               "the float model, or quantize it with QuantFormat.QDQ")
    own = _grid(node, ctx, grid.source, grid.dtype)  # without a zero point, the codes' type is the quantizer's
    if (own.scale, own.zero_point, own.dtype) != (grid.scale, grid.zero_point, grid.dtype):
        raise node.unsupported(f"dequantizes with scale {own.scale:g}, zero point {own.zero_point} ({own.dtype}) "
                               f"codes that {grid.node} made with scale {grid.scale:g}, zero point "
                               f"{grid.zero_point} ({grid.dtype}): a requantization, which snnconv does not read; "
                               "re-export the model with one scale per activation")
    action = _convert(node, ctx, grid)
    entries = ctx.facts.get(FACT, ())
    ctx.facts[FACT] = (*entries, {"tensor": grid.source, "node": node.name, "scale": grid.scale,
                                  "zero_point": grid.zero_point, "type": grid.dtype, "low": grid.low,
                                  "high": grid.high, "action": action})


def _convert(node: Node, ctx: Context, grid: Grid) -> str:
    """Emit what the pair becomes (see the module's docstring); returns the action recorded."""
    if grid.source in ctx.output_activations:
        ctx.alias(node, grid.source)
        return "dropped: after the output function"
    source = ctx.layer_of(grid.source, node)
    if isinstance(source, Input):
        ctx.alias(node, grid.source)
        return "dropped: input"
    ceiling = _known_ceiling(source, ctx)
    if ceiling is not None and ceiling <= grid.high:
        ctx.alias(node, grid.source)
        return "rounding dropped"
    if ceiling is not None or grid.low == 0:
        ctx.emit(node, ReLU, [grid.source], max_value=grid.high)
        return "ceiling"
    ctx.alias(node, grid.source)
    return "dropped: signed"


def _known_ceiling(layer: Layer, ctx: Context) -> float | None:
    """``c`` where ``layer``'s values are known to lie in ``[0, c]`` (``inf`` if unbounded), else None."""
    if isinstance(layer, ReLU):
        return np.inf if layer.max_value is None else layer.max_value
    if isinstance(layer, (Pool, Pad, Flatten, Concat)):  # pooling, zero padding, reshaping: no new values
        ceilings = [_known_ceiling(ctx.layer(src), ctx) for src in layer.inputs]
        return None if None in ceilings else max(ceilings)
    return None


def _grid(node: Node, ctx: Context, source: str, default: str) -> Grid:
    """The per-tensor integer grid a QuantizeLinear or DequantizeLinear ``node`` names; ``default`` is the codes'
    type where neither a zero point nor ``output_dtype`` gives it."""
    scale = ctx.require_const(node, 1, "scale")
    zero = ctx.optional_const(node, 2, "zero point")
    if scale.size != 1 or (zero is not None and zero.size != 1):
        raise node.unsupported(f"quantizes the activation {source!r} per channel (scale of shape "
                               f"{list(scale.shape)}); only one scale per activation converts: quantize "
                               "activations per tensor (onnxruntime's default)")
    if node.attr("block_size", 0):
        raise node.unsupported("quantizes an activation in blocks (block_size); quantize activations per tensor")
    dtype = _dtype(node, zero, default)
    if dtype not in INTEGER_RANGES:
        raise node.unsupported(f"quantizes the activation {source!r} to {dtype}, not an integer grid; quantize "
                               f"activations to one of {', '.join(INTEGER_RANGES)}")
    value = float(scale.ravel()[0])
    if not value > 0 or not np.isfinite(value):
        raise BadModelError(f"{node.label}: scale {value} is not a positive number; fix or re-export the model")
    return Grid(source, value, 0 if zero is None else int(zero.ravel()[0]), dtype, node.label)


def _dtype(node: Node, zero: np.ndarray | None, default: str) -> str:
    """The integer type of the codes: the zero point's, else ``output_dtype`` (QuantizeLinear), else ``default``."""
    if zero is not None:
        return np.dtype(zero.dtype).name
    element = node.attr("output_dtype", 0) if node.op == "QuantizeLinear" else 0
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(element)).name if element else default
