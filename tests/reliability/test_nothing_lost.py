"""Nothing lost: a save that fails, is interrupted or is killed leaves either the previous
artifact or none, never a partial one; a compile that fails writes nothing; and a
calibration set given as a stream of batches is consumed one batch at a time, in memory
that does not grow with its length, with the same result as the whole array.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc
import weakref
from importlib import resources

import numpy as np
import pytest
from reliability.inputs import run_cli

import snnconv
from snnconv import artifact
from snnconv.errors import BadPathError
from snnconv.passes.normalize import Normalize
from snnconv.pipeline import convert

MNIST_MLP = str(resources.files("snnconv.models").joinpath("mnist_mlp.onnx"))


def leftovers(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- atomic saves ------------------------------------------------------------------------


@pytest.fixture
def network(artifact_path):
    return snnconv.load(artifact_path)


def fail_on_third_member(monkeypatch, error: BaseException) -> None:
    """Make ``artifact.write`` fail after two members are in the temporary file."""
    calls = []
    add = artifact._add

    def failing(archive, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise error
        add(archive, name, data)

    monkeypatch.setattr(artifact, "_add", failing)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "interrupted"])
def test_a_failed_save_keeps_the_previous_artifact_and_leaves_no_temporary(network, tmp_path, monkeypatch, error):
    path = network.save(tmp_path / "net.snn")
    good = path.read_bytes()
    fail_on_third_member(monkeypatch, error)
    with pytest.raises(type(error)):
        network.save(path)
    assert path.read_bytes() == good
    assert leftovers(tmp_path) == ["net.snn"]
    assert snnconv.load(path).graph.name == network.graph.name


def test_a_failed_first_save_creates_no_file(network, tmp_path, monkeypatch):
    fail_on_third_member(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        network.save(tmp_path / "net.snn")
    assert leftovers(tmp_path) == []


def test_a_failing_rename_keeps_the_previous_artifact(network, tmp_path, monkeypatch):
    path = network.save(tmp_path / "net.snn")
    good = path.read_bytes()

    def refuse(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        network.save(path)
    assert path.read_bytes() == good
    assert leftovers(tmp_path) == ["net.snn"]


def test_saving_into_a_missing_folder_is_refused(network, tmp_path):
    with pytest.raises(BadPathError, match="does not exist"):
        network.save(tmp_path / "no" / "such" / "net.snn")
    assert leftovers(tmp_path) == []


def test_saving_over_a_folder_is_refused(network, tmp_path):
    (tmp_path / "net.snn").mkdir()
    with pytest.raises(BadPathError, match=r"is a folder; give a file name inside it for the artifact, e\.g\. "
                                           r".*net\.snn/net\.snn$"):
        network.save(tmp_path / "net.snn")
    assert leftovers(tmp_path) == ["net.snn"] and not any((tmp_path / "net.snn").iterdir())


def test_saving_to_a_missing_folders_name_is_refused_not_written_as_a_file(network, tmp_path):
    """``-o out/`` names a folder: a file called ``out`` is not what the user asked for."""
    with pytest.raises(BadPathError, match=r"out/: names a folder that does not exist; create it and give a file "
                                           r"name inside it for the artifact, e\.g\. .*out/net\.snn$"):
        network.save(f"{tmp_path / 'out'}/")
    assert leftovers(tmp_path) == []


KILLED_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    import snnconv
    from snnconv import artifact

    add, written = artifact._add, []
    def add_then_die(archive, name, data):
        add(archive, name, data)
        written.append(name)
        if len(written) == 2:
            archive.fp.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    artifact._add = add_then_die
    snnconv.load(sys.argv[1]).save(sys.argv[2])
""")


def test_a_process_killed_mid_save_leaves_the_previous_artifact(artifact_path, tmp_path):
    """SIGKILL cannot be cleaned up after: a hidden temporary may stay, the artifact itself is whole."""
    path = tmp_path / "net.snn"
    path.write_bytes(b"the previous artifact")
    result = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(artifact_path), str(path)],
                            capture_output=True, timeout=300, check=False, cwd=tmp_path)  # the installed package
    assert result.returncode == -9, result.stderr
    assert path.read_bytes() == b"the previous artifact"
    assert all(name == "net.snn" or name.startswith(".net.snn.") and name.endswith(".tmp")
               for name in leftovers(tmp_path))


