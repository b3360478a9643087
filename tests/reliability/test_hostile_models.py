"""Hostile ONNX models: each way a small file can make the frontend hang, exhaust memory,
raise something other than a project error, or read a file it should not, refused at its root.

The promise (issue 14): any ONNX model file under 1 MB either imports or raises
``BadModelError`` / ``UnsupportedOpError`` with a one-line message, in seconds and bounded
memory, and never opens a file outside the model's folder. The classes:

* reading: a FIFO, a folder or a device as the model is refused without blocking;
* external data, wherever a tensor sits (initializers, sparse initializers and sparse
  attributes, model-local functions, If and Loop bodies), is read only from regular files
  in the model's folder (never from the working directory, where a canary file waits),
  only its declared byte range, and only while the total stays under protobuf's 2 GiB;
* constant folding runs only ops whose cost is known, within budgets checked before
  evaluating: a Loop of 10^12 iterations, a 16k x 16k MatMul and many large constants are
  refused in milliseconds;
* whatever onnx raises becomes a project error with its cause kept.

Every load runs in a thread with a deadline, so a regression fails instead of hanging the
suite; the files a hostile model points to outside its folder are watched with inotify,
which sees opens from onnx's C++ code too.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf.message import EncodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from reliability.inputs import lenet

import snnconv
from snnconv.errors import BadModelError, UnsupportedOpError
from snnconv.frontend import folding

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="uses Linux's inotify, FIFOs and sparse files")

H = helper.make_node
DEADLINE_S = 20  # every case takes well under a second; this long is a hang
DECOY = np.full(640, 7.0, np.float32)  # the canary's and the outside file's content: 7.0 is no weight of lenet
F = numpy_helper.to_array(next(t for t in lenet().graph.initializer if t.name == "F"))  # (10, 64) float32

# --- watching opens ------------------------------------------------------------------------

IN_OPEN = 0x20  # inotify's event mask for "the file was opened"


@contextlib.contextmanager
def watching_opens(*paths: Path) -> Iterator[Callable[[], list[Path]]]:
    """Watch ``paths`` with Linux's inotify; yields a function listing those opened since.

    inotify sees an open by any code of the process: onnx opens external data from C++,
    where Python's audit hooks see nothing.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1 failed")
    try:
        watches = {libc.inotify_add_watch(fd, os.fsencode(path), IN_OPEN): path for path in paths}

        def opened() -> list[Path]:
            seen = []
            with contextlib.suppress(BlockingIOError):  # raised once no event is left
                while True:
                    data = os.read(fd, 4096)
                    offset = 0
                    while offset < len(data):  # struct inotify_event: wd, mask, cookie, len, name[len]
                        watch, _, _, length = struct.unpack_from("iIII", data, offset)
                        seen.append(watches[watch])
                        offset += 16 + length
            return seen

        yield opened
    finally:
        os.close(fd)


def outcome_within(action: Callable[[], object], unblock: Callable[[], None] | None = None) -> object:
    """What ``action()`` returns, or the exception it raises; the test fails if it takes over ``DEADLINE_S``.

    It runs in a daemon thread, so a regression fails rather than hangs; ``unblock`` then
    releases the thread (e.g. by opening a FIFO's other end).
    """
    box: list[object] = []

    def run() -> None:
        try:
            box.append(action())
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which checks its class
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        pytest.fail(f"no outcome after {DEADLINE_S} s: a hang")
    return box[0]


def refused(outcome: object, error: type[Exception], *fragments: str) -> str:
    """``outcome`` is exactly ``error``, with a one-line message holding every fragment."""
    assert type(outcome) is error, f"expected {error.__name__}, got {type(outcome).__name__}: {outcome}"
    message = str(outcome)
    assert message and "\n" not in message, f"not one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    return message


def load(source) -> object:
    """``snnconv.load_onnx(source)``'s graph or exception, within the deadline."""
    return outcome_within(lambda: snnconv.load_onnx(source))


# --- the sandbox: a model folder, a canary in the working directory, a file outside --------


