"""Hostile use of the commands and the API: outputs over inputs, special files, huge declared
arrays, bad labels and option values, and output that must stay one line or valid JSON.

Each case checks what the promise in DESIGN.md says: exit code 2 with one ``error:`` line
from the command line (an ``snnconv.errors`` class from the API), nothing written, no
input changed, and no hang (special files are tried under a timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from reliability.inputs import LENET_SHAPE, run_cli

import snnconv
from snnconv import ann, files, options
from snnconv.cli import main
from snnconv.data import load_npz
from snnconv.errors import BadDataError, BadOptionError, BadPathError, SnnconvError


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(code: int, stderr: str, fragment: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def folder(tmp_path, lenet_path, artifact_path, lenet_calibration):
    """A user's folder: the model, calibration and test data, and a compiled artifact."""
    (tmp_path / "lenet.onnx").write_bytes(lenet_path.read_bytes())
    (tmp_path / "lenet.snn").write_bytes(artifact_path.read_bytes())
    labels = np.arange(len(lenet_calibration)) % 10
    np.savez(tmp_path / "calib.npz", x=lenet_calibration)
    np.savez(tmp_path / "test.npz", x=lenet_calibration, y=labels)
    return tmp_path


# --- an output over an input, or over another output ---------------------------------------

OVERWRITES = {
    "-o over the model": (["compile", "lenet.onnx", "-o", "lenet.onnx"], "would write over the model"),
    "-o over the calibration": (["compile", "lenet.onnx", "--calibration", "calib.npz", "-o", "calib.npz"],
                                "would write over the calibration data"),
    "--nir over the model": (["compile", "lenet.onnx", "-o", "new.snn", "--nir", "lenet.onnx"],
                             "would write over the model"),
    "-o and --nir the same": (["compile", "lenet.onnx", "-o", "same", "--nir", "same"], "would write over the artifact"),
    "--html over the artifact": (["report", "lenet.snn", "--html", "lenet.snn"], "would write over the artifact"),
    "--html over the data": (["report", "lenet.snn", "--html", "test.npz", "--data", "test.npz"],
                             "would write over the data"),
}


@pytest.mark.parametrize("name", sorted(OVERWRITES))
def test_an_output_over_an_input_is_refused_and_nothing_changes(name, folder, capsys, monkeypatch):
    args, fragment = OVERWRITES[name]
    monkeypatch.chdir(folder)
    before = {path.name: digest(path) for path in folder.iterdir()}
    code = main(args)
    one_error_line(code, capsys.readouterr().err, fragment)
    assert {path.name: digest(path) for path in folder.iterdir()} == before


def test_a_hard_link_to_the_model_is_the_model(folder, capsys):
    os.link(folder / "lenet.onnx", folder / "link.onnx")
    before = digest(folder / "lenet.onnx")
    code = main(["compile", str(folder / "lenet.onnx"), "-o", str(folder / "link.onnx")])
    one_error_line(code, capsys.readouterr().err, "would write over the model")
    assert digest(folder / "lenet.onnx") == before


def test_a_folder_that_takes_no_new_file_is_refused_before_compiling(folder, capsys, monkeypatch):
    """Root ignores permission bits, so the refusal of the folder is simulated where the probe is made."""
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder / "out":
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    (folder / "out").mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(snnconv.compiled, "compile", lambda *a, **k: pytest.fail("compiled before the check"))
    code = main(["compile", str(folder / "lenet.onnx"), "-o", str(folder / "out" / "x.snn")])
    one_error_line(code, capsys.readouterr().err, "is not writable")
    assert list((folder / "out").iterdir()) == []


# --- special files: refused at once, never waited on ------------------------------------------


def within(seconds: float, call):
    """``call()``'s exception (or None), failing the test instead of hanging if it blocks."""
    outcome: list = []

    def target():
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_a_special_file_as_data_is_refused_without_blocking(special, tmp_path):
    path = tmp_path / "data.npz"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "folder":
        path.mkdir()
    else:
        path = Path(special)
    error = within(10, lambda: load_npz(path))
    assert isinstance(error, BadDataError) and "not a regular file" in str(error)


def test_a_fifo_as_calibration_exits_2_without_blocking(folder):
    os.mkfifo(folder / "calib.fifo")
    result = run_cli("compile", str(folder / "lenet.onnx"), "--calibration", str(folder / "calib.fifo"), "-o",
                     str(folder / "x.snn"))
    one_error_line(result.returncode, result.stderr, "named pipe (FIFO), not a regular file")
    assert not (folder / "x.snn").exists()


