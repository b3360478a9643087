"""Fuzzing the three surfaces that read files from users: ONNX models, ``.snn`` artifacts and
target TOML files.

Each example mutates a valid input (bytes flipped, cut or inserted; or a structured change:
an ONNX node dropped, rewired or retyped, an attribute, a dimension or a dtype changed, a
tensor's data moved to an external file anywhere, a huge ConstantOfShape fed in; an
artifact's zip members or manifest values changed, its T, neuron models or unused arrays;
a TOML field deleted or given another type, sign or size) and reads it with the public API, then uses what loaded (evaluates the
model, runs the network for one sample). Every outcome must be a success or a one-line
``SnnconvError``: any other exception, a hang (``WATCHDOG_S``) or an allocation beyond
``MEMORY_HEADROOM`` (a ``MemoryError`` here instead of the machine running out) fails.

CI runs ``EXAMPLES`` (2,000) examples per surface, derandomized: the same examples on every
run. A longer run draws new examples each time, for example::

    SNNCONV_FUZZ_EXAMPLES=100000 pytest tests/reliability/test_fuzz.py

and prints the ``@reproduce_failure`` blob of any failure it finds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import resource
import signal
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reliability.inputs import bundled, small_models

import snnconv
from snnconv import ann, targets
from snnconv.errors import SnnconvError
from snnconv.targets.target import load_toml

EXAMPLES = int(os.environ.get("SNNCONV_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="SNNCONV_FUZZ_EXAMPLES" not in os.environ,
                database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
WATCHDOG_S = 30  # one example takes milliseconds; this long is a hang
MEMORY_HEADROOM = 4 << 30  # bytes of address space an example may add
EVALUATED_ELEMENTS = 100_000  # inputs up to this many elements per sample are evaluated after loading


class Hang(BaseException):
    """Raised by the watchdog; a BaseException, so no ``except Exception`` in snnconv swallows it."""


@contextlib.contextmanager
def watchdog(seconds: float):
    def expire(signum, frame):
        raise Hang(f"no outcome after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module", autouse=True)
def bounded_process():
    """Cap the address space at its current size plus ``MEMORY_HEADROOM`` (where Linux tells the
    size), and use one torch thread: the examples are tiny, and a thread pool only adds waiting
    on a busy machine."""
    statm = Path("/proc/self/statm")
    limits = resource.getrlimit(resource.RLIMIT_AS)
    if statm.exists():
        ceiling = int(statm.read_text().split()[0]) * resource.getpagesize() + MEMORY_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (min(ceiling, limits[1]) if limits[1] >= 0 else ceiling, limits[1]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    resource.setrlimit(resource.RLIMIT_AS, limits)
    torch.set_num_threads(threads)


def outcome(action) -> None:
    """Run ``action``: success or a one-line ``SnnconvError``; anything else propagates and fails."""
    try:
        with watchdog(WATCHDOG_S):
            action()
    except SnnconvError as exc:
        event(type(exc).__name__)
        assert str(exc) and "\n" not in str(exc), f"not one line: {exc!r}"
        return
    except Hang as exc:
        raise AssertionError(f"a hang: {exc}") from None
    event("loaded")


def small_sample(shape: tuple[int, ...]) -> np.ndarray | None:
    """One random sample of ``shape`` in [0, 1], or None when it is too big to simulate quickly."""
    if math.prod(shape) > EVALUATED_ELEMENTS:
        return None
    return np.random.default_rng(0).random((1, *shape)).astype(np.float32)


# --- byte-level mutations (every surface) ------------------------------------------------


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """``data`` with one to four edits: a byte flipped or set, a span deleted, inserted or repeated, a cut."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "set", "delete", "insert", "repeat", "cut"]))
        if edit == "flip" and data:
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:]
        elif edit == "set" and data:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif edit == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)):]
        elif edit == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif edit == "repeat":
            data = data[:at] + data[at:at + draw(st.integers(1, 64))] + data[at:]
        else:
            data = data[:at]
    return data


# --- ONNX models -------------------------------------------------------------------------

SEEDS = {**small_models(), "bundled mlp": onnx.load_from_string(bundled("mlp")),
         "bundled cnn": onnx.load_from_string(bundled("cnn"))}
SEED_BYTES = {name: model.SerializeToString() for name, model in SEEDS.items()}
OPS = ["Relu", "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Sum", "MaxPool", "AveragePool",
       "GlobalAveragePool", "Flatten", "Reshape", "Concat", "Pad", "Clip", "BatchNormalization", "Softmax",
       "Identity", "Dropout", "Shape", "Gather", "ConstantOfShape", "Tile", "Expand", "Range", "Transpose",
       "Sigmoid", "Loop", "If", "Scan", "NoSuchOp"]