@dataclass(frozen=True)
class Sandbox:
    folder: Path  # the model's folder; weights.bin in it holds lenet's F
    canary: Path  # canary.bin in the working directory, which is not the model's folder
    secret: Path  # secret.bin beside the model's folder, i.e. outside it

    @property
    def model(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def decoys(self) -> tuple[Path, Path]:
        """The files outside the folder that hostile locations point to: neither may ever be opened."""
        return self.canary, self.secret


def make_sandbox(root: Path) -> Sandbox:
    """Under ``root``: ``model/`` (``weights.bin``, a symlink out, a FIFO), ``cwd/canary.bin`` and ``secret.bin``."""
    folder, cwd = root / "model", root / "cwd"
    folder.mkdir()
    cwd.mkdir()
    sandbox = Sandbox(folder, cwd / "canary.bin", root / "secret.bin")
    sandbox.canary.write_bytes(DECOY.tobytes())
    sandbox.secret.write_bytes(DECOY.tobytes())
    (folder / "weights.bin").write_bytes(F.tobytes())
    os.symlink(sandbox.secret, folder / "innocent.bin")
    os.mkfifo(folder / "pipe.bin")
    return sandbox


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    made = make_sandbox(tmp_path)
    monkeypatch.chdir(made.canary.parent)
    return made


# --- external tensors and where they can sit ------------------------------------------------


def external(name: str, location: str, dims=(10, 64), data_type: int = TensorProto.FLOAT,
             offset: int = 0, length: int | None = None) -> TensorProto:
    """A tensor whose bytes are said to lie in ``location`` (by default at its start, as long as ``dims`` need)."""
    tensor = TensorProto(name=name, data_type=data_type, dims=dims, data_location=TensorProto.EXTERNAL)
    if length is None:
        length = math.prod(dims) * helper.tensor_dtype_to_np_dtype(data_type).itemsize
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def as_initializer(model: onnx.ModelProto, location: str) -> None:
    """lenet's dense weights F, read from ``location``."""
    index = [t.name for t in model.graph.initializer].index("F")
    model.graph.initializer[index].CopyFrom(external("F", location))


def sparse(values: TensorProto, indices: TensorProto) -> onnx.SparseTensorProto:
    return helper.make_sparse_tensor(values, indices, [640])


def in_sparse_initializer_values(model: onnx.ModelProto, location: str) -> None:
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "S_indices")
    model.graph.sparse_initializer.append(sparse(external("S", location, (4,)), indices))


def in_sparse_initializer_indices(model: onnx.ModelProto, location: str) -> None:
    values = numpy_helper.from_array(np.ones(4, np.float32), "S")
    model.graph.sparse_initializer.append(sparse(values, external("S_indices", location, (4,), TensorProto.INT64)))


def in_sparse_attribute(model: onnx.ModelProto, location: str) -> None:
    """A Constant with a sparse value, which folding turns dense."""
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "D_indices")
    model.graph.node.append(H("Constant", [], ["dense"], sparse_value=sparse(external("D", location, (4,)), indices)))


def in_function(model: onnx.ModelProto, location: str) -> None:
    """A Constant inside a model-local function."""
    body = H("Constant", [], ["c"], value=external("c", location))
    model.functions.append(helper.make_function("local", "Weights", [], ["c"], [body],
                                                [helper.make_opsetid("", 13)]))
    model.opset_import.append(helper.make_opsetid("local", 1))


def weights_graph(location: str, extra_inputs=(), extra_outputs=(), nodes=()) -> onnx.GraphProto:
    """A subgraph whose output ``w`` is a Constant read from ``location``."""
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [10, 64])
    return helper.make_graph([*nodes, H("Constant", [], ["w"], value=external("w", location))], "body",
                             list(extra_inputs), [*extra_outputs, w])


def in_if_branch(model: onnx.ModelProto, location: str) -> None:
    zeros = H("Constant", [], ["w"], value=numpy_helper.from_array(np.zeros((10, 64), np.float32)))
    other = helper.make_graph([zeros], "else", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, [10, 64])])
    model.graph.initializer.append(numpy_helper.from_array(np.array(True), "yes"))
    model.graph.node.append(H("If", ["yes"], ["chosen"], then_branch=weights_graph(location), else_branch=other))


