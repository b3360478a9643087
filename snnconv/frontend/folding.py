"""Constant folding within budgets: evaluating a node whose inputs are all known.

Weights made by ``ConstantOfShape`` and reshape targets computed by ``Shape -> Gather ->
Concat`` become plain constants by running the node with onnx's reference
implementation. That implementation runs whatever it is given: a 400-byte ``Loop`` of
10^12 iterations, a ``MatMul`` of two 16k x 16k constants, or many ``ConstantOfShape``
nodes each just under the per-tensor cap. So a node folds only if its op is in one of the
tables below, whose cost is known before running them, and only within the model's
budgets, checked before evaluating:

* each result at most ``MAX_ELEMENTS`` elements (onnx's shape inference gives the shape
  from the inputs' shapes and small values, without building anything);
* all results of the model's folds together at most ``MAX_FOLDED_BYTES``;
* all folds together at most ``MAX_FOLD_WORK`` element operations: ``inputs + outputs``
  for elementwise, data-movement and reduction ops, ``outputs x K`` multiply-adds for a
  matrix product over ``K``.

Where shape inference cannot give an output's size, only ops whose every output is no
larger than their inputs together (``NO_LARGER``) fold. The real size of the results is
checked against the budget after evaluating too. Ops with subgraphs (Loop, Scan, If),
random ops, and every op not in the tables are refused: fold them before export.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from snnconv.errors import BadModelError
from snnconv.frontend.context import MAX_ELEMENTS, Node, one_line

__all__ = ["LARGER", "MAX_FOLDED_BYTES", "MAX_FOLD_WORK", "NO_LARGER", "PRODUCTS", "Folder"]

MAX_FOLDED_BYTES = 768 << 20  # VGG-19's 575 MB of float32 weights (onnx's light_vgg19), made by ConstantOfShape
MAX_FOLD_WORK = 2_000_000_000  # element operations: a few seconds of numpy at worst
SHAPE_DATA_ELEMENTS = 4096  # constants up to this size are shown to shape inference by value (shapes, pads, scales)
TEXT_BYTES = 64  # what one element of a text tensor is counted as: a short Python string
WIDEST_BYTES = 16  # bytes per element where the type is unknown (complex128)

# Ops that read only their inputs' shapes: an input costs its rank, not its size.
SHAPE_READERS = frozenset({"Shape", "Size"})

# Ops each of whose outputs holds at most as many elements as their inputs together, with
# vectorized reference implementations: folding costs O(inputs + outputs) and needs no
# shape inference to be bounded.
NO_LARGER = SHAPE_READERS | frozenset({
    # elementwise on one tensor (Clip's bounds and the quantizers' scales are no larger than it)
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BitwiseNot", "Cast", "CastLike", "Ceil", "Celu",
    "Clip", "Cos", "Cosh", "DequantizeLinear", "Elu", "Exp", "Floor", "HardSigmoid", "Identity", "IsInf", "IsNaN",
    "LeakyRelu", "Log", "LogSoftmax", "Neg", "Not", "QuantizeLinear", "Reciprocal", "Relu", "Round", "Selu",
    "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan", "Tanh",
    "ThresholdedRelu",
    # data movement
    "Concat", "DepthToSpace", "Flatten", "Reshape", "Slice", "SpaceToDepth", "Split", "Squeeze", "Transpose",
    "Unsqueeze", "CumSum", "EyeLike", "Trilu",
    # reductions
    "ArgMax", "ArgMin", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
})

# Ops whose output may be larger than their inputs (broadcasting, building from a shape or
# a count): O(inputs + outputs) too, but folded only when shape inference gives the size.
LARGER = frozenset({
    "Add", "And", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Constant", "ConstantOfShape", "Div",
    "Equal", "Expand", "Gather", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Mean", "Min", "Mod",
    "Mul", "Or", "Pad", "Pow", "PRelu", "Range", "Sub", "Sum", "Tile", "Where", "Xor",
})

# Matrix products: output elements x the length of the summed axis multiply-adds.
PRODUCTS = frozenset({"MatMul", "Gemm"})

FOLD_ADVICE = "fold the constants before export (onnxsim, or torch.onnx.export(..., do_constant_folding=True))"


class Folder:
    """Folds the constant nodes of one model, within the model's budgets (see the module's docstring)."""

    def __init__(self) -> None:
        self.folded_bytes = 0  # of every result folded so far
        self.work = 0  # element operations of every fold so far, as estimated before each

    def fold(self, node: Node, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The values of ``node``'s outputs, given ``feeds``, the values of its inputs by name."""
        _refuse_unfoldable(node)
        sizes = _predicted_sizes(node, feeds)
        self._reserve(node, sum(nbytes for _, nbytes in sizes), _work(node, feeds, sizes))
        results = _evaluate(node, feeds)
        total = self.folded_bytes + sum(_nbytes(value) for value in results.values())
        _check_bytes(node, total)  # the real size, in case inference was wrong
        self.folded_bytes = total
        return results

    def _reserve(self, node: Node, nbytes: int, work: int) -> None:
        """Refuse the fold before evaluating if its predicted results or work exceed what is left."""
        _check_bytes(node, self.folded_bytes + nbytes)
        if self.work + work > MAX_FOLD_WORK:
            raise node.unsupported(
                f"folding it takes about {work:,} element operations (multiply-adds), more than the "
                f"{MAX_FOLD_WORK - self.work:,} left of the {MAX_FOLD_WORK:,} snnconv spends folding one model; "
                f"{FOLD_ADVICE}"
            )
        self.work += work


