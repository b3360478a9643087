"""Gemm and MatMul with constant weights -> ``Dense`` layers."""

from __future__ import annotations

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import Dense


def _require_vector_input(node: Node, ctx: Context) -> int:
    shape = ctx.shape(node.inputs[0], node)
    if len(shape) != 1:
        rnn = (", or, for a ReLU RNN that torch's dynamo exporter unrolled into MatMuls, export it with "
               "torch.onnx.export(..., dynamo=False), which writes the ONNX RNN node snnconv converts"
               if len(shape) == 2 else "")
        raise node.unsupported(f"input of sample shape {shape}; a dense layer takes (batch, features): flatten it "
                               f"first{rnn}")
    return shape[0]


@converter("Gemm", 9, 11, 13)
def gemm(node: Node, ctx: Context) -> None:
    """``Y = alpha * A' @ B' + beta * C`` with A the activation -> ``W = alpha * B'^T``, ``b = beta * C``."""
    if node.inputs[0] in ctx.constants:
        raise node.unsupported("the activation is input B; snnconv needs the weights as constant input B")
    if node.attr("transA", 0):
        raise node.unsupported("transA=1 transposes the batch with the features")
    _require_vector_input(node, ctx)
    b_matrix = ctx.require_const(node, 1, "weights B").astype(np.float64)
    if b_matrix.ndim != 2:
        raise BadModelError(f"{node.label}: weights B of shape {b_matrix.shape}; Gemm takes a matrix")
    weight = b_matrix if node.attr("transB", 0) else b_matrix.T
    weight = node.attr("alpha", 1.0) * weight
    out_features = weight.shape[0]
    c = ctx.optional_const(node, 2, "bias C")
    bias = np.zeros(out_features) if c is None else node.attr("beta", 1.0) * np.asarray(c, np.float64)
    if bias.size not in (1, out_features):
        raise node.unsupported(f"bias C of shape {bias.shape}; expected ({out_features},) or broadcastable")
    bias = np.broadcast_to(bias.reshape(-1), (out_features,))
    ctx.emit(node, Dense, [node.inputs[0]], weight=weight.astype(np.float32), bias=bias.astype(np.float32))


@converter("MatMul", 9, 13)
def matmul(node: Node, ctx: Context) -> None:
    """``Y = X @ B`` with constant B of shape (in, out) -> ``W = B^T``, ``b = 0``."""
    if node.inputs[0] in ctx.constants:
        raise node.unsupported("the activation is the second operand; snnconv needs X @ constant")
    _require_vector_input(node, ctx)
    b_matrix = ctx.require_const(node, 1, "weights")
    if b_matrix.ndim != 2:
        raise node.unsupported(f"weights of rank {b_matrix.ndim}; only 2-D weight matrices are supported")
    ctx.emit(node, Dense, [node.inputs[0]], weight=b_matrix.T.astype(np.float32),
             bias=np.zeros(b_matrix.shape[1], np.float32))