def in_loop_body(model: onnx.ModelProto, location: str) -> None:
    body = weights_graph(
        location,
        extra_inputs=[helper.make_tensor_value_info("i", TensorProto.INT64, []),
                      helper.make_tensor_value_info("go", TensorProto.BOOL, [])],
        extra_outputs=[helper.make_tensor_value_info("go_on", TensorProto.BOOL, [])],
        nodes=[H("Identity", ["go"], ["go_on"])],
    )
    model.graph.initializer.extend([numpy_helper.from_array(np.array(3, np.int64), "trips"),
                                    numpy_helper.from_array(np.array(True), "go0")])
    model.graph.node.append(H("Loop", ["trips", "go0"], ["ws"], body=body))


PLACEMENTS = {
    "initializer": as_initializer,
    "sparse initializer values": in_sparse_initializer_values,
    "sparse initializer indices": in_sparse_initializer_indices,
    "sparse attribute": in_sparse_attribute,
    "model-local function": in_function,
    "If branch": in_if_branch,
    "Loop body": in_loop_body,
}

# Where external data may be said to lie, as the model writes it, and the refusal's fragment.
HOSTILE = {
    "absolute": (lambda box: str(box.secret), "is absolute"),
    "dotdot": (lambda box: "../secret.bin", "out of the model's folder"),
    "nested dotdot": (lambda box: "sub/../../secret.bin", "out of the model's folder"),
    "symlink out": (lambda box: "innocent.bin", "out of the model's folder"),
    "canary in the working directory": (lambda box: "canary.bin", "missing beside the model"),
    "FIFO": (lambda box: "pipe.bin", "not a regular file"),
    "working directory by absolute path": (lambda box: str(box.canary), "is absolute"),
}


def hostile_model(box: Sandbox, placements: list[tuple[str, str]]) -> Path:
    """lenet with an external tensor at each (placement, location), saved as ``box.model``."""
    model = lenet()
    for placement, location in placements:
        PLACEMENTS[placement](model, location)
    box.model.write_bytes(model.SerializeToString())
    return box.model


def assert_no_decoy_loaded(graph: snnconv.Graph) -> None:
    for layer in graph:
        for name, array in layer.arrays().items():
            assert not np.any(np.asarray(array) == 7.0), f"{layer.name}.{name} holds the decoy's bytes"


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_external_data_outside_the_model_folder_is_refused_wherever_the_tensor_sits(sandbox, placement, kind):
    locate, fragment = HOSTILE[kind]
    location = locate(sandbox)
    path = hostile_model(sandbox, [(placement, location)])
    with watching_opens(*sandbox.decoys) as opened:
        outcome = load(path)
        assert not opened()
    refused(outcome, BadModelError, str(path), repr(location), fragment)


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_external_data_in_the_model_folder_is_read_wherever_the_tensor_sits(sandbox, placement):
    """The same places with the data beside the model: read, and the reference cleared for onnx."""
    path = hostile_model(sandbox, [(placement, "weights.bin")])
    outcome = load(path)
    if placement in ("If branch", "Loop body"):  # read, then refused as a subgraph on constants
        refused(outcome, UnsupportedOpError, "subgraph", "fold the constants before export")
    elif placement == "sparse initializer indices":  # lenet's F read as indices: out of range
        refused(outcome, BadModelError, "checker")
    elif placement == "sparse attribute":  # read; onnx's reference runtime cannot fold a sparse Constant
        refused(outcome, BadModelError, "'Constant_6'", "cannot evaluate")
    else:
        assert isinstance(outcome, snnconv.Graph), outcome
        dense = next(layer for layer in outcome if layer.kind == "dense")
        np.testing.assert_array_equal(dense.arrays()["weight"], F)


