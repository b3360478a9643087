"""The ``.snn`` artifact: one zip file, a JSON manifest and arrays as ``.npy``. Never pickle.

Layout::

    manifest.json          format, version, snnconv version, target, options, facts,
                           program (the layers at chip precision), cores (tiles, chip,
                           mesh position, resources), report totals, and the SHA-256 of
                           every array
    arrays/<layer>/<field>.npy

The program lists every layer with its integer weights, thresholds and number formats
(host-computed input layers stay float); the core table says which box of which
population each core holds and which source channels an input group reads: with the
program's kernels these are the per-core synapse blocks. ``write`` is atomic (a
temporary file in the same folder, then a rename) and deterministic: zip entries in a
fixed order with a fixed timestamp, so the same compilation gives the same bytes.
``read`` checks the format, the version and every checksum before building anything,
and loads arrays with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from snnconv.errors import BadArtifactError
from snnconv.ir import LAYER_KINDS, Graph, Layer
from snnconv.mapping import Core, Mapping, Resources, Tile

__all__ = ["write", "read", "FORMAT", "VERSION", "Artifact"]

FORMAT = "snnconv-artifact"
VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: the same bytes on every run


@dataclasses.dataclass
class Artifact:
    """What a ``.snn`` file holds, rebuilt: the program as a graph, the core map and the manifest."""

    graph: Graph
    mapping: Mapping | None
    manifest: dict


def write(path: str | Path, graph: Graph, manifest_extra: dict) -> Path:
    """Write ``graph`` (with its ``mapping`` fact) and ``manifest_extra`` to ``path`` atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    program = [_layer_entry(layer, arrays) for layer in graph]
    mapping: Mapping | None = graph.fact("mapping")
    facts = {key: _jsonable(value) for key, value in graph.facts if key != "mapping"}
    manifest = {"format": FORMAT, "version": VERSION, "name": graph.name, "facts": facts, "program": program,
                "mapping": _mapping_entry(mapping) if mapping else None, **manifest_extra}
    blobs = {name: _npy(array) for name, array in arrays.items()}
    manifest["checksums"] = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    text = json.dumps(_jsonable(manifest), indent=1, sort_keys=True, allow_nan=False).encode()
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise BadArtifactError(f"{path}: folder {directory} does not exist; create it or choose another path")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            _add(archive, "manifest.json", text)
            for name in sorted(blobs):
                _add(archive, name, blobs[name])
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read(path: str | Path) -> Artifact:
    """Load and verify an artifact; every problem is a ``BadArtifactError`` naming the file."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BadArtifactError(f"{path}: no such file; pass the path of a .snn file from `snnconv compile`") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArtifactError(f"{path}: not a snnconv artifact (unreadable zip: {exc})") from None
    with archive:
        manifest = _manifest(archive, path)
        arrays = {name: _array(archive, name, digest, path) for name, digest in manifest["checksums"].items()}
    try:
        graph = Graph.from_layers([_layer(entry, arrays) for entry in manifest["program"]], manifest["name"],
                                  tuple((k, _facts_value(v)) for k, v in manifest["facts"].items()))
        mapping = _mapping(manifest["mapping"]) if manifest.get("mapping") else None
    except BadArtifactError:
        raise
    except Exception as exc:  # a manifest that passed its checks but does not describe a network
        raise BadArtifactError(f"{path}: inconsistent artifact ({type(exc).__name__}: {exc})") from None
    if mapping is not None:
        graph = graph.rebuilt(graph.layers, mapping=mapping)
    return Artifact(graph, mapping, manifest)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _manifest(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        manifest = json.loads(archive.read("manifest.json"))
    except KeyError:
        raise BadArtifactError(f"{path}: no manifest.json; not a snnconv artifact") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BadArtifactError(f"{path}: manifest unreadable ({exc}); the file is damaged, compile again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadArtifactError(f"{path}: not a snnconv artifact (format {manifest.get('format')!r})"
                               if isinstance(manifest, dict) else f"{path}: manifest is not an object")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BadArtifactError(f"{path}: artifact format version {version!r} is newer than this snnconv reads "
                               f"({VERSION}); upgrade snnconv")
    for key, kind in (("program", list), ("checksums", dict), ("facts", dict), ("name", str)):
        if not isinstance(manifest.get(key), kind):
            raise BadArtifactError(f"{path}: manifest field {key!r} missing or not a {kind.__name__}")
    return manifest


def _array(archive: zipfile.ZipFile, name: str, digest: str, path: Path) -> np.ndarray:
    try:
        blob = archive.read(name)
    except KeyError:
        raise BadArtifactError(f"{path}: array {name} listed in the manifest is missing") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise BadArtifactError(f"{path}: array {name} unreadable ({exc}); the file is damaged") from None
    if hashlib.sha256(blob).hexdigest() != digest:
        raise BadArtifactError(f"{path}: checksum mismatch for {name}: the file was modified or damaged")
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except ValueError as exc:
        raise BadArtifactError(f"{path}: array {name} is not a plain .npy array ({exc})") from None


def _layer_entry(layer: Layer, arrays: dict[str, np.ndarray]) -> dict:
    entry = {"kind": layer.kind}
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        if isinstance(value, np.ndarray):
            name = f"arrays/{layer.name}/{field.name}.npy"
            arrays[name] = _compact(value)
            entry[field.name] = {"array": name}
        else:
            entry[field.name] = _jsonable(value)
    return entry


def _compact(array: np.ndarray) -> np.ndarray:
    """Integer-valued arrays (weights at chip precision) as int32/int64; the rest as they are."""
    if array.dtype.kind == "f" and array.size and np.all(np.isfinite(array)) and np.all(array == np.round(array)) \
            and np.abs(array).max() < 2**62:
        return array.astype(np.int32 if np.abs(array).max() < 2**31 else np.int64)
    return array


def _layer(entry: dict, arrays: dict[str, np.ndarray]) -> Layer:
    cls = LAYER_KINDS.get(entry.get("kind"))
    if cls is None:
        raise BadArtifactError(f"program has a layer of unknown kind {entry.get('kind')!r}")
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in entry:
            continue
        value = entry[field.name]
        if isinstance(value, dict) and "array" in value:
            array = arrays[value["array"]]
            value = array.astype(np.float64) if array.dtype.kind in "iu" else array
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[field.name] = value
    return cls(**kwargs)


def _mapping_entry(mapping: Mapping) -> dict:
    return {"target": mapping.target, "chips": mapping.chips, "traffic": mapping.traffic,
            "tile_shapes": {k: list(v) for k, v in mapping.tile_shapes.items()},
            "cores": [{"index": c.index, "chip": c.chip, "position": list(c.position),
                       "tiles": [{"population": t.population, "box": [list(b) for b in t.box],
                                  "resources": dataclasses.asdict(t.resources), "group": t.group,
                                  "groups": t.groups, "inputs": [list(i) for i in t.inputs]}
                                 for t in c.tiles]} for c in mapping.cores]}


def _mapping(entry: dict) -> Mapping:
    cores = tuple(Core(c["index"], tuple(Tile(t["population"], tuple(tuple(b) for b in t["box"]),
                                              Resources(**t["resources"]), t["group"], t["groups"],
                                              tuple(tuple(i) for i in t["inputs"])) for t in c["tiles"]),
                       c["chip"], tuple(c["position"])) for c in entry["cores"])
    return Mapping(entry["target"], cores, {k: tuple(v) for k, v in entry["tile_shapes"].items()}, entry["chips"],
                   entry["traffic"])


def _facts_value(value):
    return tuple(value) if isinstance(value, list) else value


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
