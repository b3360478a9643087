"""Reading an ONNX file into a ModelProto safely.

Files come from anywhere. The model is read as a regular file of bounded size, never
blocking (``snnconv.files``); parsing failures, empty or non-ONNX files become one clear
``BadModelError``.

A tensor may keep its bytes in another file ("external data"), and tensors sit in many
places: initializers, sparse initializers (values and indices), node attributes (dense
or sparse), subgraphs of any depth, model-local functions, training information. onnx's
helpers resolve an external location that nobody loaded relative to the current working
directory (``numpy_helper.to_array``, the C++ checker), so the reader walks every
message of the model, and loads every external tensor itself: only from a regular file
inside the model's folder (no absolute paths, no ``..``, no symlinks that lead out),
only the byte range the tensor declares, and only while the whole model stays within
the 2 GiB a ModelProto can hold. The tensor then holds its bytes as ``raw_data`` and no
longer names a file, so no onnx helper afterwards ever resolves a path.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from snnconv.errors import BadModelError
from snnconv.files import open_input, read_input
from snnconv.frontend.context import one_line

__all__ = ["MAX_MODEL_BYTES", "read_model"]

# protobuf cannot serialize or parse a message of 2 GiB or more, and onnx's checker and
# shape inference serialize the model: the model and its external data together must fit.
MAX_MODEL_BYTES = (2 << 30) - 1


class _Extent(NamedTuple):
    """Where one tensor's external bytes lie: a checked file in the model's folder, and a range of it."""

    tensor: onnx.TensorProto
    where: str  # names the tensor in messages
    location: str  # as the model writes it
    path: Path  # resolved, inside the model's folder
    offset: int
    length: int


def read_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The model and a label naming it in messages (its path, or ``<ModelProto>``)."""
    if isinstance(source, onnx.ModelProto):
        _refuse_unloaded_external_data(_external_tensors(source, "<ModelProto>"))
        return source, "<ModelProto>"
    path = Path(source)
    label = str(path)
    data = read_input(path, "an .onnx model", BadModelError, MAX_MODEL_BYTES)
    if not data:
        raise BadModelError(f"{label}: the file is empty; export the model to ONNX again")
    model = _parsed(data, label)
    _load_external_data(_external_tensors(model, label), path.parent, label, len(data))
    return model, label


