"""Softmax, LogSoftmax and Sigmoid as the model's last op, recorded on the output layer.

None changes which output is largest (a sigmoid is increasing per element), so the
spiking network integrates the values before it and the host applies the function to
the result (``snnconv.ann``): multi-label heads with a sigmoid convert like classifiers.
Anywhere else in the network they are refused (``Context.layer_of``).
"""

from __future__ import annotations

from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter


def _mark(node: Node, ctx: Context, activation: str) -> None:
    rank = len(ctx.full_shape(node.inputs[0], node))
    axis = node.attr("axis", 1 if node.opset < 13 else -1)
    if rank != 2 or axis % rank != 1:
        raise node.unsupported(f"{node.op} over axis {axis} of a rank-{rank} tensor; only over the class scores (batch, classes) converts")
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