def _check_bytes(node: Node, total: int) -> None:
    """Refuse a fold that brings the model's folded constants to ``total`` bytes, if that is over budget."""
    if total > MAX_FOLDED_BYTES:
        raise node.unsupported(
            f"folding it would bring the model's folded constants to {total:,} bytes, more than the "
            f"{MAX_FOLDED_BYTES:,} snnconv folds in one model; {FOLD_ADVICE}, or check the model: no "
            "neuromorphic chip holds constants that large"
        )


def _refuse_unfoldable(node: Node) -> None:
    """Refuse a node whose cost cannot be bounded before running it."""
    if node.proto.domain not in ("", "ai.onnx"):
        raise node.unsupported(f"all its inputs are constant, and snnconv folds only standard ONNX ops; {FOLD_ADVICE}")
    if any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for attribute in node.proto.attribute):
        raise node.unsupported(
            "runs a subgraph on constant inputs; snnconv does not fold subgraphs, whose cost (a trip count, a "
            f"sequence length) is not known before running them: {FOLD_ADVICE}"
        )
    if node.op not in NO_LARGER | LARGER | PRODUCTS:
        raise node.unsupported(
            f"all its inputs are constant, and snnconv folds only ops whose cost it knows before running them, "
            f"which {node.op} is not; {FOLD_ADVICE}"
        )