def test_an_output_that_is_a_fifo_is_refused(folder, capsys):
    os.mkfifo(folder / "out.snn")
    code = main(["compile", str(folder / "lenet.onnx"), "-o", str(folder / "out.snn")])
    one_error_line(code, capsys.readouterr().err, "is a named pipe (FIFO)")


# --- data files that declare more than they hold, or are of another format --------------------


def npz_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose x.npy header declares ``shape`` (float32) but holds 16 bytes of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    text = repr(header).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(16)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", member)
    return path


def test_an_array_declaring_ten_trillion_elements_is_refused_before_allocating(tmp_path):
    with pytest.raises(BadDataError, match="more than snnconv loads at once"):
        load_npz(npz_declaring(tmp_path / "huge.npz", (10_000_000, 1_000_000)))


def test_an_array_declaring_more_than_its_member_holds_is_refused(tmp_path):
    with pytest.raises(BadDataError, match="the file is damaged"):
        load_npz(npz_declaring(tmp_path / "short.npz", (1000, *LENET_SHAPE)))


def test_a_npy_file_as_data_says_what_to_save_instead(tmp_path, capsys, folder):
    np.save(tmp_path / "x.npy", np.zeros((4, *LENET_SHAPE), np.float32))
    code = main(["run", str(folder / "lenet.snn"), "--data", str(tmp_path / "x.npy")])
    one_error_line(code, capsys.readouterr().err, "np.savez(path, x=x, y=y)")


# --- labels that cannot be class indices: refused, not scored as 0% -------------------------


@pytest.mark.parametrize("labels", [[0, 1, 10, 2], [0, -1, 3, 2]], ids=["beyond the classes", "negative"])
def test_labels_outside_the_classes_are_refused_before_the_run(labels, folder, capsys):
    x = np.random.default_rng(0).random((4, *LENET_SHAPE)).astype(np.float32)
    np.savez(folder / "bad.npz", x=x, y=np.array(labels))
    code = main(["run", str(folder / "lenet.snn"), "--data", str(folder / "bad.npz")])
    one_error_line(code, capsys.readouterr().err, "the network has 10 outputs")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_by_the_chip_model(value, artifact_path, lenet_calibration):
    x = lenet_calibration[:2].copy()
    x[1, 0, 0, 0] = value
    with pytest.raises(BadDataError, match="1 values that are NaN or infinite"):
        snnconv.load(artifact_path).run(x, timesteps=2)


def test_labels_outside_the_classes_are_refused_by_the_api(artifact_path, lenet_calibration):
    net = snnconv.load(artifact_path)
    result = net.run(lenet_calibration[:4], timesteps=2)
    with pytest.raises(BadDataError, match="labels range over 0..12"):
        result.accuracy([0, 1, 12, 3])
    with pytest.raises(BadDataError, match="labels range over -1..5"):
        snnconv.evaluate(net.graph, (lenet_calibration[:4], np.array([-1, 5, 2, 3])), timesteps=[2])


# --- option values: one error class from the API, one line from the command line -------------

API_OPTIONS = {
    "timesteps 0": dict(timesteps=0),
    "timesteps 2^31": dict(timesteps=1 << 31),
    "timesteps 2.5": dict(timesteps=2.5),
    "timesteps True": dict(timesteps=True),
    "percentile 0": dict(percentile=0),
    "percentile 'high'": dict(percentile="high"),
    "chips -1": dict(chips=-1),
    "reset 'sometimes'": dict(reset="sometimes"),
    "encoding 'poisson'": dict(encoding="poisson"),
    "input_shape (0, 8)": dict(input_shape=(0, 8)),
}


@pytest.mark.parametrize("name", sorted(API_OPTIONS))
def test_a_bad_compile_option_raises_bad_option_error(name, lenet_path, lenet_calibration):
    with pytest.raises(BadOptionError) as info:
        snnconv.compile(str(lenet_path), "loihi", lenet_calibration, **API_OPTIONS[name])
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(timesteps=0), dict(timesteps=50_000), dict(batch_size=0),
                                    dict(batch_size="all"), dict(device="tpu")])
def test_a_bad_run_option_raises_bad_option_error(kwargs, artifact_path, lenet_calibration):
    with pytest.raises(BadOptionError):
        snnconv.load(artifact_path).run(lenet_calibration[:2], **kwargs)