ATTRIBUTES = ["pads", "strides", "kernel_shape", "dilations", "group", "axis", "axes", "transA", "transB",
              "alpha", "beta", "epsilon", "ceil_mode", "auto_pad", "count_include_pad", "keepdims", "value"]
INTS = st.sampled_from([0, 1, 2, 3, -1, -2, 7, 2**31 - 1, 2**40, -(2**40), 2**63 - 1]) | st.integers(-8, 64)
FLOATS = st.sampled_from([0.0, -1.0, 1e-30, 1e38, math.inf, -math.inf, math.nan]) | st.floats(-10, 10)
DTYPES = list(onnx.TensorProto.DataType.values())
KINDS = {"int": onnx.AttributeProto.INT, "float": onnx.AttributeProto.FLOAT, "ints": onnx.AttributeProto.INTS,
         "string": onnx.AttributeProto.STRING}


def _tensor_names(model: onnx.ModelProto) -> list[str]:
    names = [i.name for i in model.graph.input] + [t.name for t in model.graph.initializer]
    return names + [o for node in model.graph.node for o in node.output] + ["", "ghost"]


def _attribute_value(draw, kind: str):
    if kind == "float":
        return draw(FLOATS)
    if kind == "ints":
        return draw(st.lists(INTS, max_size=8))
    if kind == "string":
        return draw(st.sampled_from(["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "reflect", "", "\x00"]))
    return draw(INTS)


def _set_attribute(draw, node: onnx.NodeProto) -> None:
    name = draw(st.sampled_from([a.name for a in node.attribute] + ATTRIBUTES))
    kind = draw(st.sampled_from(["int", "float", "ints", "string"]))
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    if draw(st.booleans()):  # else the attribute is deleted
        node.attribute.append(onnx.helper.make_attribute(name, _attribute_value(draw, kind), attr_type=KINDS[kind]))


def _set_dim(draw, model: onnx.ModelProto) -> None:
    values = list(model.graph.input) + list(model.graph.output)
    shape = draw(st.sampled_from(values)).type.tensor_type.shape
    if not len(shape.dim):
        return
    dim = shape.dim[draw(st.integers(0, len(shape.dim) - 1))]
    if draw(st.booleans()):
        dim.dim_param = draw(st.sampled_from(["N", "batch", ""]))
    else:
        dim.dim_value = draw(INTS)


def _replace_initializer(draw, model: onnx.ModelProto) -> None:
    """An initializer replaced by another array: other shape, dtype or special values."""
    if not model.graph.initializer:
        return
    tensor = model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))]
    shape = [max(0, d + draw(st.integers(-1, 1))) if draw(st.booleans()) else d for d in tensor.dims]
    if draw(st.booleans()):
        shape = shape[:-1] if shape and draw(st.booleans()) else [*shape, draw(st.integers(0, 3))]
    if math.prod(shape) > 1 << 20:
        return
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.int8, np.bool_,
                                  np.float16]))
    array = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape)
    if array.size and draw(st.booleans()):
        array.flat[draw(st.integers(0, array.size - 1))] = draw(FLOATS)
    with np.errstate(invalid="ignore", over="ignore"):
        tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(array).astype(dtype), tensor.name))


EXTERNAL_PLACES = ["../outside.bin", "/etc/hostname", "canary.bin", "sub/../../x.bin", "/dev/zero", "", "."]


def _external_data(draw, model: onnx.ModelProto) -> None:
    """An initializer's (or a Constant's) data said to lie in a file: outside the folder, absent, special."""
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    if not tensors:
        return
    tensor = tensors[draw(st.integers(0, len(tensors) - 1))]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", draw(st.sampled_from(EXTERNAL_PLACES))),
                       ("offset", str(draw(INTS))), ("length", str(draw(INTS)))):
        if draw(st.integers(0, 3)):
            tensor.external_data.add(key=key, value=value)


def _huge_constant(draw, model: onnx.ModelProto) -> None:
    """A ConstantOfShape of up to 2^40 elements read by some node."""
    nodes = model.graph.node
    if not len(nodes):
        return
    dims = draw(st.lists(st.sampled_from([1, 3, 1 << 10, 1 << 14, 1 << 20]), min_size=1, max_size=3))
    shape = onnx.helper.make_tensor("fuzz_shape", onnx.TensorProto.INT64, [len(dims)], dims)
    model.graph.initializer.append(shape)
    nodes.insert(0, onnx.helper.make_node("ConstantOfShape", ["fuzz_shape"], ["fuzz_big"]))
    reader = nodes[draw(st.integers(1, len(nodes) - 1))] if len(nodes) > 1 else None
    if reader is not None and len(reader.input):
        reader.input[draw(st.integers(0, len(reader.input) - 1))] = "fuzz_big"


