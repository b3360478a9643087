"""The ``.snn`` artifact: one zip file, a JSON manifest and arrays as ``.npy``. Never pickle.

Layout::

    manifest.json          format, version, snnconv version, target, options, facts,
                           program (the layers at chip precision), mapping (chips, traffic,
                           the names the core table refers to), report totals, and the
                           SHA-256 of every array
    arrays/<layer>/<field>.npy
    core_table/<cores, tiles, inputs, routes>.npy   (``snnconv.core_table``)

The program lists every layer with its integer weights, thresholds and number formats
(host-computed input layers stay float); the core table says which box of which
population each core holds and which source channels an input group reads: with the
program's kernels these are the per-core synapse blocks. A recurrent network
(``snnconv.recurrent``, streamed item by item) has an empty program and a ``recurrent``
section instead: its program's fields (arrays under ``arrays/recurrent/``, checksummed
alike) and its core table, read back with the same checks (``write_recurrent``,
``check_recurrent_precision``). ``write`` is atomic (a
temporary file in the same folder, then a rename) and deterministic: zip entries in a
fixed order with a fixed timestamp, so the same compilation gives the same bytes.
``read`` opens only a regular file (``snnconv.files``: a FIFO or a device is refused, not
waited on) and, from the zip's directory before reading any member, refuses what no
artifact holds: a manifest over ``MAX_MANIFEST_BYTES``, members over
``MAX_UNPACKED_BYTES`` in all, compressions other than deflate. It checks the format, the
version, that every listed array is used by a layer, and every checksum before building
anything, reads each array's .npy header before the array (numbers only, the declared size
present) and loads it with ``allow_pickle=False``, within ``MAX_PROGRAM_BYTES`` in all;
then every program field against its type in ``snnconv.ir.layers``, ``options.timesteps``
against ``MAX_TIMESTEPS``, and the core table against the program (``snnconv.core_table``:
every tile inside its population, every neuron on exactly one core). So a network that
loads also runs.
``check_precision`` checks the program's integers against a target's formats. A file is
never extracted to disk; member names are only keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from snnconv import core_table, files, geometry, neurons
from snnconv.errors import BadArtifactError, BadGraphError, DoesNotFitError
from snnconv.ir import IF, LAYER_KINDS, OUTPUT_ACTIVATIONS, Affine, Conv, Dense, Graph, Layer, Output, Round
from snnconv.mapping import Mapping
from snnconv.options import MAX_TIMESTEPS  # the cap of the API and the CLI holds for an artifact's T too
from snnconv.recurrent_program import POPULATIONS, CoreUse, RecurrentProgram, StackedLayer
from snnconv.targets.target import Precision, Target

__all__ = ["FORMAT", "MAX_TIMESTEPS", "VERSION", "Artifact", "check_precision", "check_recurrent_precision", "read",
           "write", "write_recurrent"]

FORMAT = "snnconv-artifact"
VERSION = 3  # 2: each core lists its routes; 3: the core table as arrays (snnconv.core_table)
CORE_TABLE = "core_table"  # its members: core_table/<cores, tiles, inputs, routes>.npy
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: the same bytes on every run
# Budgets, each checked before what it bounds is read or built. The largest network compiled, VGG-19 on loihi
# (143 M weights, 243,203 cores; benchmarks/compile_zoo.py), takes 1.2 GB in the program; a hostile file can make
# the reader take at most about the program budget, the members' and the core table's objects
# (``snnconv.core_table.MAX_OBJECT_BYTES``) together.
MAX_FILE_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 64 << 20  # the worst JSON (empty lists) of this size parses to 1.7 GB in 11 s
MAX_UNPACKED_BYTES = 1 << 29  # all members together, as the zip's directory declares them
MAX_PROGRAM_BYTES = 3 << 29  # the arrays in the program, where integers become float64
MAX_DEPTH = 32  # nesting of the manifest: snnconv writes 8 (mapping, cores, tiles, box, ranges, ...)
MAX_INT = 1 << 31  # integers in the program and the core table are counts and sizes far below this
# Layer fields added within this format version: written only where set (an older snnconv reads the rest, which
# it would refuse for an unknown field), read as their default where absent (artifacts written before them).
# Input: a 1-D network's (C, L); IF: the spikes per step of a population of graded or burst neurons; Output: the
# steps its readout leaves out
WRITTEN_WHEN_SET = frozenset({"source_shape", "spikes_per_step", "burn_in"})
FACT_CHOICES = {"dtype": ("float32", "float64"), "encoding": ("current", "rate")}
FIELD_CHOICES = {"reset": ("subtract", "zero"), "model": neurons.names(), "mode": ("avg", "sum", "max"),
                 "activation": OUTPUT_ACTIVATIONS}
INT_RANGES = {"stride": (1, MAX_INT), "kernel": (1, MAX_INT), "dilation": (1, MAX_INT), "groups": (1, MAX_INT),
              "compartments": (1, MAX_INT), "bits": (1, 65), "state_bits": (1, 65), "exponent": (-1074, 1024),
              "spikes_per_step": (1, 1 << 16), "steps_per_item": (1, MAX_TIMESTEPS + 1), "items": (1, MAX_INT),
              "bias_format": (-1074, 1024), "burn_in": (1, MAX_TIMESTEPS)}


@dataclasses.dataclass
class Artifact:
    """What a ``.snn`` file holds, rebuilt: the program as a graph, the core map and the manifest."""

    graph: Graph | None  # None for a recurrent program
    mapping: Mapping | None
    manifest: dict
    recurrent: RecurrentProgram | None = None  # a recurrent program (``snnconv.recurrent``), its own section


def write(path: str | Path, graph: Graph, manifest_extra: dict) -> Path:
    """Write ``graph`` (with its ``mapping`` fact) and ``manifest_extra`` to ``path`` atomically."""
    files.check_outputs({"the artifact": path})

    def fill(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            encode(graph, manifest_extra, handle)

    return files.atomic_write(path, fill)


def encode(graph: Graph, manifest_extra: dict, stream: BinaryIO, compress: bool = True) -> None:
    """Write the artifact to ``stream``: the same graph and options always give the same bytes."""
    arrays: dict[str, np.ndarray] = {}
    program = [_layer_entry(layer, arrays) for layer in graph]
    mapping: Mapping | None = graph.fact("mapping")
    facts = {key: _jsonable(value) for key, value in graph.facts if key != "mapping"}
    manifest = {"format": FORMAT, "version": VERSION, "name": graph.name, "facts": facts, "program": program,
                "mapping": _mapping_entry(mapping, arrays) if mapping else None, **manifest_extra}
    _pack(manifest, arrays, stream, compress)


def write_recurrent(path: str | Path, program: RecurrentProgram, name: str, manifest_extra: dict) -> Path:
    """Write a recurrent program (``snnconv.recurrent``) to ``path`` atomically, as ``write`` writes a graph."""
    files.check_outputs({"the artifact": path})

    def fill(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            encode_recurrent(program, name, manifest_extra, handle)

    return files.atomic_write(path, fill)


def encode_recurrent(program: RecurrentProgram, name: str, manifest_extra: dict, stream: BinaryIO,
                     compress: bool = True) -> None:
    """The artifact of a recurrent program: an empty layer program and a ``recurrent`` section holding the
    program's fields (arrays by reference, checksummed like the layers' arrays) and its core table."""
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": FORMAT, "version": VERSION, "name": name, "facts": {}, "program": [], "mapping": None,
                "recurrent": _recurrent_entry(program, arrays), **manifest_extra}
    _pack(manifest, arrays, stream, compress)


def _pack(manifest: dict, arrays: dict[str, np.ndarray], stream: BinaryIO, compress: bool) -> None:
    """The manifest with the arrays' checksums, and the arrays, as a zip in a fixed order."""
    blobs = {name: _npy(array) for name, array in arrays.items()}
    manifest["checksums"] = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    text = json.dumps(_jsonable(manifest), separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    _refuse_unreadable(manifest, arrays, len(text), len(text) + sum(len(blob) for blob in blobs.values()))
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        _add(archive, "manifest.json", text)
        for name in sorted(blobs):
            _add(archive, name, blobs[name])


def _refuse_unreadable(manifest: dict, arrays: dict[str, np.ndarray], manifest_bytes: int,
                       unpacked_bytes: int) -> None:
    """Refuse to write what ``decode`` would refuse to read: a manifest, members, program arrays or a core table over
    the reader's budgets (before the core table was arrays, DenseNet-121's compile wrote one its reader refused)."""
    rows = {key: len(arrays.get(f"{CORE_TABLE}/{key}.npy", ())) for key in core_table.COLUMNS}
    cores, objects = rows["cores"], core_table.object_bytes(rows)
    program_bytes = sum(array.size * max(array.itemsize, 8) for array in arrays.values())
    for what, size, budget in (("manifest unpacks to {:,} bytes", manifest_bytes, MAX_MANIFEST_BYTES),
                               ("members unpack to {:,} bytes", unpacked_bytes, MAX_UNPACKED_BYTES),
                               ("arrays take {:,} bytes in the program", program_bytes, MAX_PROGRAM_BYTES),
                               ("core table takes {:,} bytes as objects", objects, core_table.MAX_OBJECT_BYTES)):
        if size > budget:
            raise DoesNotFitError(f"the compiled network {manifest.get('name')!r} ({cores:,} cores) needs an artifact "
                                  f"whose {what.format(size)}, more than the {budget:,} an artifact holds (what a "
                                  "reader may be asked to load); compile a smaller network or for a target with "
                                  "larger cores")


def read(path: str | Path) -> Artifact:
    """Load and verify an artifact; every problem is a ``BadArtifactError`` naming the file."""
    path = Path(path)
    with files.open_input(path, "a .snn file from `snnconv compile`", BadArtifactError, MAX_FILE_BYTES) as handle:
        return decode(handle, str(path))


def decode(stream: BinaryIO, label: str) -> Artifact:
    """An artifact from an open binary ``stream`` (a file, or ``io.BytesIO(encode(...))``); ``label`` names it."""
    path = label
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArtifactError(f"{path}: not a snnconv artifact (unreadable zip: {exc})") from exc
    with archive:
        _check_members(archive, path)
        manifest = _manifest(archive, path)
        arrays = _arrays(archive, manifest, path)
    if manifest.get("recurrent") is not None:
        if manifest["program"] or manifest.get("mapping"):
            raise BadArtifactError(f"{path}: a recurrent section beside a layer program or core table; the file was "
                                   "altered or is not from snnconv: compile the model again")
        return Artifact(None, None, manifest, _recurrent(manifest["recurrent"], arrays, f"{path}: recurrent"))
    try:
        layers = [_layer(entry, arrays, f"{path}: program entry {index}")
                  for index, entry in enumerate(manifest["program"])]
        graph = Graph.from_layers(layers, manifest["name"], _facts(manifest["facts"], path))
        mapping = (_mapping(manifest["mapping"], graph, arrays, f"{path}: core table") if manifest.get("mapping")
                   else None)
    except BadArtifactError:
        raise
    except Exception as exc:  # a manifest that passed its checks but does not describe a network
        message = " ".join(str(exc).split())
        raise BadArtifactError(f"{path}: inconsistent artifact ({type(exc).__name__}: {message})") from None
    if mapping is not None:
        graph = graph.rebuilt(graph.layers, mapping=mapping)
    return Artifact(graph, mapping, manifest)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = archive.compression
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _check_members(archive: zipfile.ZipFile, path: str) -> None:
    """Refuse, from the zip's directory alone, members no artifact has: a zip bomb costs nothing then.

    ``zipfile`` never returns more of a member than its declared size, so the declared sizes
    bound what is read: all members together at most ``MAX_UNPACKED_BYTES``, the manifest at
    most ``MAX_MANIFEST_BYTES``. ``write`` deflates; bzip2 and lzma are refused because they
    may inflate one read of a few kB without bound before the size cap applies.
    """
    infos = archive.infolist()
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadArtifactError(f"{path}: member {info.filename} uses compression method {info.compress_type}; "
                                   "snnconv writes deflate only: the file is not from snnconv")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED_BYTES:
        largest = max(infos, key=lambda info: info.file_size)
        raise BadArtifactError(f"{path}: members unpack to {total:,} bytes in all, more than an artifact holds "
                               f"({MAX_UNPACKED_BYTES:,}; the largest, {largest.filename}, unpacks to "
                               f"{largest.file_size:,} bytes); refused: the file is damaged or not from snnconv")
    try:
        manifest = archive.getinfo("manifest.json")
    except KeyError:
        return  # _manifest says so
    if manifest.file_size > MAX_MANIFEST_BYTES:
        raise BadArtifactError(f"{path}: manifest.json unpacks to {manifest.file_size:,} bytes, more than a manifest "
                               f"holds ({MAX_MANIFEST_BYTES:,}); refused: the file is damaged or not from snnconv")


def _manifest(archive: zipfile.ZipFile, path: str) -> dict:
    try:
        manifest = json.loads(archive.read("manifest.json"))
    except KeyError:
        raise BadArtifactError(f"{path}: no manifest.json; not a snnconv artifact") from None
    except (ValueError, RecursionError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise BadArtifactError(f"{path}: manifest unreadable ({exc}); the file is damaged, compile again") from None
    _check_depth(manifest, path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadArtifactError(f"{path}: not a snnconv artifact (format {manifest.get('format')!r})"
                               if isinstance(manifest, dict) else f"{path}: manifest is not an object")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BadArtifactError(f"{path}: artifact format version {version!r} is newer than this snnconv reads "
                               f"({VERSION}); upgrade snnconv")
    if version < VERSION:
        raise BadArtifactError(f"{path}: artifact format version {version} is older than this snnconv writes "
                               f"({VERSION}); compile the model again")
    for key, kind in (("program", list), ("checksums", dict), ("facts", dict), ("name", str)):
        if not isinstance(manifest.get(key), kind):
            raise BadArtifactError(f"{path}: manifest field {key!r} missing or not a {kind.__name__}")
    for key in ("target", "options", "ann"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise BadArtifactError(f"{path}: manifest field {key!r} is not an object")
    if "timesteps" in manifest.get("options", {}):
        _check_timesteps(manifest["options"]["timesteps"], path)
    return manifest


def _check_depth(manifest, path: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH``, walking with a stack (no recursion, no copy): what reads the
    manifest later (the target's infinities, the report) walks it recursively and must not hit Python's limit."""
    stack = [iter([manifest])]
    while stack:
        for value in stack[-1]:
            if isinstance(value, (dict, list)):
                if len(stack) > MAX_DEPTH:
                    raise BadArtifactError(f"{path}: manifest nested more than {MAX_DEPTH} levels deep; snnconv "
                                           "writes 8: the file is not from snnconv")
                stack.append(iter(value.values() if isinstance(value, dict) else value))
                break
        else:
            stack.pop()


def _check_timesteps(value, path: str) -> None:
    """The T ``run`` simulates by default: an integer from 1 to ``MAX_TIMESTEPS``, or a run may never end."""
    if not _is_int(value) or not 1 <= value <= MAX_TIMESTEPS:
        raise BadArtifactError(f"{path}: options.timesteps is {_short(value)}; snnconv simulates 1 to "
                               f"{MAX_TIMESTEPS:,} timesteps (rate-coded conversion reaches the ANN's accuracy within "
                               "a few hundred); compile the model again with fewer timesteps")


def _arrays(archive: zipfile.ZipFile, manifest: dict, path: str) -> dict[str, np.ndarray]:
    """Every array the manifest lists, checked, within ``MAX_PROGRAM_BYTES`` as the program will hold them
    (integers as float64: an int8 array grows eightfold). Arrays that no layer uses are refused unread:
    they could serve no purpose but to cost memory."""
    mapping = manifest.get("mapping")
    sections = [*manifest["program"], *_recurrent_sections(manifest.get("recurrent")),
                mapping.get("table") if isinstance(mapping, dict) else None]
    unused = sorted(set(manifest["checksums"]) - _used_arrays(sections))
    if unused:
        raise BadArtifactError(f"{path}: the manifest lists {len(unused):,} array(s) that no layer or table uses "
                               f"({_short(unused)}); refused: the file was altered or is not from snnconv")
    arrays, program_bytes = {}, 0
    for name, digest in manifest["checksums"].items():
        arrays[name] = _array(archive, name, digest, path)
        program_bytes += arrays[name].size * max(arrays[name].itemsize, 8)
        if program_bytes > MAX_PROGRAM_BYTES:
            raise BadArtifactError(f"{path}: the arrays take more than {MAX_PROGRAM_BYTES:,} bytes in the program "
                                   f"(integers as float64; {name} among them); refused: the file is not from snnconv")
    return arrays


def _used_arrays(program: list) -> set[str]:
    """The members the program's layers refer to (``{"array": name}`` fields)."""
    return {value["array"] for entry in program if isinstance(entry, dict) for value in entry.values()
            if isinstance(value, dict) and isinstance(value.get("array"), str)}


def _array(archive: zipfile.ZipFile, name: str, digest: str, path: str) -> np.ndarray:
    try:
        blob = archive.read(name)
    except KeyError:
        raise BadArtifactError(f"{path}: array {name} listed in the manifest is missing") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise BadArtifactError(f"{path}: array {name} unreadable ({exc}); the file is damaged") from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise BadArtifactError(f"{path}: checksum mismatch for {name}: the file was modified or damaged")
    stream = io.BytesIO(blob)
    try:
        shape, dtype, data_bytes = _npy_header(stream)
    except (ValueError, SyntaxError, tokenize.TokenError, TypeError, EOFError) as exc:
        raise BadArtifactError(f"{path}: array {name} is not a plain .npy array ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise BadArtifactError(f"{path}: array {name} is not a plain .npy array (dtype {dtype}, not numbers); "
                               "snnconv never unpickles")
    if data_bytes != len(blob) - stream.tell():
        raise BadArtifactError(f"{path}: array {name} declares shape {shape} ({data_bytes:,} bytes) but holds "
                               f"{len(blob) - stream.tell():,} bytes; the file is damaged")
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _npy_header(stream: io.BytesIO) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data size from a .npy header, read without building the array."""
    version = npy_format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"npy format version {version} is not one snnconv writes")
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    return shape, dtype, math.prod(shape) * dtype.itemsize


def _layer_entry(layer: Layer, arrays: dict[str, np.ndarray]) -> dict:
    entry = {"kind": layer.kind}
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        if field.name in WRITTEN_WHEN_SET and value is None:
            continue
        if isinstance(value, np.ndarray):
            name = f"arrays/{layer.name}/{field.name}.npy"
            arrays[name] = _compact(value)
            entry[field.name] = {"array": name}
        else:
            entry[field.name] = _jsonable(value)
    return entry


def _compact(array: np.ndarray) -> np.ndarray:
    """Integer-valued arrays (weights at chip precision) in the smallest signed integer type that holds them (an
    8-bit chip's weights with small exponents as int8: a quarter of int32); the rest as they are."""
    largest = _largest_integer(array) if array.dtype.kind == "f" else None
    if largest is not None:
        for dtype in (np.int8, np.int16, np.int32, np.int64):
            if largest < 2.0 ** (np.iinfo(dtype).bits - 1):  # exact as a float: int64's max rounds up to 2^63
                return array.astype(dtype)
    return array


def _largest_integer(array: np.ndarray, chunk: int = 1 << 20) -> float | None:
    """The largest magnitude in ``array`` if every value is a finite integer, else None; read a chunk at a time so
    that no temporary copy of a large layer is made (VGG-19's first dense layer holds 103 M weights)."""
    flat, largest = array.reshape(-1), None
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        if not (np.all(np.isfinite(part)) and np.all(part == np.round(part))):
            return None
        largest = max(largest or 0.0, float(np.abs(part).max()))
    return largest


def _layer(entry, arrays: dict[str, np.ndarray], where: str) -> Layer:
    """A layer from its program entry, every field checked against its type in ``snnconv.ir.layers``."""
    if not isinstance(entry, dict):
        raise BadArtifactError(f"{where}: not an object")
    cls = LAYER_KINDS.get(entry.get("kind"))
    if cls is None:
        raise BadArtifactError(f"{where}: layer of unknown kind {entry.get('kind')!r}")
    where = f"{where} ({entry.get('name')!r})"
    unknown = set(entry) - {"kind"} - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise BadArtifactError(f"{where}: unknown field(s) {sorted(unknown)}")
    kwargs = {f.name: _field(entry[f.name], f.name, str(f.type), arrays, f"{where}: field {f.name!r}")
              for f in dataclasses.fields(cls) if f.name in entry}
    return cls(**kwargs)


def _field(value, name: str, annotation: str, arrays: dict[str, np.ndarray], where: str):
    """``value`` decoded as one of the types in ``annotation`` (e.g. "tuple[int, int]", "float | None")."""
    if name in FIELD_CHOICES and value not in FIELD_CHOICES[name]:
        raise BadArtifactError(f"{where}: {value!r} is not one of {FIELD_CHOICES[name]}")
    low, high = INT_RANGES.get(name, (0, MAX_INT))
    for option in annotation.split(" | "):
        if option == "None" and value is None:
            return None
        if option == "np.ndarray" and isinstance(value, dict) and value.get("array") in arrays:
            array = arrays[value["array"]]
            return array.astype(np.float64) if array.dtype.kind in "biu" else array
        if option == "str" and isinstance(value, str) or option == "bool" and isinstance(value, bool):
            return value
        if option == "int" and _is_int(value):
            return _int(value, where, low, high)
        if option == "float" and _is_number(value):
            return float(value)
        if option.startswith("tuple[") and isinstance(value, list):
            return _sequence(value, option, where, low, high)
        if option == "Shape" and isinstance(value, list):
            return tuple(_int(item, where, 1) for item in value)
    raise BadArtifactError(f"{where}: {_short(value)} is not a {annotation}")


def _sequence(value: list, annotation: str, where: str, low: int = 0, high: int = MAX_INT) -> tuple:
    """A list as "tuple[int, int]", "tuple[int, int, int, int]" or "tuple[str, ...]"."""
    items = annotation[len("tuple["):-1].split(", ")
    if items[-1] != "..." and len(value) != len(items):
        raise BadArtifactError(f"{where}: {_short(value)} does not have {len(items)} items")
    if items[0] == "str":
        if not all(isinstance(item, str) for item in value):
            raise BadArtifactError(f"{where}: {_short(value)} is not a list of names")
        return tuple(value)
    return tuple(_int(item, where, low, high) for item in value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int(value, where: str, low: int = 0, high: int = MAX_INT) -> int:
    """An integer in [low, high)."""
    if not _is_int(value) or not low <= value < high:
        raise BadArtifactError(f"{where}: {_short(value)} is not an integer in [{low}, {high})")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _facts(facts: dict, path: str) -> tuple[tuple[str, object], ...]:
    """The graph's facts; those that steer the simulation are checked."""
    for key, choices in FACT_CHOICES.items():
        if key in facts and facts[key] not in choices:
            raise BadArtifactError(f"{path}: fact {key!r} is {_short(facts[key])}, not one of {choices}")
    if "input_range" in facts and not (isinstance(facts["input_range"], list) and len(facts["input_range"]) == 2
                                       and all(_is_number(v) for v in facts["input_range"])):
        raise BadArtifactError(f"{path}: fact 'input_range' is {_short(facts['input_range'])}, not [low, high]")
    return tuple((key, tuple(value) if isinstance(value, list) else value) for key, value in facts.items())


def _mapping_entry(mapping: Mapping, arrays: dict[str, np.ndarray]) -> dict:
    names, table = core_table.encode(mapping.cores)
    arrays.update({f"{CORE_TABLE}/{key}.npy": rows for key, rows in table.items()})
    return {"target": mapping.target, "chips": mapping.chips, "traffic": mapping.traffic,
            "tile_shapes": {k: list(v) for k, v in mapping.tile_shapes.items()}, "names": names,
            "table": {key: {"array": f"{CORE_TABLE}/{key}.npy"} for key in table}}


def _mapping(entry, graph: Graph, arrays: dict[str, np.ndarray], where: str) -> Mapping:
    """The core table (``snnconv.core_table``), checked against the program: every tile a box inside one of its
    populations, every neuron on exactly one core."""
    entry = _object(entry, ("target", "chips", "traffic", "tile_shapes", "names", "table"), where)
    if not isinstance(entry["target"], str) or not isinstance(entry["traffic"], dict):
        raise BadArtifactError(f"{where}: 'target' must be a name and 'traffic' an object")
    shapes = _object(entry["tile_shapes"], (), f"{where}: tile_shapes")
    tile_shapes = {name: _sequence(_list(shape, f"{where}: tile_shapes"), "tuple[int, int, int]",
                                   f"{where}: tile_shapes[{name!r}]", 1) for name, shape in shapes.items()}
    names = _sequence(_list(entry["names"], f"{where}: names"), "tuple[str, ...]", f"{where}: names")
    table = _object(entry["table"], tuple(core_table.COLUMNS), f"{where}: table")
    rows = {}
    for key, value in table.items():
        if not (isinstance(value, dict) and value.get("array") in arrays):
            raise BadArtifactError(f"{where}: table {key!r} is {_short(value)}, not an array of the file")
        rows[key] = arrays[value["array"]]
    cores = core_table.decode(list(names), rows, graph, where)
    return Mapping(entry["target"], cores, tile_shapes, _int(entry["chips"], f"{where}: chips"), entry["traffic"])


def _object(value, keys: tuple[str, ...], where: str) -> dict:
    """``value`` as a JSON object holding exactly ``keys`` (any keys where none are given)."""
    if not isinstance(value, dict) or keys and set(value) != set(keys):
        raise BadArtifactError(f"{where}: expected an object with {', '.join(keys) or 'entries'}, "
                               f"got {_short(value)}")
    return value


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise BadArtifactError(f"{where}: expected a list, got {_short(value)}")
    return value


def _jsonable(value):
    """JSON for the manifest: tuples as lists, infinities as the string "inf", numpy scalars as numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# --- a recurrent program (``snnconv.recurrent``): its own section, the layers' checks ------


def _recurrent_entry(program: RecurrentProgram, arrays: dict[str, np.ndarray]) -> dict:
    """The program's fields: arrays under ``arrays/recurrent/``, the core table as objects, the rest as JSON."""
    entry = _fields_entry(program, "arrays/recurrent", arrays, skip=("upper", "cores"))
    entry["upper"] = [_fields_entry(layer, f"arrays/recurrent/upper{index}", arrays)
                      for index, layer in enumerate(program.upper)]
    entry["cores"] = [dataclasses.asdict(core) for core in program.cores]
    return entry


def _fields_entry(value, folder: str, arrays: dict[str, np.ndarray], skip: tuple[str, ...] = ()) -> dict:
    """A dataclass's fields but ``skip``: arrays as members under ``folder`` (named in ``arrays``), the rest as
    JSON."""
    entry = {}
    for field in dataclasses.fields(value):
        if field.name in skip:
            continue
        item = getattr(value, field.name)
        if isinstance(item, np.ndarray):
            name = f"{folder}/{field.name}.npy"
            arrays[name] = _compact(item)
            entry[field.name] = {"array": name}
        else:
            entry[field.name] = _jsonable(item)
    return entry


def _recurrent_sections(entry) -> list:
    """The recurrent section and its stacked layers' entries (each may name arrays); nothing where absent."""
    if not isinstance(entry, dict):
        return [entry]
    upper = entry.get("upper")
    return [entry, *(upper if isinstance(upper, list) else [])]


def _stacked(entry, arrays: dict[str, np.ndarray], where: str) -> StackedLayer:
    entry = _object(entry, tuple(f.name for f in dataclasses.fields(StackedLayer)), where)
    return StackedLayer(**{f.name: _field(entry[f.name], f.name, str(f.type), arrays, f"{where}: field {f.name!r}")
                           for f in dataclasses.fields(StackedLayer)})


def _recurrent(entry, arrays: dict[str, np.ndarray], where: str) -> RecurrentProgram:
    """The recurrent program, every field checked against its type in ``RecurrentProgram``, the arrays against each
    other's shapes, and the core table against the populations: every neuron on exactly one core."""
    names = {f.name for f in dataclasses.fields(RecurrentProgram)}
    if isinstance(entry, dict) and "upper" not in entry:  # written before stacked layers: one recurrent layer
        entry = {**entry, "upper": []}
    entry = _object(entry, tuple(sorted(names)), where)
    values = {f.name: _field(entry[f.name], f.name, str(f.type), arrays, f"{where}: field {f.name!r}")
              for f in dataclasses.fields(RecurrentProgram) if f.name not in ("cores", "notes", "upper")}
    upper = tuple(_stacked(layer, arrays, f"{where}: stacked layer {index + 1}")
                  for index, layer in enumerate(_list(entry["upper"], f"{where}: upper")))
    if not isinstance(entry["notes"], dict):
        raise BadArtifactError(f"{where}: field 'notes' is {_short(entry['notes'])}, not an object")
    listed = _list(entry["cores"], f"{where}: cores")
    cores = tuple(_recurrent_core(core, index, len(listed), f"{where}: core {index}")
                  for index, core in enumerate(listed))
    program = RecurrentProgram(**values, upper=upper, cores=cores, notes=entry["notes"])
    _check_recurrent_shapes(program, where)
    _check_recurrent_cover(program, where)
    return program


def _recurrent_core(entry, index: int, count: int, where: str) -> CoreUse:
    names = tuple(f.name for f in dataclasses.fields(CoreUse))
    entry = _object(entry, names, where)
    values = {f.name: _field(entry[f.name], f.name, str(f.type), {}, f"{where}: field {f.name!r}")
              for f in dataclasses.fields(CoreUse)}
    core = CoreUse(**values)
    if core.index != index or core.population not in POPULATIONS:
        raise BadArtifactError(f"{where}: index {core.index} (expected {index}) or population "
                               f"{_short(core.population)} (one of {POPULATIONS}) out of place")
    if any(destination >= count for destination in core.routes):
        raise BadArtifactError(f"{where}: routes {_short(list(core.routes))} name cores beyond the {count} there are")
    return core


def _check_recurrent_shapes(program: RecurrentProgram, where: str) -> None:
    """(H, F) input weights, (H,) biases, (H, H) recurrent weights, per stacked layer (H_l, H_{l-1}) weights,
    (H_l,) bias and (H_l, H_l) recurrent weights, (C, H_top) head, (C,) its bias; finite numbers; positive
    thresholds and output scale; the bias format's exponents in order."""
    hidden = program.recurrent.shape[0] if program.recurrent.ndim == 2 else 0
    features = program.input_weight.shape[1] if program.input_weight.ndim == 2 else 0
    classes = program.output_weight.shape[0] if program.output_weight.ndim == 2 else 0
    expected = [(program, {"input_weight": (hidden, features), "input_bias": (hidden,), "recurrent": (hidden, hidden)},
                 "")]
    below, nonempty = hidden, hidden
    for index, layer in enumerate(program.upper):  # each stacked layer reads the one below
        size = layer.recurrent.shape[0] if layer.recurrent.ndim == 2 else 0
        expected.append((layer, {"weight": (size, below), "bias": (size,), "recurrent": (size, size)},
                         f"stacked layer {index + 1}: "))
        below, nonempty = size, nonempty and size
    expected.append((program, {"output_weight": (classes, below), "output_bias": (classes,)}, ""))
    for owner, shapes, label in expected:
        for name, shape in shapes.items():
            array = getattr(owner, name)
            if not (nonempty and features and classes) or array.shape != shape or not np.all(np.isfinite(array)):
                raise BadArtifactError(f"{where}: {label}{name} of shape {array.shape} is not a finite array of "
                                       f"{shape} (hidden, features, classes at least 1); the file was altered: "
                                       "compile the model again")
    scalars = [(program.threshold, program.v_init, program.output_scale, "")] + \
        [(layer.threshold, layer.v_init, 1.0, f"stacked layer {i + 1}: ") for i, layer in enumerate(program.upper)]
    for threshold, v_init, scale, label in scalars:
        if not all(math.isfinite(value) for value in (threshold, v_init, scale)) or threshold <= 0 or scale <= 0:
            raise BadArtifactError(f"{where}: {label}threshold {threshold}, v_init {v_init} and output_scale "
                                   f"{scale} must be finite, the first and last positive")
    if program.bias_format is not None and not (1 <= program.bias_format[0] <= 64
                                                and program.bias_format[1] <= program.bias_format[2]):
        raise BadArtifactError(f"{where}: bias_format {list(program.bias_format)} is not [bits 1-64, lowest "
                               "exponent, highest exponent]")


def _check_recurrent_cover(program: RecurrentProgram, where: str) -> None:
    """Each hidden neuron and each output integrator on exactly one core, tiles inside their population."""
    sizes = {"hidden": program.hidden_total, "output": len(program.output_weight)}
    for population, size in sizes.items():
        held = np.zeros(size, np.int64)
        for core in program.cores:
            start, stop = core.neurons
            if core.population == population:
                if not start < stop <= size:
                    raise BadArtifactError(f"{where}: core {core.index} holds {population} neurons [{start}, {stop}) "
                                           f"outside the {size} there are; the core table is damaged: compile the "
                                           "model again")
                held[start:stop] += 1
        if program.target is not None and not np.all(held == 1):
            raise BadArtifactError(f"{where}: the cores hold the {size} {population} neurons {int(held.min())} to "
                                   f"{int(held.max())} times, not once each; the core table is damaged: compile the "
                                   "model again")


def check_recurrent_precision(program: RecurrentProgram, target: Target, where: str) -> None:
    """Refuse a recurrent program whose integers ``target``'s chip cannot hold (as ``check_precision`` does for a
    layer program): the recurrent and head weights in the weight format with one exponent each (as
    ``snnconv.recurrent`` quantizes them), the head's bias and the host currents' format in the bias format, the
    threshold in the threshold format, the membranes' bits the chip's. The host's input weights stay float."""
    precision = target.precision
    if precision.is_float:
        return
    if program.state_bits != precision.state_bits:
        raise BadArtifactError(f"{where}: state_bits = {program.state_bits} does not fit {target.name}'s "
                               f"{precision.state_bits}-bit membranes; the file was altered or compiled for another "
                               f"target: compile the model again for {target.name}")
    weight_format = _Format(precision.weight_bits, *precision.weight_exponent)
    bias_format = _Format(precision.bias_bits, *precision.bias_exponent)
    weights = f"{precision.weight_bits}-bit weights ({weight_format}, one e for all)"
    checks = [("recurrent", program.recurrent.reshape(1, -1), weight_format, weights),
              ("output_weight", program.output_weight.reshape(1, -1), weight_format, weights),
              ("output_bias", program.output_bias.reshape(-1, 1), bias_format,
               f"{precision.bias_bits}-bit biases ({bias_format})")]
    for index, layer in enumerate(program.upper):  # a layer's feed-forward and recurrent synapses: one exponent
        label = f"stacked layer {index + 1}: "
        checks += [(label + "weight and recurrent", np.concatenate([layer.weight.ravel(), layer.recurrent.ravel()])
                    .reshape(1, -1), weight_format, weights),
                   (label + "bias", layer.bias.reshape(-1, 1), bias_format,
                    f"{precision.bias_bits}-bit biases ({bias_format})")]
    for name, rows, number_format, allowed in checks:
        flat = number_format.first_outside(rows)
        if flat is not None:
            _refuse_recurrent(where, name, rows.flat[flat], allowed, target.name)
    layers = [("", program.threshold, program.v_init)] + \
        [(f"stacked layer {i + 1}: ", layer.threshold, layer.v_init) for i, layer in enumerate(program.upper)]
    for label, threshold, v_init in layers:
        mantissa = threshold / 2.0 ** precision.threshold_shift
        if not (mantissa.is_integer() and 1 <= mantissa <= 2 ** precision.threshold_bits - 1):
            _refuse_recurrent(where, label + "threshold", threshold, f"{precision.threshold_bits}-bit thresholds "
                              f"(m * 2^{precision.threshold_shift})", target.name)
        if not (float(v_init).is_integer() and 0 <= v_init <= threshold):
            _refuse_recurrent(where, label + "v_init", v_init, "an integer membrane in [0, threshold]", target.name)
    low, high = precision.bias_exponent
    bits, lowest, highest = program.bias_format or (0, low - 1, high)
    if not (bits <= precision.bias_bits and low <= lowest and highest <= high):
        _refuse_recurrent(where, "bias_format", program.bias_format, f"{precision.bias_bits}-bit host currents "
                          f"(exponents within [{low}, {high}])", target.name)


def _refuse_recurrent(where: str, field: str, value, allowed: str, chip: str) -> None:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    raise BadArtifactError(f"{where}: recurrent program: {field} = {_short(value)} does not fit {chip}'s {allowed}; "
                           f"the file was altered or compiled for another target: compile the model again for {chip}")


# --- the program against a target's number formats ---------------------------------------


@dataclasses.dataclass(frozen=True)
class _Format:
    """Signed numbers ``m * 2^e`` with ``|m| <= 2^(bits-1) - 1`` and ``lowest <= e <= highest``."""

    bits: int
    lowest: int
    highest: int

    def __str__(self) -> str:
        return f"m * 2^e with |m| <= {2 ** (self.bits - 1) - 1:,} and e in [{self.lowest}, {self.highest}]"

    def first_outside(self, rows: np.ndarray) -> int | None:
        """The flat index of a value its row cannot hold, or None: first any beyond the largest
        ``m * 2^e`` (or not finite), then any that is not a multiple of its row's step.

        A row shares one exponent; the smallest one whose mantissas reach the row's largest
        magnitude is the one every value must be a multiple of (a larger one only coarsens).
        """
        if rows.size == 0:
            return None
        reach = (2 ** (self.bits - 1) - 1) * np.ldexp(1.0, np.arange(self.lowest, self.highest + 1))
        beyond = ~np.isfinite(rows) | (np.abs(rows) > reach[-1])
        if beyond.any():
            return int(np.argmax(beyond))
        exponent = self.lowest + np.searchsorted(reach, np.abs(rows).max(axis=1))
        mantissa = np.ldexp(rows, -exponent[:, None])
        between = mantissa != np.round(mantissa)
        return int(np.argmax(between)) if between.any() else None


def check_precision(graph: Graph, target: Target, where: str) -> None:
    """Refuse a program whose integers ``target``'s chip cannot hold, naming the layer, field, value and format.

    The chip model computes whatever integers it is given, exactly: only this check ties
    them to a chip (the formats are ``snnconv.targets.target``'s, as ``passes/quantize``
    writes them):

    - weights of the synapse layers the chip computes (conv, dense, affine; host-computed
      layers stay float): ``m * 2^e`` in the weight format, one ``e`` per output channel
      or per layer (``exponent_group``);
    - their biases, one exponent per neuron, in the bias format; a ``round`` layer (a
      host-computed current written as a bias) with a format inside the bias format;
    - thresholds ``m * 2^threshold_shift`` with ``1 <= m < 2^threshold_bits``;
    - membranes of ``state_bits``, the chip's, for neurons and the output integrator.

    A target at float precision takes any integers; every target must run each population's
    neuron model (``snnconv.neurons``) with the parameters given.
    """
    for layer in graph:
        if isinstance(layer, IF):
            _check_neuron(layer, target, where)
    precision = target.precision
    if precision.is_float:
        return
    host = geometry.host_computed(graph)
    for layer in graph:
        if isinstance(layer, (Conv, Dense, Affine)) and layer.name not in host:
            _check_synapses(layer, precision, target.name, where)
        elif isinstance(layer, Round):
            _check_round(layer, precision, target.name, where)
        if isinstance(layer, IF):
            _check_threshold(layer, precision, target.name, where)
        if isinstance(layer, (IF, Output)) and layer.state_bits != precision.state_bits:
            _refuse(where, layer, "state_bits", layer.state_bits, f"{precision.state_bits}-bit membranes",
                    target.name)


def _check_neuron(layer: IF, target: Target, where: str) -> None:
    try:
        reason = neurons.of(layer).unsupported(target)
    except BadGraphError as exc:
        raise BadArtifactError(f"{where}: {exc}; the file was altered: compile the model again") from None
    if reason is not None:
        raise BadArtifactError(f"{where}: layer {layer.name!r}: {reason}; the file was altered or compiled for "
                               f"another target: compile the model again for {target.name}")


def _check_synapses(layer: Layer, precision: Precision, chip: str, where: str) -> None:
    """Weights share an exponent per output channel or per layer (as ``passes/quantize`` groups them); each bias
    has its own."""
    affine = isinstance(layer, Affine)
    weights, biases = (layer.scale, layer.shift) if affine else (layer.weight, layer.bias)
    grouped = precision.exponent_group == "channel" and weights.ndim > 0 and weights.size > 1
    weight_rows = weights.reshape(weights.shape[0], -1) if grouped else weights.reshape(1, -1)
    weight_format = _Format(precision.weight_bits, *precision.weight_exponent)
    bias_format = _Format(precision.bias_bits, *precision.bias_exponent)
    per = "output channel" if grouped else "layer"
    _check_values(layer, "scale" if affine else "weight", weights, weight_rows, weight_format,
                  f"{precision.weight_bits}-bit weights ({weight_format}, one e per {per})", chip, where)
    _check_values(layer, "shift" if affine else "bias", biases, biases.reshape(-1, 1), bias_format,
                  f"{precision.bias_bits}-bit biases ({bias_format})", chip, where)


def _check_values(layer: Layer, field: str, values: np.ndarray, rows: np.ndarray, number_format: _Format,
                  allowed: str, chip: str, where: str) -> None:
    """``values`` (as ``rows`` that share an exponent each) within ``number_format``; else the first one outside."""
    flat = number_format.first_outside(rows)
    if flat is not None:
        index = ", ".join(str(int(i)) for i in np.unravel_index(flat, values.shape))
        _refuse(where, layer, f"{field}[{index}]", values.flat[flat], allowed, chip)


def _check_threshold(layer: IF, precision: Precision, chip: str, where: str) -> None:
    mantissa = layer.threshold / 2.0 ** precision.threshold_shift
    largest = 2 ** precision.threshold_bits - 1
    if not (math.isfinite(mantissa) and mantissa.is_integer() and 1 <= mantissa <= largest):
        _refuse(where, layer, "threshold", layer.threshold, f"{precision.threshold_bits}-bit thresholds "
                f"(m * 2^{precision.threshold_shift} with 1 <= m <= {largest:,})", chip)


def _check_round(layer: Round, precision: Precision, chip: str, where: str) -> None:
    low, high = precision.bias_exponent
    if not (layer.bits <= precision.bias_bits and low <= layer.exponent[0] and layer.exponent[1] <= high):
        _refuse(where, layer, "bits, exponent", (layer.bits, list(layer.exponent)),
                f"{precision.bias_bits}-bit biases (bits <= {precision.bias_bits}, exponents within [{low}, {high}])",
                chip)


def _refuse(where: str, layer: Layer, field: str, value, allowed: str, chip: str) -> None:
    """The one message of ``check_precision``: layer, field, value, the format allowed, what to do."""
    if isinstance(value, (float, np.floating)):
        value = int(value) if float(value).is_integer() else float(value)
    raise BadArtifactError(f"{where}: layer {layer.name!r}: {field} = {_short(value)} does not fit {chip}'s "
                           f"{allowed}; the file was altered or compiled for another target: compile the model again "
                           f"for {chip}")