@pytest.mark.parametrize("bad", ["model", "calibration"])
def test_a_failed_compile_on_the_command_line_writes_nothing(bad, lenet_path, artifact_bytes, tmp_path):
    """A bad model creates no OUT; bad calibration data leaves an existing OUT as it was."""
    out = tmp_path / "out.snn"
    model, calibration = str(lenet_path), tmp_path / "calibration.npz"
    np.savez(calibration, x=np.zeros((4, 1, 8, 8), np.float32))
    if bad == "model":
        (tmp_path / "model.onnx").write_bytes(b"not a model")
        model = str(tmp_path / "model.onnx")
    else:
        np.savez(calibration, x=np.full((4, 1, 8, 8), np.nan, np.float32))
        out.write_bytes(artifact_bytes)
    before = leftovers(tmp_path)
    result = run_cli("compile", model, "--calibration", str(calibration), "-o", str(out))
    assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
    assert leftovers(tmp_path) == before
    if bad == "calibration":
        assert out.read_bytes() == artifact_bytes


# --- streaming calibration ---------------------------------------------------------------

BATCH = 32


@pytest.fixture(scope="module")
def mlp_graph():
    return snnconv.load_onnx(MNIST_MLP)


@pytest.fixture(scope="module")
def samples():
    calibration = np.load(resources.files("snnconv.models").joinpath("mnist_calib.npz"))["x"]
    return np.concatenate([calibration] * 13)[: 200 * BATCH]  # 6,400 digits: 200 batches


class Stream:
    """A one-shot stream of fresh batches that records how many were alive at once.

    A batch is alive while anything still references it: the most seen at once tells
    whether the consumer kept (materialized) the batches or let them go once used.
    """

    def __init__(self, samples: np.ndarray, count: int):
        self.samples, self.count = samples, count
        self.alive: list[weakref.ref] = []
        self.most_alive = 0

    def __iter__(self):
        for index in range(self.count):
            batch = self.samples[index * BATCH:(index + 1) * BATCH].copy()
            self.alive = [ref for ref in self.alive if ref() is not None] + [weakref.ref(batch)]
            self.most_alive = max(self.most_alive, len(self.alive))
            yield batch
            del batch


def normalized(graph, data) -> snnconv.Graph:
    return Normalize(data, percentile=99.9, per_channel=True).run(graph).graph


def traced(graph, stream: Stream) -> tuple[snnconv.Graph, int]:
    """The graph normalized with ``stream`` and the peak of memory traced meanwhile (bytes)."""
    tracemalloc.start()
    try:
        return normalized(graph, stream), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def long_stream(mlp_graph, samples):
    """200 batches (6,400 digits, 20 MB) normalized: the stream, the graph and the memory peak.

    A first run outside the trace fills what is cached once per graph (its weights as tensors).
    """
    normalized(mlp_graph, samples[:BATCH])
    stream = Stream(samples, 200)
    return (stream, *traced(mlp_graph, stream))


def test_a_stream_of_200_batches_normalizes_like_the_whole_array(mlp_graph, samples, long_stream):
    stream, graph, _ = long_stream
    for mine, theirs in zip(graph, normalized(mlp_graph, samples)):
        for field, array in theirs.arrays().items():
            np.testing.assert_array_equal(mine.arrays()[field], array)
    assert stream.most_alive <= 256 // BATCH + 2  # the batches joined into one of 256 samples, and the next


def test_calibration_memory_does_not_grow_with_the_number_of_batches(mlp_graph, samples, long_stream):
    """200 batches peak where 20 (640 digits) do: past the first batches only the fixed-size histograms stay."""
    _, short = traced(mlp_graph, Stream(samples, 20))
    _, _, long = long_stream
    assert long <= short * 1.02 + 100_000


def test_the_conversion_of_a_stream_equals_that_of_the_array(mlp_graph, samples):
    stream = Stream(samples[: 20 * BATCH], 20)
    streamed = convert(mlp_graph, stream, percentile=99.9).graph
    whole = convert(mlp_graph, samples[: 20 * BATCH], percentile=99.9).graph
    assert [layer.name for layer in streamed] == [layer.name for layer in whole]
    for mine, theirs in zip(streamed, whole):
        for field, array in theirs.arrays().items():
            np.testing.assert_array_equal(mine.arrays()[field], array)


def test_compile_takes_a_one_shot_stream_of_batches(samples):
    net = snnconv.compile(MNIST_MLP, "loihi", Stream(samples[: 8 * BATCH], 8).__iter__(), timesteps=8)
    assert net.graph.fact("mapping") is not None
