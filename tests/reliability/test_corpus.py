"""A corpus of bad inputs, each with the project error it must raise and a fragment of its message.

Every surface a user feeds files to is here: ONNX models (``snnconv.load_onnx``), data
(``snnconv.data.load_npz``, ``iter_batches``, calibration inside ``snnconv.compile``),
artifacts (``snnconv.load``) and target files (``snnconv.targets.get``). Each case writes
its bad input under ``tmp_path`` from a good one, so the corpus holds no binary files and
each case says in code what is wrong with it. Every case that is a file also goes through
the command that reads such files (``main`` in this process; a sample through the
installed ``snnconv`` in its own process), which must print one line ``error: ...``, exit
with code 2 and write no artifact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from reliability.inputs import LENET_SHAPE, lenet, run_cli

import snnconv
from snnconv import artifact, targets
from snnconv.cli import main
from snnconv.data import iter_batches, load_npz
from snnconv.errors import (
    BadArtifactError,
    BadDataError,
    BadModelError,
    BadTargetError,
    SnnconvError,
    UnsupportedOpError,
)

H = helper.make_node


@dataclass(frozen=True)
class Good:
    """The good inputs the bad ones are made from."""

    folder: Path  # where to write the bad input
    model: onnx.ModelProto  # lenet
    artifact: bytes  # lenet compiled for loihi
    artifact_path: Path


@dataclass(frozen=True)
class Case:
    make: Callable[[Good], object]  # writes the bad input; returns its path (or, for iter_batches, the object)
    read: Callable[[object, Good], object]  # calls the public function that must refuse it
    error: type[SnnconvError]
    fragments: tuple[str, ...]  # each must appear in the message; "{input}" stands for the path


# --- readers: the public functions, called as a user would ------------------------------


def read_model(path, good: Good):
    return snnconv.load_onnx(path)


def read_npz(path, good: Good):
    return load_npz(path)


def read_batches(data, good: Good) -> list:
    return list(iter_batches(data, batch_size=4))


def compile_with_calibration(path, good: Good):
    """Compile lenet with the file's ``x`` as calibration data."""
    return snnconv.compile(good.model, "loihi", load_npz(path)[0], timesteps=4, percentile=99.9)


def run_on(path, good: Good):
    """Run the good artifact on the file's ``x``."""
    return snnconv.load(good.artifact_path).run(load_npz(path)[0])


def read_artifact(path, good: Good):
    return snnconv.load(path)


def read_target(path, good: Good):
    return targets.get(path)


# --- models ---------------------------------------------------------------------------


def write(good: Good, name: str, data: bytes) -> Path:
    path = good.folder / name
    path.write_bytes(data)
    return path


def save(good: Good, model: onnx.ModelProto, name: str = "bad.onnx") -> Path:
    return write(good, name, model.SerializeToString())


def changed(good: Good, change: Callable[[onnx.ModelProto], None]) -> Path:
    """lenet with ``change`` applied to a copy."""
    model = onnx.ModelProto()
    model.CopyFrom(good.model)
    change(model)
    return save(good, model)


def tiny(nodes, initializers: dict) -> onnx.ModelProto:
    """A model of ``nodes`` reading x (N, 3)."""
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "classes"])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def cycle(model: onnx.ModelProto) -> None:
    """The conv reads the last node's output: conv -> ... -> gemm -> conv."""
    model.graph.node[0].input[0] = model.graph.node[-1].output[0]


def drop_graph_input(model: onnx.ModelProto) -> None:
    del model.graph.input[:]


def dangling(model: onnx.ModelProto) -> None:
    model.graph.node[2].input[0] = "ghost_tensor"


def short_initializer(model: onnx.ModelProto) -> None:
    weights = next(t for t in model.graph.initializer if t.name == "F")
    weights.raw_data = weights.raw_data[:-8]


def set_initializer(name: str, value: np.ndarray) -> Callable[[onnx.ModelProto], None]:
    def change(model: onnx.ModelProto) -> None:
        tensor = next(t for t in model.graph.initializer if t.name == name)
        tensor.CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
    return change


def with_weight_value(value: float) -> Callable[[onnx.ModelProto], None]:
    weights = numpy_helper.to_array(next(t for t in lenet().graph.initializer if t.name == "W")).copy()
    weights.flat[5] = value
    return set_initializer("W", weights)