def _mutate_model(draw, model: onnx.ModelProto) -> None:
    """One structured change to ``model``, in place."""
    nodes = model.graph.node
    node = nodes[draw(st.integers(0, len(nodes) - 1))] if len(nodes) else None
    change = draw(st.sampled_from(["drop node", "drop input", "rewire", "rename output", "attribute", "op type",
                                   "dim", "initializer", "initializer dtype", "input dtype", "opset", "swap",
                                   "domain", "ir version", "drop initializer", "external data",
                                   "huge constant"]))
    event(f"mutation: {change}")
    if change == "drop node" and node is not None:
        nodes.remove(node)
    elif change == "drop input" and node is not None and len(node.input):
        del node.input[draw(st.integers(0, len(node.input) - 1))]
    elif change == "rewire" and node is not None and len(node.input):
        node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(_tensor_names(model)))
    elif change == "rename output" and node is not None:
        node.output[0] = draw(st.sampled_from(_tensor_names(model)))
    elif change == "attribute" and node is not None:
        _set_attribute(draw, node)
    elif change == "op type" and node is not None:
        node.op_type = draw(st.sampled_from(OPS))
    elif change == "dim":
        _set_dim(draw, model)
    elif change == "initializer":
        _replace_initializer(draw, model)
    elif change == "initializer dtype" and model.graph.initializer:
        model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))].data_type = \
            draw(st.sampled_from(DTYPES))
    elif change == "input dtype":
        model.graph.input[0].type.tensor_type.elem_type = draw(st.sampled_from(DTYPES))
    elif change == "opset":
        model.opset_import[0].version = draw(st.sampled_from([0, 1, 6, 7, 8, 9, 11, 13, 17, 19, 22, 25, 99, -1]))
    elif change == "swap" and len(nodes) > 1:
        i, j = draw(st.integers(0, len(nodes) - 1)), draw(st.integers(0, len(nodes) - 1))
        first, second = onnx.NodeProto(), onnx.NodeProto()
        first.CopyFrom(nodes[i])
        second.CopyFrom(nodes[j])
        nodes[i].CopyFrom(second)
        nodes[j].CopyFrom(first)
    elif change == "domain" and node is not None:
        node.domain = draw(st.sampled_from(["ai.onnx", "com.microsoft", "ai.onnx.ml", "x"]))
    elif change == "ir version":
        model.ir_version = draw(st.sampled_from([0, 1, 3, 7, 10, 99]))
    elif change == "drop initializer" and model.graph.initializer:
        del model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))]
    elif change == "external data":
        _external_data(draw, model)
    elif change == "huge constant":
        _huge_constant(draw, model)


@st.composite
def structured_mutants(draw) -> bytes:
    model = onnx.ModelProto()
    model.CopyFrom(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        _mutate_model(draw, model)
    return model.SerializeToString()


MODEL_FILES = structured_mutants() | st.sampled_from(sorted(SEED_BYTES)).flatmap(
    lambda name: mutated_bytes(SEED_BYTES[name]))


def load_and_evaluate(path: Path) -> None:
    """Import a model file and, when it loads, evaluate one sample with the float reference."""
    graph = snnconv.load_onnx(path)
    x = small_sample(graph.input.shape)
    if x is not None:
        ann.evaluate(graph, x)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=MODEL_FILES)
def test_onnx_mutations_load_or_raise_a_project_error(data, scratch):
    path = scratch / "model.onnx"
    path.write_bytes(data)
    outcome(lambda: load_and_evaluate(path))


# --- artifacts ---------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS.filter(math.isfinite)
    | st.sampled_from(["", "inf", "-inf", "conv", "arrays/../../etc/passwd", "manifest.json", "subtract"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["array", "kind", "name"]), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def _paths(value, prefix=()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value, containers included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate_manifest(draw, manifest: dict) -> None:
    path = draw(st.sampled_from(_paths(manifest)[1:]))
    parent = manifest
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "delete", "scale"]))
    current = parent[path[-1]]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "scale" and isinstance(current, (int, float)) and not isinstance(current, bool):
        parent[path[-1]] = current * draw(st.sampled_from([-1, 0, 2, 2**20, 2**40]))
    else:
        parent[path[-1]] = draw(JSON_VALUES)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@functools.cache