def test_a_canary_named_like_the_location_in_the_working_directory_is_never_read(sandbox):
    """The case onnx gets wrong: a location it resolves against the working directory.

    onnx's reference runtime, folding a sparse Constant, used to open ``canary.bin`` there
    (from C++) and read it.
    """
    path = hostile_model(sandbox, [("sparse attribute", "canary.bin")])
    with watching_opens(sandbox.canary) as opened:
        outcome = load(path)
        assert not opened()
    refused(outcome, BadModelError, "'canary.bin'", "missing beside the model", "graph.node[6].attribute[0]")


def test_the_canary_is_not_read_when_the_model_is_given_by_a_relative_path(sandbox, monkeypatch):
    """A model in the working directory: its folder is the working directory, and only that is read."""
    monkeypatch.chdir(sandbox.folder)
    path = hostile_model(sandbox, [("initializer", "weights.bin"), ("sparse attribute", "../cwd/canary.bin")])
    refused(load(Path(path.name)), BadModelError, "'../cwd/canary.bin'", "out of the model's folder")


def test_a_model_proto_with_external_data_anywhere_is_refused(sandbox):
    model = lenet()
    in_function(model, "weights.bin")
    refused(load(model), BadModelError, "<ModelProto>", "'c'", "pass the model's path")


def test_external_data_totalling_over_2_gib_is_refused_before_reading(sandbox):
    """Two tensors each naming 1.5 GiB of a 3 GiB sparse file: no byte of it is read."""
    big = sandbox.folder / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(3 << 30)  # sparse: takes no disk space
    model = lenet()
    half = 3 << 29
    for name, offset in (("F", 0), ("W", half)):
        index = [t.name for t in model.graph.initializer].index(name)
        model.graph.initializer[index].CopyFrom(external(name, "big.bin", offset=offset, length=half))
    sandbox.model.write_bytes(model.SerializeToString())
    with watching_opens(big) as opened:
        outcome = load(sandbox.model)
        assert not opened()
    refused(outcome, BadModelError, "weights total 3,221,2", "2 GiB", "ModelProto", "no neuromorphic target")


@pytest.mark.parametrize("entries, fragments", [
    ({"offset": "2000", "length": "2560"}, ("holds 2,560 bytes", "run to byte 4,560", "copy it again")),
    ({"offset": "-4"}, ("offset '-4'", "not a whole number")),
    ({"length": "1e3"}, ("length '1e3'", "not a whole number")),
    ({"offset": "9" * 5000}, ("not a whole number",)),
], ids=["past_the_end", "negative_offset", "float_length", "5000_digits"])
def test_external_data_ranges_are_checked_against_the_file(sandbox, entries, fragments):
    model = lenet()
    as_initializer(model, "weights.bin")
    tensor = next(t for t in model.graph.initializer if t.name == "F")
    for entry in tensor.external_data:
        entry.value = entries.get(entry.key, entry.value)
    sandbox.model.write_bytes(model.SerializeToString())
    refused(load(sandbox.model), BadModelError, "'F'", *fragments)


# --- reading the model itself ----------------------------------------------------------------


def unblock_fifo(path: Path) -> Callable[[], None]:
    """Open the FIFO's writing end and close it: a reader blocked in open() then reads end-of-file."""
    def unblock() -> None:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    return unblock


def test_a_fifo_as_the_model_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    outcome = outcome_within(lambda: snnconv.load_onnx(fifo), unblock=unblock_fifo(fifo))
    refused(outcome, BadModelError, str(fifo), "named pipe", "not a regular file", "an .onnx model")


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp, "a folder"),
    (lambda tmp: Path("/dev/zero"), "a device"),
    (lambda tmp: tmp / "missing.onnx", "no such file"),
], ids=["folder", "dev_zero", "missing"])
def test_other_paths_that_are_no_model_file_are_refused(tmp_path, make, fragment):
    path = make(tmp_path)
    if not path.exists() and fragment != "no such file":
        pytest.skip(f"{path} does not exist on this system")
    refused(outcome_within(lambda: snnconv.load_onnx(path)), BadModelError, str(path), fragment)


# --- constant folding ---------------------------------------------------------------------------