def input_dims(*dims) -> Callable[[onnx.ModelProto], None]:
    def change(model: onnx.ModelProto) -> None:
        shape = model.graph.input[0].type.tensor_type.shape
        del shape.dim[:]
        for dim in dims:
            if isinstance(dim, str):
                shape.dim.add().dim_param = dim
            else:
                shape.dim.add().dim_value = dim
    return change


def conv_attribute(name: str, value) -> Callable[[onnx.ModelProto], None]:
    def change(model: onnx.ModelProto) -> None:
        conv = model.graph.node[0]
        kept = [a for a in conv.attribute if a.name != name]
        del conv.attribute[:]
        conv.attribute.extend([*kept, helper.make_attribute(name, value)])
    return change


def opset(version: int) -> Callable[[onnx.ModelProto], None]:
    def change(model: onnx.ModelProto) -> None:
        model.opset_import[0].version = version
    return change


def foreign_domain(model: onnx.ModelProto) -> None:
    model.graph.node[2].domain = "com.example.chips"
    model.opset_import.append(helper.make_opsetid("com.example.chips", 1))


def external(location: Callable[[Good], str]) -> Callable[[Good], Path]:
    """lenet with its weights in a file beside it, its location then changed to ``location(good)``."""
    def make(good: Good) -> Path:
        folder = good.folder / "model"
        folder.mkdir()
        path = folder / "model.onnx"
        onnx.save_model(good.model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
        outside = good.folder / "secret.bin"
        outside.write_bytes((folder / "weights.bin").read_bytes())  # a real file, so only the location check refuses
        proto = onnx.load(str(path), load_external_data=False)
        moved = location(good)
        for tensor in proto.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = moved
        onnx.save_model(proto, str(path))
        return path
    return make


def symlink_out(good: Good) -> str:
    os.symlink(good.folder / "secret.bin", good.folder / "model" / "innocent.bin")
    return "innocent.bin"


def binary_name(good: Good) -> Path:
    """lenet with a byte of its graph's name made invalid UTF-8 (protobuf then hands the name over as bytes)."""
    data = good.model.SerializeToString()
    at = data.index(b"lenet")
    return write(good, "binary.onnx", data[:at] + b"\xff" + data[at + 1:])


MODEL_CASES = {
    "empty file": Case(lambda g: write(g, "empty.onnx", b""), read_model, BadModelError,
                       ("{input}", "empty")),
    "truncated file": Case(lambda g: write(g, "cut.onnx", g.model.SerializeToString()[:300]), read_model,
                           BadModelError, ("{input}", "not an ONNX model", "truncated")),
    "text file": Case(lambda g: write(g, "notes.onnx", b"layer sizes: 784, 256, 10\n"), read_model,
                      BadModelError, ("not an ONNX model",)),
    "an artifact passed as model": Case(lambda g: write(g, "net.onnx", g.artifact), read_model, BadModelError,
                                        ("not an ONNX model",)),
    "cycle": Case(lambda g: changed(g, cycle), read_model, BadModelError,
                  ("{input}", "topologically sorted")),
    "missing graph input": Case(lambda g: changed(g, drop_graph_input), read_model, UnsupportedOpError,
                                ("0 inputs", "one input")),
    "dangling edge": Case(lambda g: changed(g, dangling), read_model, BadModelError, ("'ghost_tensor'",)),
    "initializer data shorter than its dims": Case(lambda g: changed(g, short_initializer), read_model,
                                                   BadModelError, ("tensor name: F", "too small")),
    "weights of the wrong size": Case(lambda g: changed(g, set_initializer("F", np.ones((10, 63)))),
                                      read_model, BadModelError, ("takes 63 features", "input has 64")),
    "NaN weight": Case(lambda g: changed(g, with_weight_value(np.nan)), read_model, BadModelError,
                       ("'W'", "NaN")),
    "infinite weight": Case(lambda g: changed(g, with_weight_value(-np.inf)), read_model, BadModelError,
                            ("'W'", "infinite")),
    "zero-size weights": Case(lambda g: save(g, tiny([H("Gemm", ["x", "W"], ["y"], transB=1, name="nothing")],
                                                     {"W": np.ones((0, 3), np.float32)})),
                              read_model, BadModelError, ("'nothing'", "[0]", "empty dimension")),
    "zero-size input": Case(lambda g: changed(g, input_dims("N", 1, 0, 8)), read_model, BadModelError,
                            ("'x'", "dimension 2 is 0")),
    "input dimension 2^40": Case(lambda g: changed(g, input_dims("N", 1, 2**40, 8)), read_model,
                                 BadModelError, ("'x'", str(2**40), "elements per sample")),
    "padding of 2^40": Case(lambda g: changed(g, conv_attribute("pads", [0, 0, 2**40, 2**40])), read_model,
                            BadModelError, ("elements per sample",)),
    "ConstantOfShape of 2^40": Case(
        lambda g: save(g, tiny([H("ConstantOfShape", ["s"], ["big"], name="balloon"), H("Relu", ["x"], ["y"])],
                               {"s": np.array([2**40], np.int64)})),
        read_model, BadModelError, ("'balloon'", str(2**40), "far too large")),
    "Tile to 2^36": Case(
        lambda g: save(g, tiny([H("Tile", ["c", "r"], ["big"], name="tiles"), H("Relu", ["x"], ["y"])],
                               {"c": np.ones(16, np.float32), "r": np.array([2**32], np.int64)})),
        read_model, BadModelError, ("'tiles'", "far too large")),
    "name not UTF-8": Case(binary_name, read_model, BadModelError, ("'name'", "not UTF-8")),
    "negative batch dimension": Case(lambda g: changed(g, input_dims(-1, 1, 8, 8)), read_model, BadModelError,
                                     ("'x'", "dimension 0 as -1")),
    "negative variance": Case(lambda g: changed(g, set_initializer("v", -np.ones(4))), read_model, BadModelError,
                              ("BatchNormalization", "variance + epsilon")),
    "zero stride": Case(lambda g: changed(g, conv_attribute("strides", [0, 0])), read_model, BadModelError,
                        ("strides [0, 0]", "positive")),
    "opset newer than onnx knows": Case(lambda g: changed(g, opset(99)), read_model, UnsupportedOpError,
                                        ("opset 99", "upgrade onnx")),
    "op of an unknown domain": Case(lambda g: changed(g, foreign_domain), read_model, UnsupportedOpError,
                                    ("'com.example.chips'",)),
    "external data at ../": Case(external(lambda g: "../secret.bin"), read_model, BadModelError,
                                 ("'../secret.bin'", "out of the model's folder")),
    "external data at an absolute path": Case(external(lambda g: str(g.folder / "secret.bin")), read_model,
                                              BadModelError, ("secret.bin", "absolute")),
    "external data through a symlink": Case(external(symlink_out), read_model, BadModelError,
                                            ("'innocent.bin'", "out of the model's folder")),
}

# --- data -----------------------------------------------------------------------------


def npz(name: str, **arrays) -> Callable[[Good], Path]:
    def make(good: Good) -> Path:
        path = good.folder / name
        np.savez(path, **arrays)
        return path
    return make


def pickled_npz(good: Good) -> Path:
    path = good.folder / "pickled.npz"
    np.savez(path, x=np.array([{"rm": "-rf"}], dtype=object))
    return path


SAMPLES = np.random.default_rng(2).random((5, *LENET_SHAPE)).astype(np.float32)
WITH_NAN = SAMPLES.copy()
WITH_NAN[3, 0, 2, 2] = np.nan

DATA_CASES = {
    "calibration of the wrong shape": Case(npz("small.npz", x=SAMPLES[:, :, :4, :4]), compile_with_calibration,
                                           BadDataError, ("(5, 1, 4, 4)", "(N, 1, 8, 8)")),
    "data of the wrong shape": Case(npz("small.npz", x=SAMPLES[:, :, :4, :4]), run_on, BadDataError, ("(5, 1, 4, 4)", "(N, 1, 8, 8)")),
    "strings as x": Case(npz("text.npz", x=np.array([["0.5", "0.25"]])), read_npz, BadDataError, ("not numeric",)),
    "complex x": Case(npz("complex.npz", x=SAMPLES.astype(np.complex64)), read_npz, BadDataError, ("not numeric",)),
    "object x is never unpickled": Case(pickled_npz, read_npz, BadDataError, ("never unpickles",)),
    "NaN in x": Case(npz("nan.npz", x=WITH_NAN), read_npz, BadDataError, ("NaN",)),
    "no samples": Case(npz("none.npz", x=SAMPLES[:0]), read_npz, BadDataError, ("no samples",)),
    "no x": Case(npz("no_x.npz", inputs=SAMPLES), read_npz, BadDataError, ("no array named 'x'", "inputs")),
    "labels of the wrong length": Case(npz("labels.npz", x=SAMPLES, y=np.zeros(4, np.int64)), read_npz, BadDataError,
                                       ("5 integer labels",)),
    "float labels": Case(npz("labels.npz", x=SAMPLES, y=np.zeros(5)), read_npz, BadDataError, ("integer labels",)),
    "not an npz file": Case(lambda g: write(g, "data.npz", b"x,y\n0.5,1\n"), read_npz, BadDataError,
                            ("not a readable .npz",)),
    "truncated npz": Case(lambda g: write(g, "cut.npz", npz("full.npz", x=SAMPLES)(g).read_bytes()[:200]), read_npz,
                          BadDataError, ("not a readable .npz",)),
    "batches: NaN": Case(lambda g: [SAMPLES[:2], WITH_NAN[2:]], read_batches, BadDataError, ("batch 1", "NaN")),
    "batches: none": Case(lambda g: iter([]), read_batches, BadDataError, ("no samples",)),
    "batches: zero samples": Case(lambda g: SAMPLES[:0], read_batches, BadDataError, ("no samples",)),
    "batches: no batch axis": Case(lambda g: np.ones(3, np.float32), read_batches, BadDataError, ("no batch axis",)),
    "batches: shapes differ": Case(lambda g: [SAMPLES, SAMPLES[:, :, :4]], read_batches, BadDataError,
                                   ("batch 1", "(1, 4, 8)", "(1, 8, 8)")),
    "batches: not data": Case(lambda g: 42, read_batches, BadDataError, ("int",)),
    "batches: strings": Case(lambda g: np.array([["a", "b"]]), read_batches, BadDataError, ("not numeric",)),
}

# --- artifacts ------------------------------------------------------------------------


def rezipped(change: Callable[[str, bytes], bytes | None], name: str = "bad.snn") -> Callable[[Good], Path]:
    """The good artifact with each member replaced by ``change(name, data)`` (None drops it)."""
    def make(good: Good) -> Path:
        path = good.folder / name
        with zipfile.ZipFile(io.BytesIO(good.artifact)) as old, zipfile.ZipFile(path, "w") as new:
            for info in old.infolist():
                data = change(info.filename, old.read(info.filename))
                if data is not None:
                    new.writestr(info, data)
        return path
    return make


def in_manifest(change: Callable[[dict], None]) -> Callable[[str, bytes], bytes]:
    def apply(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        change(manifest)
        return json.dumps(manifest).encode()
    return apply


def flip_array_byte(name: str, data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x10]) if name.endswith(".npy") else data


def pickled_array(good: Good) -> Path:
    """An object array in place of the first array, its checksum updated: only the refusal to unpickle stops it."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"payload": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(io.BytesIO(good.artifact)) as archive:
        first = min(json.loads(archive.read("manifest.json"))["checksums"])

    def change(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["checksums"][first] = hashlib.sha256(buffer.getvalue()).hexdigest()
            return json.dumps(manifest).encode()
        return buffer.getvalue() if name == first else data
    return rezipped(change)(good)


def _version(manifest: dict) -> None:
    manifest["version"] += 1


def _negative_neurons(manifest: dict) -> None:
    manifest["target"]["core"]["neurons"] = -4


def _zero_stride(manifest: dict) -> None:
    next(entry for entry in manifest["program"] if entry["kind"] == "conv")["stride"] = [0, 1]


def _cyclic_program(manifest: dict) -> None:
    """The conv reads the dense layer, which (through the others) reads the conv."""
    program = manifest["program"]
    next(entry for entry in program if entry["kind"] == "conv")["inputs"] = [
        next(entry for entry in program if entry["kind"] == "dense")["name"]]


def tile_outside(good: Good) -> Path:
    """The first tile's channels run to 99, past its population's, in the core table (its checksum updated)."""
    with zipfile.ZipFile(io.BytesIO(good.artifact)) as archive:
        tiles = np.load(io.BytesIO(archive.read("core_table/tiles.npy")))
    tiles[0, 2] = 99
    buffer = io.BytesIO()
    np.save(buffer, tiles, allow_pickle=False)

    def change(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["checksums"]["core_table/tiles.npy"] = hashlib.sha256(buffer.getvalue()).hexdigest()
            return json.dumps(manifest).encode()
        return buffer.getvalue() if name == "core_table/tiles.npy" else data
    return rezipped(change)(good)


def _deep_manifest(name: str, data: bytes) -> bytes:
    return b"[" * 100_000 + b"]" * 100_000 if name == "manifest.json" else data


def short_array(good: Good) -> Path:
    """An array cut short, its checksum updated: the .npy header promises more than is there."""
    def change(name: str, data: bytes) -> bytes:
        if name.endswith("weight.npy"):
            return data[:-4]
        if name == "manifest.json":
            manifest = json.loads(data)
            for array, blob in blobs.items():
                manifest["checksums"][array] = hashlib.sha256(blob[:-4]).hexdigest()
            return json.dumps(manifest).encode()
        return data

    with zipfile.ZipFile(io.BytesIO(good.artifact)) as archive:
        blobs = {name: archive.read(name) for name in archive.namelist() if name.endswith("weight.npy")}
    return rezipped(change)(good)


def zip_bomb(good: Good) -> Path:
    """The artifact with its first member declaring 3.75 GiB unpacked in the zip's central directory."""
    path = write(good, "bomb.snn", good.artifact)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central directory entry; its unpacked size is at +24
    data[entry + 24:entry + 28] = (0xF0000000).to_bytes(4, "little")
    return write(good, "bomb.snn", bytes(data))


ARTIFACT_CASES = {
    "empty artifact": Case(lambda g: write(g, "empty.snn", b""), read_artifact, BadArtifactError, ("unreadable zip",)),
    "truncated artifact": Case(lambda g: write(g, "cut.snn", g.artifact[: len(g.artifact) // 2]), read_artifact,
                               BadArtifactError, ("{input}",)),
    "a model passed as artifact": Case(lambda g: write(g, "model.snn", g.model.SerializeToString()), read_artifact,
                                       BadArtifactError, ("not a snnconv artifact",)),
    "tampered array": Case(rezipped(flip_array_byte), read_artifact, BadArtifactError, ("checksum mismatch",)),
    "future format version": Case(rezipped(in_manifest(_version)), read_artifact, BadArtifactError,
                                  (f"format version {artifact.VERSION + 1}", "upgrade snnconv")),
    "no manifest": Case(rezipped(lambda n, d: None if n == "manifest.json" else d), read_artifact, BadArtifactError,
                        ("no manifest.json",)),
    "an array missing": Case(rezipped(lambda n, d: None if n.endswith("weight.npy") else d), read_artifact,
                             BadArtifactError, ("weight.npy", "missing")),
    "manifest not JSON": Case(rezipped(lambda n, d: d[:-10] if n == "manifest.json" else d), read_artifact,
                              BadArtifactError, ("manifest unreadable",)),
    "pickled array": Case(pickled_array, read_artifact, BadArtifactError, ("not a plain .npy array",)),
    "manifest nested too deep": Case(rezipped(_deep_manifest), read_artifact, BadArtifactError,
                                     ("manifest unreadable",)),
    "array shorter than its header": Case(short_array, read_artifact, BadArtifactError,
                                          ("weight.npy", "declares shape")),
    "zip bomb": Case(zip_bomb, read_artifact, BadArtifactError, ("unpacks to 4,026,531,840 bytes",)),
    "stride of zero": Case(rezipped(in_manifest(_zero_stride)), read_artifact, BadArtifactError,
                           ("'stride'", "0 is not an integer in [1,")),
    "cyclic program": Case(rezipped(in_manifest(_cyclic_program)), read_artifact, BadArtifactError,
                           ("form a cycle",)),
    "tile outside its population": Case(tile_outside, read_artifact, BadArtifactError,
                                        ("core 0, tile 0", "not inside")),
    "target tampered": Case(rezipped(in_manifest(_negative_neurons)), read_artifact, BadTargetError,
                            ("core.neurons", "negative")),
}

# --- targets --------------------------------------------------------------------------


def toml(change: Callable[[str], str]) -> Callable[[Good], Path]:
    def make(good: Good) -> Path:
        path = good.folder / "chip.toml"
        path.write_text(change(targets.get("loihi").to_toml()))
        return path
    return make


def without_line(key: str) -> Callable[[str], str]:
    return lambda text: "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ="))


def with_value(key: str, value: str) -> Callable[[str], str]:
    return lambda text: "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line
                                  for line in text.splitlines())


