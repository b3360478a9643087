"""Reading an ONNX file into a ModelProto safely.

Files come from anywhere. Parsing failures, empty or non-ONNX files become one clear
``BadModelError``; tensors stored as external data are read only from files inside the
model's own folder (no absolute paths, no ``..``, no symlinks that lead out).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from onnx import external_data_helper

from snnconv.errors import BadModelError

__all__ = ["read_model"]


def read_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The model and a label naming it in messages (its path, or ``<ModelProto>``)."""
    if isinstance(source, onnx.ModelProto):
        _refuse_binary_text(source, "<ModelProto>")
        _refuse_unloaded_external_data(source)
        return source, "<ModelProto>"
    path = Path(source)
    label = str(path)
    if not path.is_file():
        raise BadModelError(f"{label}: no such file; pass the path of an .onnx model")
    data = path.read_bytes()
    if not data:
        raise BadModelError(f"{label}: the file is empty; export the model to ONNX again")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadModelError(
            f"{label}: not an ONNX model (protobuf parse failed: {exc}); the file is truncated or of another "
            "format: check the path, or export the model again"
        ) from None
    if model.ir_version == 0 or not model.HasField("graph"):
        raise BadModelError(
            f"{label}: not an ONNX model (no IR version or graph); check the path, or export the model again"
        )
    _refuse_binary_text(model, label)
    _load_external_data(model, path.parent, label)
    return model, label


def _refuse_binary_text(message: Message, label: str) -> None:
    """Refuse names and other text fields that are not UTF-8 (protobuf hands them over as bytes)."""
    for field, value in message.ListFields():
        items = (value,) if isinstance(value, (str, bytes, Message)) else value  # else a repeated field
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in items:
                _refuse_binary_text(item, label)
        elif field.type == FieldDescriptor.TYPE_STRING and any(isinstance(item, bytes) for item in items):
            raise BadModelError(f"{label}: the {message.DESCRIPTOR.name} field {field.name!r} is not UTF-8 text; "
                                "the file is damaged: export the model again")


def _graph_tensors(graph: onnx.GraphProto):
    """Every tensor of a graph: initializers and tensor attributes, in subgraphs too."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in _graph_tensors(model.graph) if external_data_helper.uses_external_data(t)]


def _refuse_unloaded_external_data(model: onnx.ModelProto) -> None:
    tensors = _external_tensors(model)
    if tensors:
        raise BadModelError(
            f"<ModelProto>: tensor {tensors[0].name!r} keeps its data in an external file; "
            "pass the model's path instead so snnconv can read it from the model's folder"
        )


def _load_external_data(model: onnx.ModelProto, folder: Path, label: str) -> None:
    tensors = _external_tensors(model)
    if not tensors:
        return
    root = folder.resolve()
    for tensor in tensors:
        location = {entry.key: entry.value for entry in tensor.external_data}.get("location", "")
        _check_location(location, root, f"{label}: tensor {tensor.name!r}")
    try:
        external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as exc:
        raise BadModelError(f"{label}: could not read external data ({exc})") from None


def _check_location(location: str, root: Path, where: str) -> None:
    """Refuse external-data locations that are absolute or lead out of the model's folder."""
    if not location:
        raise BadModelError(f"{where}: external data has no location")
    if os.path.isabs(location) or Path(location).drive:
        raise BadModelError(f"{where}: external data location {location!r} is absolute; only files beside the model are read")
    target = (root / location).resolve()
    if root != target and root not in target.parents:
        raise BadModelError(
            f"{where}: external data location {location!r} leads out of the model's folder; refused"
        )
    if not target.is_file():
        raise BadModelError(f"{where}: external data file {location!r} is missing beside the model")
