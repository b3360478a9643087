"""The .snn artifact: round trip, byte-identical output, atomic writes, and clear refusals of bad files."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tempfile
import zipfile
from importlib import resources

import mapping_checker
import numpy as np
import pytest

import snnconv
from snnconv import artifact, core_table, geometry, targets
from snnconv.compiled import CompiledNetwork
from snnconv.errors import BadArtifactError, DoesNotFitError
from snnconv.ir import Dense
from snnconv.pipeline import convert, to_cores
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST_X = np.load(MODELS.joinpath("mnist_test.npz"))["x"][:64]


def compiled(model: str = "resnet", target: str = "loihi") -> CompiledNetwork:
    chip = targets.get(target)
    conversion = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X, target=chip)
    return CompiledNetwork(to_cores(conversion, chip, chips=64).graph, chip, {"timesteps": 16})


@pytest.fixture(scope="module")
def network() -> CompiledNetwork:
    return compiled()


@pytest.mark.parametrize("target", targets.names())
def test_save_and_load_give_the_same_network_and_the_same_run(target, tmp_path):
    net = compiled("cnn", target)
    path = net.save(tmp_path / "net.snn")
    back = snnconv.load(path)
    assert back.target == net.target
    assert [layer.name for layer in back.graph] == [layer.name for layer in net.graph]
    assert back.graph.fact("mapping").cores == net.graph.fact("mapping").cores
    first, second = simulate(net.graph, TEST_X, 16), simulate(back.graph, TEST_X, 16)
    np.testing.assert_array_equal(first.outputs[16], second.outputs[16])
    artifact.check_precision(back.graph, back.target, str(path))  # what the compiler writes fits its target


def test_compiling_twice_gives_byte_identical_files(tmp_path):
    one = compiled("resnet").save(tmp_path / "one.snn").read_bytes()
    two = compiled("resnet").save(tmp_path / "two.snn").read_bytes()
    assert one == two


@pytest.mark.parametrize("module, budget, what", [
    (artifact, "MAX_MANIFEST_BYTES", "manifest unpacks to {:,} bytes"),
    (artifact, "MAX_UNPACKED_BYTES", "members unpack to {:,} bytes"),
    (artifact, "MAX_PROGRAM_BYTES", "arrays take {:,} bytes in the program"),
    (core_table, "MAX_OBJECT_BYTES", "core table takes {:,} bytes as objects")])
def test_a_network_whose_artifact_the_reader_would_refuse_is_refused_when_written(network, tmp_path, monkeypatch,
                                                                                   module, budget, what):
    """DenseNet-121 on loihi (266,702 cores) compiled, then its own artifact was refused on reading back as
    "damaged or not from snnconv"; a write over the reader's budgets now says what is too large, and writes nothing."""
    buffer = io.BytesIO()
    artifact.encode(network.graph, network._manifest_extra(), buffer)
    with zipfile.ZipFile(buffer) as archive:
        members = {info.filename: info.file_size for info in archive.infolist()}
        arrays = {name: np.load(io.BytesIO(archive.read(name))) for name in members if name.endswith(".npy")}
    needed = {"MAX_MANIFEST_BYTES": members["manifest.json"], "MAX_UNPACKED_BYTES": sum(members.values()),
              "MAX_PROGRAM_BYTES": sum(a.size * max(a.itemsize, 8) for a in arrays.values()),
              "MAX_OBJECT_BYTES": core_table.object_bytes({key: len(arrays[f"core_table/{key}.npy"])
                                                           for key in core_table.COLUMNS})}[budget]
    monkeypatch.setattr(module, budget, needed - 1)
    cores = len(network.graph.fact("mapping").cores)
    with pytest.raises(DoesNotFitError, match=rf"\({cores:,} cores\) needs an artifact whose "
                                              rf"{what.format(needed)}, more than the {needed - 1:,} an artifact"):
        network.save(tmp_path / "net.snn")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(network, tmp_path, monkeypatch):
    path = network.save(tmp_path / "net.snn")
    good = path.read_bytes()
    calls = []

    def failing(archive, name, data):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full")
        archive.writestr(name, data)

    monkeypatch.setattr(artifact, "_add", failing)
    with pytest.raises(OSError, match="disk full"):
        network.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.snn"]


def _rewrite(source, target, change):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change(info.filename, old.read(info.filename)))


@pytest.mark.parametrize("change, message", [
    (lambda name, data: data[:-1] + bytes([data[-1] ^ 1]) if name.endswith(".npy") else data, "checksum mismatch"),
    (lambda name, data: json.dumps({**json.loads(data), "version": 99}).encode() if name == "manifest.json" else data,
     "newer than this snnconv reads"),
    (lambda name, data: json.dumps({**json.loads(data), "format": "other"}).encode() if name == "manifest.json"
     else data, "not a snnconv artifact"),
    (lambda name, data: b"{not json" if name == "manifest.json" else data, "manifest unreadable"),
    (lambda name, data: json.dumps({k: v for k, v in json.loads(data).items() if k != "program"}).encode()
     if name == "manifest.json" else data, "'program' missing"),
], ids=["tampered array", "future version", "other format", "broken manifest", "no program"])
def test_damaged_or_foreign_artifacts_are_refused(network, tmp_path, change, message):
    good = network.save(tmp_path / "good.snn")
    bad = tmp_path / "bad.snn"
    _rewrite(good, bad, change)
    with pytest.raises(BadArtifactError, match=message):
        snnconv.load(bad)


