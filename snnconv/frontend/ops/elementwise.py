"""Elementwise ops: residual Add/Sum, scaling by constants (Add/Sub/Mul/Div), Relu, Clip, HardSigmoid.

An op between an activation and a constant becomes an ``Affine`` layer
(``y = x * scale + shift``); between activations only a sum is supported, since that is
what converging synapses compute.
"""

from __future__ import annotations

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Add, Affine, ReLU


def _sample_constant(node: Node, ctx: Context, value: np.ndarray, source: str) -> np.ndarray:
    """A constant operand as an array that broadcasts over one sample of the tensor ``source``.

    ONNX broadcasting aligns trailing axes over (batch, *shape); a leading batch axis of
    size 1 is dropped. Constants that would widen the activation are refused. For 1-D data,
    held as (C, 1, L), a constant over (C, L) gets the height axis: (C, 1, L).
    """
    shape = ctx.full_shape(source, node)[1:]
    value = np.asarray(value, np.float64)
    if value.ndim == len(shape) + 1:
        if value.shape[0] != 1:
            raise node.unsupported(f"a constant of shape {value.shape} varies over the batch")
        value = value[0]
    try:
        fits = value.ndim <= len(shape) and np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise node.unsupported(f"a constant of shape {value.shape} does not broadcast onto activations of shape {shape}")
    if ctx.is_one_d(source, node) and value.ndim == 2:
        value = value[:, None, :]
    return value


def _split_operands(node: Node, ctx: Context) -> tuple[list[str], list[np.ndarray]]:
    """The computed inputs of ``node`` and its constant inputs."""
    computed = [t for t in node.inputs if t and t not in ctx.constants]
    constants = [ctx.constants[t] for t in node.inputs if t in ctx.constants]
    return computed, constants


def _affine(node: Node, ctx: Context, source: str, scale, shift, output: str | None = None) -> None:
    scale = _sample_constant(node, ctx, np.asarray(scale), source)
    shift = _sample_constant(node, ctx, np.asarray(shift), source)
    ctx.emit(node, Affine, [source], output=output, suffix="" if output is None else "/affine",
             scale=scale.astype(np.float32), shift=shift.astype(np.float32))


def _sum(node: Node, ctx: Context) -> None:
    computed, constants = _split_operands(node, ctx)
    shapes = {ctx.shape(t, node) for t in computed}
    if len(shapes) > 1:
        raise node.unsupported(f"adds activations of different shapes {sorted(shapes)}; broadcasting between activations is not supported")
    if len(computed) == 1 and not constants:
        ctx.alias(node, computed[0])
        return
    if not constants:
        ctx.emit(node, Add, computed)
        return
    try:
        total = sum(np.asarray(c, np.float64) for c in constants)
    except ValueError:
        shapes = [np.shape(c) for c in constants]
        raise BadModelError(f"{node.label}: constants of shapes {shapes} do not broadcast together") from None
    if len(computed) == 1:
        _affine(node, ctx, computed[0], 1.0, total)
        return
    partial = node.outputs[0] + "/sum"
    ctx.emit(node, Add, computed, output=partial, suffix="/sum")
    _affine(node, ctx, partial, 1.0, total)


@converter("Add", 7, 13, 14)
def add(node: Node, ctx: Context) -> None:
    _sum(node, ctx)


@converter("Sum", 8, 13)
def sum_(node: Node, ctx: Context) -> None:
    _sum(node, ctx)


@converter("Sub", 7, 13, 14)
def sub(node: Node, ctx: Context) -> None:
    a, b = node.inputs
    if b in ctx.constants:
        _affine(node, ctx, a, 1.0, -np.asarray(ctx.constants[b], np.float64))
    elif a in ctx.constants:
        _affine(node, ctx, b, -1.0, ctx.constants[a])
    else:
        raise node.unsupported("subtracts one activation from another; only sums of activations are supported")


@converter("Mul", 7, 13, 14)
def mul(node: Node, ctx: Context) -> None:
    computed, constants = _split_operands(node, ctx)
    if len(computed) != 1:
        raise node.unsupported("multiplies two activations; only scaling by a constant is supported")
    _affine(node, ctx, computed[0], constants[0], 0.0)


@converter("Div", 7, 13, 14)
def div(node: Node, ctx: Context) -> None:
    a, b = node.inputs
    if b not in ctx.constants:
        raise node.unsupported("divides by an activation; only division by a constant is supported")
    divisor = np.asarray(ctx.constants[b], np.float64)
    if not np.all(divisor):
        raise node.unsupported("divides by a constant that holds zeros")
    _affine(node, ctx, a, 1.0 / divisor, 0.0)


@converter("Relu", 6, 13, 14)
def relu(node: Node, ctx: Context) -> None:
    ctx.emit(node, ReLU, [node.inputs[0]])


@converter("Max", 6, 8, 12, 13)
def max_(node: Node, ctx: Context) -> None:
    """``Max(x, 0)`` is a ReLU: what torch's dynamo exporter writes for ``torch.clamp(x, min=0)``. A maximum of two
    activations, or against another constant, has no spiking neuron."""
    computed, constants = _split_operands(node, ctx)
    if len(computed) != 1 or len(constants) != 1:
        raise node.unsupported(f"a maximum of {len(computed)} activations and {len(constants)} constants; only "
                               f"Max(x, 0), a ReLU, converts")
    if constants[0].size != 1 or constants[0].ravel()[0] != 0:
        raise node.unsupported("a maximum against a constant other than one 0; only Max(x, 0), a ReLU, converts")
    ctx.emit(node, ReLU, computed)


@converter("Clip", 6, 11, 12, 13)
def clip(node: Node, ctx: Context) -> None:
    """Clip(x, 0, max) is a ReLU with a ceiling (ReLU6); other lower bounds are not ReLU-like."""
    if node.opset < 11:
        low, high = node.attr("min", -np.inf), node.attr("max", np.inf)
    else:
        low_c, high_c = ctx.optional_scalar(node, 1, "min"), ctx.optional_scalar(node, 2, "max")
        low = -np.inf if low_c is None else low_c
        high = np.inf if high_c is None else high_c
    if low != 0:
        raise node.unsupported(f"Clip with min {low}; only min 0 (a ReLU, optionally capped) converts to spiking neurons")
    if not high > 0:
        raise BadModelError(f"{node.label}: Clip max {high} leaves nothing above min 0; fix or re-export the model")
    ctx.emit(node, ReLU, [node.inputs[0]], max_value=None if np.isinf(high) else float(high))


@converter("HardSigmoid", 6, 22)
def hard_sigmoid(node: Node, ctx: Context) -> None:
    """``y = max(0, min(1, alpha * x + beta))`` is exactly an ``Affine`` (scale alpha, shift beta) and a ReLU
    capped at 1: a spiking neuron's rate, where the sigmoid it stands for has no spiking equivalent."""
    alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
    scaled = node.outputs[0] + "/affine"
    _affine(node, ctx, node.inputs[0], alpha, beta, output=scaled)
    ctx.emit(node, ReLU, [scaled], max_value=1.0)
