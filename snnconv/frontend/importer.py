"""ONNX ModelProto -> IR Graph.

Steps: check the opset and the model (``onnx.checker``, shape and type inference), fix the
input's sample shape, then walk the nodes in order. A node whose inputs are all constant
(or a ``Shape`` of a tensor whose shape is known) is folded with onnx's reference
implementation, so weights made by ``ConstantOfShape`` and reshape targets computed by
``Shape -> Gather -> Concat`` become plain constants. Every other node goes to its
registered converter. Layers that do not reach the output are dropped at the end.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnx.version_converter
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from snnconv.errors import BadGraphError, BadModelError, SnnconvError, UnsupportedOpError
from snnconv.frontend.context import MAX_ELEMENTS, Context, Node, check_size
from snnconv.frontend.registry import lookup
from snnconv.ir import Graph, Input, Output

__all__ = ["MIN_OPSET", "import_model"]

MIN_OPSET = 9
SHAPE_DATA_ELEMENTS = 4096  # constants up to this size are shown to shape inference by value (shapes, pads, scales)


def import_model(model: onnx.ModelProto, label: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Convert ``model`` to a validated IR graph; ``label`` names the model in errors."""
    graph_input, sample_shape, batch = _input_signature(model, label, input_shape)
    model = _upgraded(model, label, graph_input.name, sample_shape, batch)
    opset = _default_opset(model, label)
    model = _checked(_with_input_shape(model, graph_input.name, sample_shape), label)
    ctx = Context(batch=batch)
    ctx.constants.update(_initializers(model.graph, label))
    ctx.add_layer(Input(name=graph_input.name, inputs=(), shape=sample_shape), graph_input.name)
    for index, proto in enumerate(model.graph.node):
        node = Node(proto, opset, index)
        for tensor in node.outputs:
            ctx.producers[tensor] = node.label
        _import_node(node, ctx)
    _add_output(model.graph, ctx, label)
    try:
        return Graph.from_layers(_reaching_output(ctx.layers), name=model.graph.name or "graph")
    except BadGraphError as exc:
        raise BadModelError(f"{label}: {exc}; fix or re-export the model") from None