TARGET_CASES = {
    "missing field": Case(toml(without_line("neurons")), read_target, BadTargetError, ("missing field 'core.neurons'",)),
    "negative field": Case(toml(with_value("cores", "-128")), read_target, BadTargetError,
                           ("'chip.cores'", "negative")),
    "zero field": Case(toml(with_value("input_axons", "0")), read_target, BadTargetError,
                       ("'core.input_axons'", "positive")),
    "text for a number": Case(toml(with_value("state_bits", '"24"')), read_target, BadTargetError,
                              ("'precision.state_bits'", "number")),
    "fraction for an integer": Case(toml(with_value("weight_bits", "8.5")), read_target, BadTargetError,
                                    ("'precision.weight_bits'", "integer")),
    "NaN cost": Case(toml(with_value("synop_pj", "nan")), read_target, BadTargetError, ("'costs.synop_pj'", "NaN")),
    "unknown choice": Case(toml(with_value("synapse_cost", '"free"')), read_target, BadTargetError,
                           ("'core.synapse_cost'", "per_synapse")),
    "unknown field": Case(toml(lambda text: text.replace("[chip]", "[chip]\nclock_mhz = 100")), read_target,
                          BadTargetError, ("clock_mhz",)),
    "absurd mesh": Case(toml(with_value("mesh", "[65536, 65536]")), read_target, BadTargetError,
                        ("'chip.mesh'", "places")),
    "absurd state bits": Case(toml(with_value("state_bits", "4096")), read_target, BadTargetError,
                              ("'precision.state_bits'", "up to 64")),
    "not TOML": Case(lambda g: write(g, "chip.toml", b"neurons: 1024\n"), read_target, BadTargetError,
                     ("not valid TOML",)),
    "not UTF-8": Case(lambda g: write(g, "chip.toml", b'name = "\xff\xfe"\n'), read_target, BadTargetError,
                      ("not valid TOML",)),
    "no such file": Case(lambda g: g.folder / "missing.toml", read_target, BadTargetError, ("no such file",)),
}

