"""ONNX ModelProto -> IR Graph.

Steps: check the opset and the model (``onnx.checker``, shape and type inference), fix the
input's sample shape, then walk the nodes in order. A node whose inputs are all constant
(or a ``Shape`` of a tensor whose shape is known) is folded within the model's budgets
(``folding``), so weights made by ``ConstantOfShape`` and reshape targets computed by
``Shape -> Gather -> Concat`` become plain constants. Every other node goes to its
registered converter. Layers that do not reach the output are dropped at the end.

An input of shape ``[N, C, L]`` read by 1-D convolutions or pooling is 1-D spatial data:
its ``Input`` layer has the shape ``(C, 1, L)`` (a feature map of height 1, see
``Context``) and records the source's ``(C, L)`` (``source_shape``): such a model's data is
passed as ``(N, C, L)``, as to the source model (or as ``(N, C, 1, L)``). Without spatial ops an
input ``[N, C, L]`` keeps the shape ``(C, L)``. (torch's legacy exporter writes 1-D pooling as
``Unsqueeze(2) -> 2-D pool -> Squeeze(2)``: views of the same ``(C, 1, L)`` layers.)

Whatever onnx raises on a model it was handed (its checker, shape inference, version
converter, protobuf's serializer past 2 GiB, a RecursionError or MemoryError) becomes a
``BadModelError`` (an ``UnsupportedOpError`` where the version converter cannot upgrade
a sound model), the cause kept.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.version_converter
from onnx import numpy_helper

from snnconv.errors import BadGraphError, BadModelError, UnsupportedOpError
from snnconv.frontend.context import Context, Node, check_size, one_line
from snnconv.frontend.folding import Folder
from snnconv.frontend.registry import lookup
from snnconv.ir import Graph, Input, Output
from snnconv.options import MAX_TIMESTEPS

__all__ = ["MIN_OPSET", "import_model"]

MIN_OPSET = 9

QCFS_LEVELS_KEY = "snnconv.qcfs_levels"  # ONNX metadata: the L a QCFS-trained network converts at (T = L)
# Ops with spatial axes: a model with any of them and an input [N, C, L] has 1-D spatial data.
SPATIAL_OPS = frozenset({"Conv", "ConvTranspose", "AveragePool", "MaxPool", "LpPool", "GlobalAveragePool",
                         "GlobalMaxPool", "GlobalLpPool", "Pad", "ReduceMean"})


def _trained_levels(model: onnx.ModelProto, label: str) -> tuple[tuple[str, object], ...]:
    """The graph fact ``qcfs_levels`` when the model was trained with QCFS activations (``snnconv.training``)."""
    value = next((prop.value for prop in model.metadata_props if prop.key == QCFS_LEVELS_KEY), None)
    if value is None:
        return ()
    if not value.isdigit() or not 1 <= int(value) <= MAX_TIMESTEPS:
        raise BadModelError(f"{label}: metadata {QCFS_LEVELS_KEY} = {value!r} is not a number of levels in "
                            f"1..{MAX_TIMESTEPS}; fix or re-export the model")
    return (("qcfs_levels", int(value)),)


def import_model(model: onnx.ModelProto, label: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Convert ``model`` to a validated IR graph; ``label`` names the model in errors."""
    graph_input, sample_shape, batch = _input_signature(model, label, input_shape)
    model = _upgraded(model, label, graph_input.name, sample_shape, batch)
    opset = _default_opset(model, label)
    model = _checked(_with_input_shape(model, graph_input.name, sample_shape), label)
    ctx = Context(batch=batch)
    ctx.constants.update(_initializers(model.graph, label))
    one_d = len(sample_shape) == 2 and any(n.op_type in SPATIAL_OPS for n in model.graph.node)
    held = (sample_shape[0], 1, sample_shape[1]) if one_d else sample_shape
    ctx.add_layer(Input(name=graph_input.name, inputs=(), shape=held, source_shape=sample_shape if one_d else None),
                  graph_input.name)
    if one_d:
        ctx.one_d.add(graph_input.name)
    folder = Folder()
    for index, proto in enumerate(model.graph.node):
        node = Node(proto, opset, index)
        for tensor in node.outputs:
            ctx.producers[tensor] = node.label
        _import_node(node, ctx, folder)
    _add_output(model.graph, ctx, label)
    try:
        return Graph.from_layers(_reaching_output(ctx.layers), name=model.graph.name or "graph",
                                 facts=_trained_levels(model, label) + tuple(sorted(ctx.facts.items())))
    except BadGraphError as exc:
        raise BadModelError(f"{label}: {exc}; fix or re-export the model") from exc


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
        ) from exc


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
    except Exception as exc:  # ValidationError, InferenceError, ValueError on unknown types, EncodeError past 2 GiB
        raise BadModelError(f"{label}: the ONNX checker rejects the model: {one_line(exc)}; "
                            "fix or re-export the model") from exc


def _initializers(graph: onnx.GraphProto, label: str) -> dict[str, np.ndarray]:
    constants = {}
    for tensor in graph.initializer:
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as exc:  # ValueError, TypeError, MemoryError
            raise BadModelError(f"{label}: initializer {tensor.name!r} is malformed ({one_line(exc)}); "
                                "fix or re-export the model") from exc
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise BadModelError(f"{label}: initializer {tensor.name!r} holds NaN or infinite values; retrain or fix it")
        constants[tensor.name] = array
    return constants


def _import_node(node: Node, ctx: Context, folder: Folder) -> None:
    real_inputs = [t for t in node.inputs if t]
    if node.op == "Shape" and real_inputs[0] in ctx.values:
        # a zero-strided stand-in: Shape reads only the shape, so nothing of the batch's size is allocated
        stand_in = np.broadcast_to(np.float32(0), ctx.full_shape(real_inputs[0], node))
        ctx.constants.update(folder.fold(node, {real_inputs[0]: stand_in}))
    elif all(t in ctx.constants for t in real_inputs):
        ctx.constants.update(folder.fold(node, {t: ctx.constants[t] for t in real_inputs}))
    else:
        lookup(node.op, node.proto.domain, node.opset, node.label)(node, ctx)


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