@pytest.mark.parametrize("args", [["compile", "m.onnx", "-o", "x.snn", "--timesteps", "1000000000"],
                                  ["compile", "m.onnx", "-o", "x.snn", "--percentile", "101"],
                                  ["run", "x.snn"], ["frobnicate"], ["eval", "m.onnx", "--data", "d.npz",
                                                                     "--timesteps", "8,,16"]])
def test_an_option_error_is_one_line_with_exit_code_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: snnconv"), err


def test_the_cap_on_timesteps_is_stated():
    with pytest.raises(BadOptionError, match=f"{options.MAX_TIMESTEPS:,} steps"):
        options.timesteps(options.MAX_TIMESTEPS + 1)
    assert options.timesteps(options.MAX_TIMESTEPS) == options.MAX_TIMESTEPS


# --- output that scripts read: one line on failure, strict JSON on success ---------------------


def test_warnings_are_not_printed_before_an_error(folder, capsys, monkeypatch):
    def warn_then_fail(*args, **kwargs):
        np.float32(1e30) * np.float32(1e30)  # a numpy RuntimeWarning (overflow)
        raise BadDataError("the real problem")

    monkeypatch.setattr(snnconv.compiled.CompiledNetwork, "run", warn_then_fail)
    code = main(["run", str(folder / "lenet.snn"), "--data", str(folder / "test.npz")])
    one_error_line(code, capsys.readouterr().err, "the real problem")


def strict_json(text: str):
    """JSON as the standard defines it: ``Infinity`` and ``NaN`` are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_json_even_where_numbers_are_undefined(folder, capsys):
    # one percentile and one v_init: tuning has a single candidate, whose agreement is undefined (NaN)
    toml = snnconv.targets.get("ideal").to_toml()
    (folder / "ideal.toml").write_text(toml)
    code = main(["compile", str(folder / "lenet.onnx"), "--calibration", str(folder / "calib.npz"), "--percentile",
                 "99.9", "--timesteps", "4", "--target", str(folder / "ideal.toml"), "-o", str(folder / "n.snn"),
                 "--json"])
    assert code == 0
    strict_json(capsys.readouterr().out)
    assert main(["targets", "--json"]) == 0
    chips = strict_json(capsys.readouterr().out)
    assert any(value is None for chip in chips for value in chip["core"].values())  # unlimited: null


# --- memory: many samples at once stay within bounded batches ---------------------------------


def test_the_ann_evaluates_many_samples_in_bounded_batches_with_the_same_result(monkeypatch, lenet_path,
                                                                                  lenet_calibration):
    graph = snnconv.load_onnx(lenet_path)
    whole = ann.evaluate(graph, lenet_calibration)
    largest = max(int(np.prod(layer.shape)) for layer in graph)
    seen = []
    real = ann.activations
    monkeypatch.setattr(ann, "BATCH_ELEMENTS", 3 * largest)
    monkeypatch.setattr(ann, "activations", lambda g, x, names=None: seen.append(len(x)) or real(g, x, names))
    # float32 sums in another blocking order: equal to a few ulps
    np.testing.assert_allclose(ann.evaluate(graph, lenet_calibration), whole, rtol=1e-5, atol=1e-6)
    assert max(seen) == 3 and sum(seen) == len(lenet_calibration)


def test_an_atomic_write_that_fails_leaves_the_previous_file(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("previous")

    def fail(temporary: Path):
        temporary.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files.atomic_write(path, fail)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_check_outputs_refuses_a_missing_folder_and_a_folder_as_output(tmp_path):
    with pytest.raises(BadPathError, match="does not exist"):
        files.check_outputs({"the artifact": tmp_path / "nope" / "x.snn"})
    with pytest.raises(BadPathError, match="is a folder"):
        files.check_outputs({"the artifact": tmp_path})
    with pytest.raises(SnnconvError, match="no such file"):
        files.check_input(tmp_path / "missing.onnx", "an .onnx model", BadPathError)


# --- small files, long axes: refused before a matrix of their size is built --------------------


def test_a_layer_longer_than_the_mapped_axes_is_refused_before_partitioning(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from snnconv.errors import DoesNotFitError
    from snnconv.geometry import MAX_AXIS

    channels = 4 * MAX_AXIS  # a 1x1 convolution from one channel: 64 KB of weights, 4 GB of per-axis matrix
    weight = numpy_helper.from_array(np.ones((channels, 1, 1, 1), np.float32), "W")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
                              "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 2, 2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(DoesNotFitError, match=f"more than the {MAX_AXIS:,} snnconv maps"):
        snnconv.compile(model, "loihi", np.random.default_rng(0).random((2, 1, 2, 2), np.float32), timesteps=4,
                        percentile=99.9)