CORPUS = {**MODEL_CASES, **DATA_CASES, **ARTIFACT_CASES, **TARGET_CASES}


@pytest.fixture
def good(tmp_path, artifact_bytes, artifact_path) -> Good:
    return Good(tmp_path, lenet(), artifact_bytes, artifact_path)


def message_of(case: Case, bad, good: Good) -> str:
    with pytest.raises(SnnconvError) as info:
        case.read(bad, good)
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    return str(info.value)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_input_raises_its_documented_error(name, good):
    case = CORPUS[name]
    bad = case.make(good)
    message = message_of(case, bad, good)
    assert "\n" not in message, f"not one line: {message!r}"
    for fragment in case.fragments:
        assert fragment.format(input=bad) in message, f"{fragment!r} missing from: {message}"


# The command that reads what each reader reads: "{input}" is the bad file, MODEL lenet, ARTIFACT
# lenet compiled, OUT the artifact that a failed compile must not create.
COMMANDS = {
    read_model: ("inspect", "{input}"),
    read_npz: ("run", "ARTIFACT", "--data", "{input}"),
    run_on: ("run", "ARTIFACT", "--data", "{input}"),
    compile_with_calibration: ("compile", "MODEL", "--calibration", "{input}", "-o", "OUT"),
    read_artifact: ("report", "{input}"),
    read_target: ("compile", "MODEL", "--target", "{input}", "-o", "OUT"),
}
ON_THE_COMMAND_LINE = sorted(name for name, case in CORPUS.items() if case.read in COMMANDS)
IN_A_REAL_PROCESS = ["cycle", "calibration of the wrong shape", "NaN in x", "tampered array", "missing field"]