def _members(artifact: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(artifact)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@st.composite
def mutated_artifacts(draw, good: bytes) -> bytes:
    """The artifact with its manifest, an array, a member or its bytes changed; checksums kept consistent
    (except where the bytes change), so the change reaches past the checksum check."""
    members = dict(_members(good))
    manifest = json.loads(members["manifest.json"])
    arrays = sorted(manifest["checksums"])
    kind = draw(st.sampled_from(["manifest", "manifest", "array", "member bytes", "drop member", "zip bytes",
                                 "timesteps", "neuron", "unused array"]))
    event(f"mutation: {kind}")
    if kind == "manifest":
        for _ in range(draw(st.integers(1, 3))):
            _mutate_manifest(draw, manifest)
    elif kind == "timesteps":
        manifest["options"]["timesteps"] = draw(st.sampled_from([0, -1, 16_384, 16_385, 2**31, 10**12, 1.5, "32"]))
    elif kind == "neuron":
        population = draw(st.sampled_from([entry for entry in manifest["program"] if entry["kind"] == "if"]))
        population["model"] = draw(st.sampled_from(["if", "lif", "izhikevich", "", None]))
        population["decay"] = draw(st.sampled_from([0, 1, 4095, 4096, -1, 2**40, 0.5]))
    elif kind == "unused array":
        name = f"arrays/unused{draw(st.integers(0, 9))}.npy"
        members[name] = _npy(np.zeros(draw(st.sampled_from([1, 1 << 16, 1 << 22])), np.float32))
        manifest["checksums"][name] = hashlib.sha256(members[name]).hexdigest()
    elif kind == "array":
        name = draw(st.sampled_from(arrays))
        shape = draw(st.lists(st.integers(0, 5), max_size=4))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.int8, np.bool_, np.complex64]))
        members[name] = _npy(np.full(shape, draw(st.integers(-3, 3)), dtype))
        manifest["checksums"][name] = hashlib.sha256(members[name]).hexdigest()
    elif kind == "member bytes":
        name = draw(st.sampled_from(sorted(members)))
        members[name] = draw(mutated_bytes(members[name]))
        if name in manifest["checksums"] and draw(st.booleans()):
            manifest["checksums"][name] = hashlib.sha256(members[name]).hexdigest()
    elif kind == "drop member":
        del members[draw(st.sampled_from(sorted(members)))]
    if kind != "manifest" or "manifest.json" in members:
        members["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return draw(mutated_bytes(buffer.getvalue())) if kind == "zip bytes" else buffer.getvalue()


def load_and_run(path: Path) -> None:
    """Load an artifact and, when it loads, run one sample for two timesteps."""
    net = snnconv.load(path)
    x = small_sample(net.graph.input.shape)
    if x is not None:
        net.run(x, timesteps=2)


@FUZZ
@given(data=st.data())
def test_artifact_mutations_load_or_raise_a_project_error(data, artifact_bytes, scratch):
    path = scratch / "net.snn"
    path.write_bytes(data.draw(mutated_artifacts(artifact_bytes)))
    outcome(lambda: load_and_run(path))


# --- target files ------------------------------------------------------------------------

TOML_VALUES = ["-1", "0", "1", "2", "-0", "1e308", "1e400", "-1e400", "inf", "-inf", "nan", "+inf",
               "9223372036854775807", "-9223372036854775808", "1099511627776", "1.5", "-2.5", '"text"', '""',
               "[]", "[1, 2]", "[1, 2, 3]", "[-1, 5]", "[5, -1]", '["subtract"]', '["zero", "zero"]', "true",
               "false", "{}", "{ a = 1 }", "1979-05-27", "0x10", "1_000", '"inf"', "[0, 0]", "[inf]"]


def _mutate_toml(draw, lines: list[str]) -> None:
    at = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(["value", "value", "value", "delete", "duplicate", "rename", "swap", "text"]))
    event(f"mutation: {action}")
    key, sep, value = lines[at].partition(" = ")
    if action == "value" and sep:
        lines[at] = f"{key} = {draw(st.sampled_from(TOML_VALUES))}"
    elif action == "value" and sep == "" and value == "":
        lines[at] = draw(st.sampled_from(["[core]", "[chip]", "[cores]", "[[core]]", "", "[sources]"]))
    elif action == "delete":
        del lines[at]
    elif action == "duplicate":
        lines.insert(at, lines[at])
    elif action == "rename" and sep:
        lines[at] = f"{key}{draw(st.sampled_from(['s', '_x', '.x']))} = {value}"
    elif action == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[at], lines[other] = lines[other], lines[at]
    elif action == "text":
        lines[at] = draw(st.text(max_size=20))


@st.composite
def mutated_target_files(draw) -> str:
    lines = targets.get(draw(st.sampled_from(targets.names()))).to_toml().splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if lines:
            _mutate_toml(draw, lines)
    return "\n".join(lines) + "\n"


def load_and_round_trip(path: Path) -> None:
    """Load a target file both ways; what loads must write a file that loads back to the same target."""
    loaded = targets.get(path)
    assert load_toml(path) == loaded
    path.write_text(loaded.to_toml(), encoding="utf-8")
    assert load_toml(path) == loaded


@FUZZ
@given(text=mutated_target_files())
def test_target_file_mutations_load_or_raise_a_project_error(text, scratch):
    path = scratch / "chip.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    outcome(lambda: load_and_round_trip(path))