def _default_opset(model: onnx.ModelProto, label: str) -> int:
    versions = {entry.domain: entry.version for entry in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        raise BadModelError(f"{label}: the model imports no default-domain opset; re-export it with an opset")
    if opset > newest:
        raise UnsupportedOpError(
            f"{label}: opset {opset} is newer than the installed onnx {onnx.__version__} knows ({newest}); upgrade onnx"
        )
    return opset


def _upgraded(model: onnx.ModelProto, label: str, input_name: str, sample: tuple[int, ...],
              batch: int) -> onnx.ModelProto:
    """Models older than opset 9 go through onnx's version converter to opset 9 first.

    The converter needs concrete dimensions, so the input is pinned to (batch, *sample).
    """
    versions = {entry.domain: entry.version for entry in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None or opset >= MIN_OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(_with_input_shape(model, input_name, sample, batch), MIN_OPSET)
    except Exception as exc:  # the converter raises RuntimeError and C++ errors alike
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UnsupportedOpError(
            f"{label}: opset {opset} is older than {MIN_OPSET} and onnx's version converter could not upgrade it "
            f"({first}); re-export the model at opset {MIN_OPSET} or newer"
        ) from None


def _input_signature(model: onnx.ModelProto, label: str, input_shape: tuple[int, ...] | None):
    """The graph's one real input, its sample shape and the value standing for the batch."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise UnsupportedOpError(f"{label}: the model has {len(inputs)} inputs ({names}); snnconv converts models with one input")
    graph_input = inputs[0]
    tensor_type = graph_input.type.tensor_type
    if not graph_input.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        declared: list = [None] * (len(input_shape) + 1) if input_shape else None
    else:
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if declared is None:
        raise BadModelError(f"{label}: input {graph_input.name!r} declares no shape; pass --input-shape C,H,W")
    if len(declared) < 2:
        raise UnsupportedOpError(
            f"{label}: input {graph_input.name!r} has rank {len(declared)}; snnconv expects (batch, features...)"
        )
    negative = [axis for axis, dim in enumerate(declared) if dim is not None and dim < 0]
    if negative:
        raise BadModelError(f"{label}: input {graph_input.name!r} declares dimension {negative[0]} as "
                            f"{declared[negative[0]]}; fix or re-export the model")
    batch = declared[0] or 1
    sample = _resolve_sample_shape(declared[1:], input_shape, f"{label}: input {graph_input.name!r}")
    return graph_input, sample, batch


def _resolve_sample_shape(declared: list, override: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    if override is not None:
        override = tuple(int(d) for d in override)
        if len(override) != len(declared):
            raise BadModelError(f"{where}: --input-shape has {len(override)} dims, the model's sample has {len(declared)}")
        for axis, (want, have) in enumerate(zip(override, declared), start=1):
            if want < 1 or (have is not None and have != want):
                raise BadModelError(f"{where}: --input-shape gives {want} at axis {axis}, the model fixes {have}")
        check_size(override, f"{where} (--input-shape)")
        return override
    for axis, dim in enumerate(declared, start=1):
        if dim == 0:
            raise BadModelError(f"{where}: dimension {axis} is 0, an empty tensor; fix the model's input shape")
        if dim is None:
            example = ",".join(str(d or "?") for d in declared)
            raise BadModelError(
                f"{where}: dimension {axis} is dynamic; pass one sample's shape: input_shape=({example}) "
                f"from Python, --input-shape {example} on the command line"
            )
    check_size(tuple(declared), where)
    return tuple(declared)


def _with_input_shape(model: onnx.ModelProto, name: str, sample: tuple[int, ...],
                      batch: int | None = None) -> onnx.ModelProto:
    """A copy of ``model`` whose input declares ``sample`` behind its batch dimension
    (kept as declared, symbolic if undeclared, or set to ``batch``)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for graph_input in fixed.graph.input:
        if graph_input.name == name:
            dims = graph_input.type.tensor_type.shape.dim
            first = onnx.TensorShapeProto.Dimension()
            if batch is not None:
                first.dim_value = batch
            elif len(dims):
                first.CopyFrom(dims[0])
            else:
                first.dim_param = "N"
            del dims[:]
            dims.add().CopyFrom(first)
            for size in sample:
                dims.add().dim_value = size
    return fixed


def _checked(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        onnx.checker.check_model(model)
        # not strict: before opset 22 onnx counts a ceil-mode pooling window that starts in the end
        # padding, which torch and onnxruntime drop; snnconv checks every shape itself on import
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        # ValueError: type inference meets a tensor data type onnx does not know
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BadModelError(f"{label}: the ONNX checker rejects the model: {reason}; fix or re-export the model") from None


def _initializers(graph: onnx.GraphProto, label: str) -> dict[str, np.ndarray]:
    constants = {}
    for tensor in graph.initializer:
        try:
            array = numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as exc:
            raise BadModelError(f"{label}: initializer {tensor.name!r} is malformed ({exc})") from None
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise BadModelError(f"{label}: initializer {tensor.name!r} holds NaN or infinite values; retrain or fix it")
        constants[tensor.name] = array
    return constants


def _import_node(node: Node, ctx: Context) -> None:
    real_inputs = [t for t in node.inputs if t]
    if node.op == "Shape" and real_inputs[0] in ctx.values:
        # a zero-strided stand-in: Shape reads only the shape, so nothing of the batch's size is allocated
        stand_in = np.broadcast_to(np.float32(0), ctx.full_shape(real_inputs[0], node))
        _fold(node, ctx, {real_inputs[0]: stand_in})
    elif all(t in ctx.constants for t in real_inputs):
        _fold(node, ctx, {t: ctx.constants[t] for t in real_inputs})
    else:
        lookup(node.op, node.proto.domain, node.opset, node.label)(node, ctx)


def _fold(node: Node, ctx: Context, feeds: dict[str, np.ndarray]) -> None:
    """Evaluate a node whose inputs are known with onnx's reference implementation."""
    _refuse_huge_constant(node, feeds)
    try:
        results = ReferenceEvaluator(_single_node_model(node)).run(None, feeds)
    except SnnconvError:
        raise
    except Exception as exc:  # the reference runtime raises many kinds; all mean "cannot fold"
        raise BadModelError(f"{node.label}: cannot evaluate this constant node ({type(exc).__name__}: {exc})") from None
    for tensor, value in zip(node.outputs, results):
        if tensor:
            ctx.constants[tensor] = np.asarray(value)


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
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", node.opset)])


def _typed(name: str, array: np.ndarray) -> onnx.ValueInfoProto:
    try:
        element = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    except (KeyError, TypeError, ValueError):
        element = onnx.TensorProto.UNDEFINED
    return onnx.helper.make_tensor_value_info(name, element, array.shape)


def _refuse_huge_constant(node: Node, feeds: dict[str, np.ndarray]) -> None:
    """Refuse a fold whose result would not fit in memory (ConstantOfShape, Expand, Tile, Range, ...).

    onnx's shape inference computes the output shapes from the inputs' shapes and, for
    small inputs (shapes, repeats, pads, limits), their values, without building anything.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(_single_node_model(node, feeds), strict_mode=False)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, TypeError, ValueError,
            KeyError):
        return  # what inference refuses, the evaluator refuses with a clearer message
    for value in inferred.graph.output:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims) and math.prod(d.dim_value for d in dims) > MAX_ELEMENTS:
            shape = [d.dim_value for d in dims]
            raise BadModelError(f"{node.label}: asks for a constant of shape {shape}, far too large; "
                                "the model is malformed: fix or re-export it")


def _add_output(graph: onnx.GraphProto, ctx: Context, label: str) -> None:
    if len(graph.output) != 1:
        names = ", ".join(repr(o.name) for o in graph.output) or "none"
        raise UnsupportedOpError(
            f"{label}: the model has {len(graph.output)} outputs ({names}); snnconv converts models with one output"
        )
    tensor = graph.output[0].name
    activation = None
    if tensor in ctx.output_activations:
        activation, tensor = ctx.output_activations[tensor]
    if tensor not in ctx.values:
        raise BadModelError(f"{label}: output {graph.output[0].name!r} does not depend on the input")
    source = ctx.layer(ctx.values[tensor])
    output = Output(name=ctx.unique_name("output"), inputs=(source.name,), shape=source.shape, activation=activation)
    ctx.add_layer(output, graph.output[0].name)


def _reaching_output(layers: list) -> list:
    """The layers the output depends on (Dropout masks and other side branches go)."""
    needed = {layers[-1].name}
    for layer in reversed(layers):
        if layer.name in needed:
            needed.update(layer.inputs)
    return [layer for layer in layers if layer.name in needed]