@pytest.mark.parametrize("content, message", [(b"", "unreadable zip"), (b"PK\x03\x04garbage", "unreadable zip"),
                                              (None, "no such file")])
def test_truncated_empty_or_missing_files_are_refused(network, tmp_path, content, message):
    path = tmp_path / "x.snn"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadArtifactError, match=message):
        snnconv.load(path)


def test_a_truncated_artifact_is_refused(network, tmp_path):
    data = network.save(tmp_path / "good.snn").read_bytes()
    (tmp_path / "cut.snn").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadArtifactError):
        snnconv.load(tmp_path / "cut.snn")


def test_arrays_are_never_unpickled(network, tmp_path):
    good = network.save(tmp_path / "good.snn")
    pickled = tmp_path / "pickled.snn"
    with zipfile.ZipFile(good) as old:
        manifest = json.loads(old.read("manifest.json"))
        name = sorted(manifest["checksums"])[0]
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        manifest["checksums"][name] = hashlib.sha256(buffer.getvalue()).hexdigest()
        with zipfile.ZipFile(pickled, "w") as new:
            for info in old.infolist():
                data = json.dumps(manifest).encode() if info.filename == "manifest.json" else \
                    buffer.getvalue() if info.filename == name else old.read(info.filename)
                new.writestr(info, data)
    with pytest.raises(BadArtifactError, match="not a plain .npy array"):
        snnconv.load(pickled)


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_every_core_routes_to_exactly_the_cores_its_neurons_reach(model):
    """The artifact's routes against the one-hot connectivity of the independent checker."""
    net = snnconv.load(compiled(model, "loihi").save(tempfile.mkdtemp() + "/net.snn"))
    expected = mapping_checker.routes(net.graph)
    for core in net.graph.fact("mapping").cores:
        assert set(core.routes) == expected.get(core.index, set()), f"core {core.index}"


def _with_first_row(graph, row: list[float]):
    """``graph`` with the first output channel of its chip-computed dense layer set to ``row`` (zeros beyond)."""
    host = geometry.host_computed(graph)
    dense = next(layer for layer in graph if isinstance(layer, Dense) and layer.name not in host)
    weights = np.array(dense.weight)
    weights[0] = 0
    weights[0, :len(row)] = row
    return graph.rebuilt([dataclasses.replace(dense, weight=weights) if layer is dense else layer
                          for layer in graph.layers]), dense.name


# loihi: 8-bit mantissas (|m| <= 127), one exponent e in [0, 14] per output channel, the
# smallest that reaches the channel's largest weight; every weight a multiple of 2^e.
LOIHI_ROWS = {
    "largest": ([127 * 2**14, -127 * 2**14], None),
    "beyond the largest": ([128 * 2**14], "weight[0, 0] = 2097152"),
    "e = 0": ([127, -1], None),
    "e = 1 makes 1 too fine": ([128, 1], "weight[0, 1] = 1"),
    "e = 14 makes 2^13 too fine": ([127 * 2**14, 2**13], "weight[0, 1] = 8192"),
    "a fraction": ([0.5], "weight[0, 0] = 0.5"),
}


@pytest.mark.parametrize("row, refused", LOIHI_ROWS.values(), ids=LOIHI_ROWS.keys())
def test_weights_are_checked_against_the_mantissa_and_the_shared_exponent(network, row, refused):
    graph, name = _with_first_row(network.graph, row)
    if refused is None:
        artifact.check_precision(graph, network.target, "net.snn")
        return
    with pytest.raises(BadArtifactError) as error:
        artifact.check_precision(graph, network.target, "net.snn")
    assert f"net.snn: layer {name!r}: {refused} does not fit loihi's 8-bit weights" in str(error.value)


def test_a_float_target_takes_any_weights(network):
    graph, _ = _with_first_row(network.graph, [0.123, 1e30])
    artifact.check_precision(graph, targets.get("ideal"), "net.snn")


def _with_burn_in(net: CompiledNetwork, burn_in: int) -> CompiledNetwork:
    graph = net.graph.rebuilt(dataclasses.replace(layer, burn_in=burn_in) if layer is net.graph.output else layer
                              for layer in net.graph)
    return CompiledNetwork(graph, net.target, dict(net.options))


def test_a_readout_burn_in_is_saved_and_read_back_and_out_of_range_ones_are_refused(network, tmp_path):
    path = _with_burn_in(network, 3).save(tmp_path / "net.snn")
    back = snnconv.load(path)
    assert back.graph.output.burn_in == 3
    report = back.report
    assert report.to_dict()["burn_in"] == 3 and "readout: the first 3 steps left out" in report.render()
    np.testing.assert_array_equal(simulate(back.graph, TEST_X, 16).outputs[16],
                                  simulate(_with_burn_in(network, 3).graph, TEST_X, 16).outputs[16])

    def set_burn_in(value):
        def change(name, data):
            if name != "manifest.json":
                return data
            manifest = json.loads(data)
            manifest["program"][-1]["burn_in"] = value
            return json.dumps(manifest).encode()
        return change

    for value in (0, artifact.MAX_TIMESTEPS + 1, 2.5):
        bad = tmp_path / "bad.snn"
        _rewrite(path, bad, set_burn_in(value))
        with pytest.raises(BadArtifactError, match="burn_in"):
            snnconv.load(bad)