def _parsed(data: bytes, label: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # DecodeError, and whatever else protobuf's C parser reports
        raise BadModelError(
            f"{label}: not an ONNX model (protobuf parse failed: {one_line(exc)}); the file is truncated or of another "
            "format: check the path, or export the model again"
        ) from exc
    if model.ir_version == 0 or not model.HasField("graph"):
        raise BadModelError(
            f"{label}: not an ONNX model (no IR version or graph); check the path, or export the model again"
        )
    return model


def _messages(message: Message, where: str) -> Iterator[tuple[str, Message]]:
    """``message`` and every message inside it, at any depth, each with its path (``graph.node[3].attribute[0].t``).

    Generic over the schema, so no place a tensor can sit is forgotten. protobuf refuses
    to parse messages nested more than 100 deep, so the recursion is shallow.
    """
    yield where, message
    prefix = f"{where}." if where else ""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            yield from _messages(value, prefix + field.name)
        else:  # a repeated field
            for index, item in enumerate(value):
                yield from _messages(item, f"{prefix}{field.name}[{index}]")


def _external_tensors(model: onnx.ModelProto, label: str) -> list[tuple[str, onnx.TensorProto]]:
    """Every tensor that names an external file, with its path; text that is not UTF-8 is refused on the way."""
    found = []
    for where, message in _messages(model, ""):
        _refuse_binary_text(message, label)
        if isinstance(message, onnx.TensorProto) and _names_a_file(message):
            found.append((where, message))
    return found


def _names_a_file(tensor: onnx.TensorProto) -> bool:
    """Marked as external, or carrying external-data entries (which some tool might still follow)."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _refuse_binary_text(message: Message, label: str) -> None:
    """Refuse names and other text fields that are not UTF-8 (protobuf hands them over as bytes)."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_STRING:
            continue
        items = (value,) if isinstance(value, (str, bytes)) else value  # else a repeated field
        if any(isinstance(item, bytes) for item in items):
            raise BadModelError(f"{label}: the {message.DESCRIPTOR.name} field {field.name!r} is not UTF-8 text; "
                                "the file is damaged: export the model again")


def _refuse_unloaded_external_data(tensors: list[tuple[str, onnx.TensorProto]]) -> None:
    """A ModelProto in memory has no folder to read external data from (onnx would use the working directory)."""
    if tensors:
        where, tensor = tensors[0]
        raise BadModelError(
            f"<ModelProto>: tensor {tensor.name!r} ({where}) keeps its data in an external file; "
            "pass the model's path instead so snnconv can read it from the model's folder"
        )


def _load_external_data(tensors: list[tuple[str, onnx.TensorProto]], folder: Path, label: str,
                        model_bytes: int) -> None:
    """Read every external tensor's bytes into the tensor; every location and the total are checked first."""
    if not tensors:
        return
    root = folder.resolve()
    extents = [_extent(tensor, root, f"{label}: tensor {tensor.name!r} ({where})") for where, tensor in tensors]
    total = model_bytes + sum(extent.length for extent in extents)
    if total > MAX_MODEL_BYTES:
        raise BadModelError(
            f"{label}: the model's weights total {total:,} bytes with its external data, more than the 2 GiB "
            f"({MAX_MODEL_BYTES:,} bytes) an ONNX ModelProto can hold in memory; no neuromorphic target holds "
            "that many weights: check that this is the model you meant, or make it smaller"
        )
    for extent in extents:
        extent.tensor.raw_data = _read(extent)
        extent.tensor.data_location = onnx.TensorProto.DEFAULT
        del extent.tensor.external_data[:]


def _extent(tensor: onnx.TensorProto, root: Path, where: str) -> _Extent:
    """The file and byte range ``tensor`` declares, refused unless the range lies in a regular file inside ``root``.

    The keys are onnx's: ``location``, ``offset`` (default 0) and ``length`` (default: to
    the end of the file); ``checksum`` and ``basepath`` are not needed to read.
    """
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    path, size = _located(location, root, where)
    offset = _byte_count(entries, "offset", where) or 0
    length = _byte_count(entries, "length", where)
    if length is None:
        length = max(size - offset, 0)
    if offset + length > size:
        raise BadModelError(
            f"{where}: external data {location!r} holds {size:,} bytes, but the tensor's bytes run to byte "
            f"{offset + length:,}; the file is truncated or belongs to another model: copy it again with the model"
        )
    return _Extent(tensor, where, location, path, offset, length)


def _located(location: str, root: Path, where: str) -> tuple[Path, int]:
    """The resolved path and size of the regular file ``location`` names inside ``root``; else BadModelError."""
    if not location:
        raise BadModelError(f"{where}: external data has no location; the file is damaged: export the model again")
    if os.path.isabs(location) or Path(location).drive:
        raise BadModelError(f"{where}: external data location {location!r} is absolute; only files in the model's "
                            "folder are read: save the model with its external data beside it")
    try:
        target = (root / location).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise BadModelError(f"{where}: external data location {location!r} cannot be resolved ({one_line(exc)}); "
                            "the file is damaged: export the model again") from exc
    if root != target and root not in target.parents:
        raise BadModelError(f"{where}: external data location {location!r} leads out of the model's folder; "
                            "refused: keep external data files in the model's folder")
    try:
        info = target.stat()
    except FileNotFoundError:
        raise BadModelError(f"{where}: external data file {location!r} is missing beside the model; "
                            "copy it into the model's folder") from None
    except OSError as exc:
        raise BadModelError(f"{where}: external data file {location!r} cannot be read ({exc.strerror or exc}); "
                            "check the model's folder") from exc
    if not stat.S_ISREG(info.st_mode):
        raise BadModelError(f"{where}: external data {location!r} is not a regular file; refused: "
                            "keep external data in plain files beside the model")
    return target, info.st_size


def _byte_count(entries: dict[str, str], key: str, where: str) -> int | None:
    """The external-data entry ``key`` as a byte count, None if absent."""
    if key not in entries:
        return None
    value = entries[key]
    if not (value.isascii() and value.isdigit()) or len(value) > 19:  # 19 digits: beyond any file
        raise BadModelError(f"{where}: external data {key} {value!r} is not a whole number of bytes; "
                            "the file is damaged: export the model again")
    return int(value)


def _read(extent: _Extent) -> bytes:
    """The tensor's bytes, read without blocking and no more than its range."""
    what = f"the external data of {extent.where}"
    # no limit on the file's size: several tensors may share it, and only the checked range is read
    with open_input(extent.path, what, BadModelError, limit=sys.maxsize) as handle:
        handle.seek(extent.offset)
        data = handle.read(extent.length)
    if len(data) != extent.length:
        raise BadModelError(f"{extent.where}: external data {extent.location!r} ended after {len(data):,} of "
                            f"{extent.length:,} bytes while being read; copy it again with the model")
    return data