def tiny(nodes, initializers: dict) -> onnx.ModelProto:
    """``y = Relu(x)`` on (N, 3), with ``nodes`` beside it (their outputs unused)."""
    graph = helper.make_graph(
        [H("Relu", ["x"], ["y"]), *nodes], "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def shape(*dims: int) -> np.ndarray:
    return np.array(dims, np.int64)


def spinning_loop() -> onnx.ModelProto:
    """A Loop of 10^12 iterations that does nothing: a model of a few hundred bytes."""
    body = helper.make_graph(
        [H("Identity", ["go"], ["go_on"]), H("Identity", ["v"], ["v_out"])], "spin",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("go", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("go_on", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    return tiny([H("Loop", ["trips", "go", "v0"], ["v_end"], body=body, name="spin")],
                {"trips": np.array(10**12, np.int64), "go": np.array(True), "v0": np.zeros(1, np.float32)})


def constant_if() -> onnx.ModelProto:
    branch = helper.make_graph([H("Constant", [], ["k"], value_floats=[1.0])], "branch", [],
                               [helper.make_tensor_value_info("k", TensorProto.FLOAT, [1])])
    return tiny([H("If", ["yes"], ["k_out"], then_branch=branch, else_branch=branch, name="choice")],
                {"yes": np.array(True)})


def square_matmul(n: int, k: int) -> onnx.ModelProto:
    """An (n x k) by (k x n) MatMul of constants made by ConstantOfShape."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    return tiny([H("ConstantOfShape", ["sa"], ["a"], value=one), H("ConstantOfShape", ["sb"], ["b"], value=one),
                 H("MatMul", ["a", "b"], ["ab"], name="square")], {"sa": shape(n, k), "sb": shape(k, n)})


def balloons(count: int, elements: int) -> onnx.ModelProto:
    """``count`` ConstantOfShape nodes of ``elements`` float32 each."""
    return tiny([H("ConstantOfShape", ["s"], [f"c{i}"], name=f"balloon_{i}") for i in range(count)],
                {"s": shape(elements)})


FOLDING_CASES = {
    "Loop of 10^12 iterations": (spinning_loop, UnsupportedOpError,
                                 ("'spin'", "Loop", "subgraph", "fold the constants before export", "onnxsim")),
    "If on a constant": (constant_if, UnsupportedOpError, ("'choice'", "If", "subgraph")),
    "16k x 16k MatMul": (lambda: square_matmul(16384, 16), UnsupportedOpError,
                         ("'square'", "MatMul", "folded constants", f"{folding.MAX_FOLDED_BYTES:,}", "onnxsim")),
    "2048^3 multiply-adds": (lambda: square_matmul(2048, 2048), UnsupportedOpError,
                             ("'square'", "8,589,934,592 element operations", "2,000,000,000")),
    "six constants just under the per-tensor cap": (lambda: balloons(6, (1 << 28) - 1), UnsupportedOpError,
                                                     ("'balloon_0'", "1,073,741,820 bytes",
                                                      f"{folding.MAX_FOLDED_BYTES:,}")),
    "a random op": (lambda: tiny([H("RandomNormalLike", ["k"], ["r"], name="dice")], {"k": np.ones(3, np.float32)}),
                    UnsupportedOpError, ("'dice'", "RandomNormalLike", "cost", "fold the constants")),
    "a growing op whose size inference cannot tell": (
        lambda: tiny([H("Expand", ["k", "s"], ["e"], name="unknowable")],
                     {"k": np.ones(1, np.float32), "s": np.ones(5000, np.int64)}),
        UnsupportedOpError, ("'unknowable'", "cannot tell the size", "fold the constants")),
    "a constant of 2^40 elements": (lambda: balloons(1, 1 << 40), BadModelError,
                                    ("'balloon_0'", str(1 << 40), "far too large")),
}


@pytest.mark.parametrize("case", sorted(FOLDING_CASES))
def test_folding_is_refused_before_evaluating_what_it_cannot_bound(case):
    build, error, fragments = FOLDING_CASES[case]
    refused(load(build()), error, *fragments)


def test_the_folding_budget_is_for_the_whole_model(monkeypatch):
    """Constants each within the budget, together over it: the one that crosses it is named."""
    monkeypatch.setattr(folding, "MAX_FOLDED_BYTES", 3 << 20)
    message = refused(load(balloons(4, 1 << 18)), UnsupportedOpError, "'balloon_3'", "4,194,304 bytes")
    assert "balloon_2" not in message


def test_small_folds_within_the_budgets_still_import():
    """ConstantOfShape weights and a Shape -> Gather -> Concat reshape target (``folded_reshape``)."""
    from reliability.inputs import folded_reshape

    weights = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.5])
    model = tiny([H("ConstantOfShape", ["s"], ["c"], value=weights), H("MatMul", ["c", "c2"], ["m"])],
                 {"s": shape(3, 3), "c2": np.eye(3, dtype=np.float32)})
    assert isinstance(load(model), snnconv.Graph)
    assert isinstance(load(folded_reshape()), snnconv.Graph)


# --- onnx's own exceptions at the boundary ----------------------------------------------------------


def raising(exc: BaseException) -> Callable:
    def raise_it(*args, **kwargs):
        raise exc
    return raise_it


def old_relu() -> onnx.ModelProto:
    """A sound opset-6 model, which goes through onnx's version converter."""
    model = tiny([], {})
    model.opset_import[0].version = 6
    return model


ONNX_FAILURES = [EncodeError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB: 2147483700"),
                 RecursionError("maximum recursion depth exceeded"), MemoryError(), RuntimeError("[C++] bad")]
BOUNDARIES = [  # what onnx function raises, on which model, and the error snnconv raises instead
    pytest.param("onnx.checker.check_model", lenet, BadModelError, id="checker"),
    pytest.param("onnx.shape_inference.infer_shapes", lenet, BadModelError, id="shape_inference"),
    pytest.param("onnx.version_converter.convert_version", old_relu, UnsupportedOpError, id="version_converter"),
    pytest.param("snnconv.frontend.folding.ReferenceEvaluator", lambda: square_matmul(2, 2), BadModelError,
                 id="folding"),
]


@pytest.mark.parametrize("failure", ONNX_FAILURES, ids=lambda exc: type(exc).__name__)
@pytest.mark.parametrize("target, build, error", BOUNDARIES)
def test_whatever_onnx_raises_becomes_a_project_error_with_its_cause(monkeypatch, failure, target, build, error):
    model = build()
    monkeypatch.setattr(target, raising(failure))
    outcome = load(model)
    refused(outcome, error)
    assert outcome.__cause__ is failure


# --- random placements and locations ------------------------------------------------------------


LOCATIONS = {**{kind: locate for kind, (locate, _) in HOSTILE.items()}, "inside": lambda box: "weights.bin"}
HOSTILE_KINDS = sorted(HOSTILE)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(references=st.lists(st.tuples(st.sampled_from(sorted(PLACEMENTS)), st.sampled_from(sorted(LOCATIONS))),
                           min_size=1, max_size=3, unique_by=lambda ref: ref[0]))
def test_external_references_anywhere_never_open_a_file_outside_the_folder(tmp_path_factory, references):
    """lenet with one to three external references placed at random, each at a random location.

    Any hostile location: BadModelError naming it. Otherwise a graph or a project error.
    Never: a file outside the model's folder opened, or the decoys' bytes in the weights.
    """
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as root:
        box = make_sandbox(Path(root))
        with contextlib.chdir(box.canary.parent):
            placed = [(placement, LOCATIONS[kind](box)) for placement, kind in references]
            path = hostile_model(box, placed)
            with watching_opens(*box.decoys) as opened:
                outcome = load(path)
                assert not opened()
        if any(kind in HOSTILE for _, kind in references):
            assert type(outcome) is BadModelError, f"{type(outcome).__name__}: {outcome}"
        elif isinstance(outcome, snnconv.Graph):
            assert_no_decoy_loaded(outcome)
        else:
            assert type(outcome) in (BadModelError, UnsupportedOpError), f"{type(outcome).__name__}: {outcome}"