def _predicted_sizes(node: Node, feeds: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """(elements, bytes) of each output, before evaluating: from onnx's shape inference, or,
    for ``NO_LARGER`` ops, bounded by their inputs."""
    inferred, reason = _inferred_types(node, feeds)
    sizes = []
    for tensor in filter(None, node.outputs):
        value_type = inferred.get(tensor, onnx.TypeProto())
        shape = _known_shape(value_type)
        if shape is not None:
            elements = math.prod(shape)
            if elements > MAX_ELEMENTS:
                raise BadModelError(f"{node.label}: asks for a constant of shape {shape}, far too large; "
                                    "the model is malformed: fix or re-export it")
            sizes.append((elements, elements * _itemsize(value_type.tensor_type.elem_type)))
        elif node.op in NO_LARGER:
            bound = _input_elements(node, feeds)
            sizes.append((bound, bound * WIDEST_BYTES))
        else:
            because = f" ({reason})" if reason else ""
            raise node.unsupported(
                f"onnx's shape inference cannot tell the size of its output {tensor!r}{because}, so snnconv "
                f"cannot bound the cost of folding it; {FOLD_ADVICE}"
            )
    return sizes


def _inferred_types(node: Node, feeds: dict[str, np.ndarray]) -> tuple[dict[str, onnx.TypeProto], str]:
    """onnx's inferred type of each output of ``node`` alone; and why inference failed, if it did."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_single_node_model(node, feeds), strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - inference raises onnx's, protobuf's and C++ errors alike
        return {}, one_line(exc)
    return {value.name: value.type for value in inferred.graph.output}, ""


def _known_shape(value_type: onnx.TypeProto) -> list[int] | None:
    """The dimensions of a tensor type, or None unless all are known (negative means int64 overflowed)."""
    tensor_type = value_type.tensor_type
    if not value_type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return None
    dims = tensor_type.shape.dim
    if not all(dim.HasField("dim_value") and dim.dim_value >= 0 for dim in dims):
        return None
    return [dim.dim_value for dim in dims]


def _itemsize(element_type: int) -> int:
    if element_type == onnx.TensorProto.STRING:
        return TEXT_BYTES
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(element_type).itemsize
    except (KeyError, TypeError, ValueError):
        return WIDEST_BYTES


def _nbytes(array: np.ndarray) -> int:
    return array.size * TEXT_BYTES if array.dtype == object else array.nbytes


def _input_elements(node: Node, feeds: dict[str, np.ndarray]) -> int:
    """Elements of every input slot (a tensor read twice counts twice); for shape readers, its rank."""
    arrays = [feeds[tensor] for tensor in node.inputs if tensor]
    if node.op in SHAPE_READERS:
        return sum(array.ndim for array in arrays)
    return sum(array.size for array in arrays)


def _work(node: Node, feeds: dict[str, np.ndarray], sizes: list[tuple[int, int]]) -> int:
    """Element operations of the fold: ``inputs + outputs``, or ``outputs x K`` for a matrix product."""
    outputs = sum(elements for elements, _ in sizes)
    if node.op in PRODUCTS:
        return outputs * _summed_length(node, feeds[node.inputs[0]])
    return _input_elements(node, feeds) + outputs


def _summed_length(node: Node, a: np.ndarray) -> int:
    """K of a matrix product A x B: the length of A's axis that is summed over."""
    if a.ndim == 0:
        return 1
    if node.op == "Gemm" and node.attr("transA", 0):
        return a.shape[0]
    return a.shape[-1]


def _evaluate(node: Node, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``node`` with onnx's reference implementation."""
    try:
        results = ReferenceEvaluator(_single_node_model(node)).run(None, feeds)
    except Exception as exc:  # the reference runtime raises many kinds (MemoryError too); all mean "cannot fold"
        raise BadModelError(f"{node.label}: cannot evaluate this constant node "
                            f"({type(exc).__name__}: {one_line(exc)}); fix or re-export the model") from exc
    return {tensor: np.asarray(value) for tensor, value in zip(filter(None, node.outputs), results)}


def _single_node_model(node: Node, feeds: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """``node`` alone in a model at the node's opset (the reference runtime resolves versions by model).

    With ``feeds``, the inputs are declared with their types and shapes, and small ones
    are given by value, for shape inference.
    """
    untyped = onnx.TypeProto()
    inputs = [onnx.helper.make_value_info(t, untyped) for t in node.inputs if t]
    values = []
    if feeds is not None:
        inputs = [_typed(name, array) for name, array in feeds.items()]
        values = [onnx.numpy_helper.from_array(np.asarray(array), name) for name, array in feeds.items()
                  if array.size <= SHAPE_DATA_ELEMENTS]
    graph = onnx.helper.make_graph(
        [node.proto], "fold", inputs, [onnx.helper.make_value_info(t, untyped) for t in node.outputs if t], values
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", _reference_opset(node))])


def _reference_opset(node: Node) -> int:
    """The opset the reference runtime evaluates ``node`` at: its own, except where the runtime implements only a
    later version whose semantics are the same for every input the earlier version accepts (the quantizers of
    opsets 10 and 13: 19 adds float8 types, nothing else)."""
    if node.op in ("QuantizeLinear", "DequantizeLinear") and 10 <= node.opset < 19:
        return 19
    return node.opset


def _typed(name: str, array: np.ndarray) -> onnx.ValueInfoProto:
    try:
        element = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    except (KeyError, TypeError, ValueError):
        element = onnx.TensorProto.UNDEFINED
    return onnx.helper.make_tensor_value_info(name, element, array.shape)