def command_line(case: Case, bad, good: Good) -> list[str]:
    places = {"{input}": str(bad), "MODEL": str(good.folder / "lenet.onnx"), "ARTIFACT": str(good.artifact_path),
              "OUT": str(good.folder / "out.snn")}
    onnx.save_model(good.model, places["MODEL"])
    return [places.get(arg, arg) for arg in COMMANDS[case.read]]


def assert_one_error_line(code: int, stderr: str, case: Case, bad) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert case.fragments[-1].format(input=bad) in lines[0]


@pytest.mark.parametrize("name", ON_THE_COMMAND_LINE)
def test_the_command_line_prints_one_error_line_and_exits_2(name, good, capsys):
    case = CORPUS[name]
    bad = case.make(good)
    code = main(command_line(case, bad, good))
    assert_one_error_line(code, capsys.readouterr().err, case, bad)
    assert not (good.folder / "out.snn").exists()


@pytest.mark.parametrize("name", IN_A_REAL_PROCESS)
def test_the_installed_command_prints_no_traceback(name, good):
    """The same through the ``snnconv`` process a user starts, outside the source tree."""
    case = CORPUS[name]
    bad = case.make(good)
    result = run_cli(*command_line(case, bad, good))
    assert_one_error_line(result.returncode, result.stderr, case, bad)
    assert "Traceback" not in result.stderr
