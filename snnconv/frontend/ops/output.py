"""Softmax, LogSoftmax, Sigmoid and Tanh as the model's last op, recorded on the output layer.

None changes which output is largest (a sigmoid or tanh is increasing per element), so the
spiking network integrates the values before it and the host applies the function to
the result (``snnconv.ann``): multi-label heads with a sigmoid convert like classifiers.
Anywhere else in the network they are refused (``Context.layer_of``).

Softmax and LogSoftmax convert over axis 1 of the class scores: ``[N, C]``, or ``[N, C, 1, 1]``
(``[N, C, 1]`` for 1-D data) as a global pool leaves them (SqueezeNet's head). There every
axis after the classes has size 1, so the softmax over axis 1 alone (opset 13 on) and over
all axes from 1 on (the 2-D coercion of opsets 1-12) are the same function of the C values,
and the output layer, which applies it over its first axis, computes it exactly. A Flatten,
Reshape or Squeeze after the head only drops those size-1 axes: it is carried onto the
values before the head (``shape.py``), which is exact for any function that keeps the order
of the values, as these do.
"""

from __future__ import annotations

from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter


def _mark(node: Node, ctx: Context, activation: str) -> None:
    full = ctx.full_shape(node.inputs[0], node)
    rank = len(full)
    axis = node.attr("axis", 1 if node.opset < 13 else -1)
    if axis % rank != 1 or any(d != 1 for d in full[2:]):
        raise node.unsupported(
            f"{node.op} over axis {axis} of a tensor of shape {list(full)}; only over the class scores (axis 1 of "
            "(batch, classes), or of (batch, classes, 1, 1) after a global pool) converts; export the model "
            "without it and apply it to snnconv's outputs"
        )
    ctx.mark_output_activation(node, activation)


@converter("Softmax", 1, 11, 13)
def softmax(node: Node, ctx: Context) -> None:
    _mark(node, ctx, "softmax")


@converter("LogSoftmax", 1, 11, 13)
def log_softmax(node: Node, ctx: Context) -> None:
    _mark(node, ctx, "log_softmax")


@converter("Sigmoid", 1, 6, 13)
def sigmoid(node: Node, ctx: Context) -> None:
    """Per element, any rank: no axis to check."""
    ctx.mark_output_activation(node, "sigmoid")


@converter("Tanh", 1, 6, 13)
def tanh(node: Node, ctx: Context) -> None:
    """Per element, any rank (regression heads in [-1, 1]): the output integrates the values before it."""
    ctx.mark_output_activation(node, "tanh")
