"""Hostile files: target descriptions and ``.snn`` artifacts built to hang, exhaust or mislead the reader.

The promise (issue 14): whatever such a file holds, reading it raises the project's error
for its kind (``BadTargetError``, ``BadArtifactError``) with one line naming the file,
what is wrong and what to do, within 60 s and 2 GB, and never another exception. Files
that could block (a FIFO) or never end (``/dev/zero``), and those that are large when
unpacked, are read in a child process: a regression then fails by the child's timeout or
its memory cap, not by hanging the suite or exhausting the machine; the child reports its
peak memory. Every artifact here is the good one (``lenet`` on loihi) with one thing
changed and, where an array changed, its checksum fixed: only the check under test stops it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

import snnconv
from snnconv import artifact, core_table, targets
from snnconv.errors import BadArtifactError, BadTargetError
from snnconv.mapping import Core, Resources, Tile
from snnconv.targets.target import MAX_FILE_BYTES as MAX_TARGET_BYTES

SECONDS = 60
PEAK_BYTES = 2 << 30

# The child reads one file with snnconv.load or targets.get and prints what happened. Its
# address space is capped, so a reader that slurps /dev/zero fails fast with MemoryError.
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
import snnconv
from snnconv import targets
read = {"artifact": snnconv.load, "target": targets.get}[sys.argv[1]]
try:
    read(sys.argv[2])
    outcome = {"error": None, "message": ""}
except BaseException as exc:
    outcome = {"error": type(exc).__name__, "message": str(exc)}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at fork, so a child of a
# large pytest process would report the parent's size; VmHWM belongs to this program's memory
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
outcome["peak_bytes"] = int(hwm[0]) * 1024
print(json.dumps(outcome))
"""


def read_in_a_process(kind: str, path: Path) -> dict:
    """Read ``path`` as an ``artifact`` or a ``target`` in a child process; its error, message and peak memory."""
    result = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True,
                            timeout=SECONDS, cwd=tempfile.gettempdir(), check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refused(outcome: dict, error: type, fragment: str) -> None:
    assert outcome["error"] == error.__name__, outcome
    assert fragment in outcome["message"] and "\n" not in outcome["message"], outcome["message"]
    assert outcome["peak_bytes"] < PEAK_BYTES, f"peak memory {outcome['peak_bytes']:,} bytes"


def message(error: type, read, *args) -> str:
    """The message of the ``error`` that ``read(*args)`` must raise, checked to be one line."""
    with pytest.raises(error) as info:
        read(*args)
    assert type(info.value) is error and "\n" not in str(info.value), repr(info.value)
    return str(info.value)


# --- files that are not files ------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("kind, name, error", [("artifact", "net.snn", BadArtifactError),
                                               ("target", "chip.toml", BadTargetError)])
def test_a_fifo_is_refused_without_waiting_for_a_writer(kind, name, error, tmp_path):
    """No writer ever comes: ``open`` on it would block for good."""
    os.mkfifo(tmp_path / name)
    assert_refused(read_in_a_process(kind, tmp_path / name), error, "named pipe (FIFO), not a regular file")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
@pytest.mark.parametrize("kind, error", [("artifact", BadArtifactError), ("target", BadTargetError)])
def test_dev_zero_is_refused_without_reading_it(kind, error):
    assert_refused(read_in_a_process(kind, Path("/dev/zero")), error, "/dev/zero: is a device, not a regular file")


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def test_an_artifact_over_the_file_budget_is_refused_by_its_size(tmp_path):
    path = sparse(tmp_path / "huge.snn", artifact.MAX_FILE_BYTES + 1)
    assert "1,073,741,825 bytes, more than a .snn file" in message(BadArtifactError, snnconv.load, path)


def test_a_target_file_over_the_budget_is_refused_by_its_size(tmp_path):
    path = sparse(tmp_path / "huge.toml", MAX_TARGET_BYTES + 1)
    assert "1,048,577 bytes, more than a target description" in message(BadTargetError, targets.get, path)


# --- target descriptions ----------------------------------------------------------------


def loihi_toml(path: Path, key: str | None = None, value: str | None = None) -> Path:
    """loihi's description, with ``key = value`` in place of that line where given."""
    lines = targets.get("loihi").to_toml().splitlines()
    path.write_text("\n".join(f"{key} = {value}" if key and line.startswith(f"{key} =") else line
                              for line in lines) + "\n")
    return path


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{ a = " * 5000 + "1" + " }" * 5000],
                         ids=["arrays", "inline tables"])
def test_toml_nested_beyond_the_parser_is_refused(nested, tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(f"name = {nested}\n")
    assert f"{path}: not valid TOML (nested too deeply)" in message(BadTargetError, targets.get, path)


def test_an_integer_of_thousands_of_digits_is_refused(tmp_path):
    path = loihi_toml(tmp_path / "digits.toml", "cores", "9" * 5000)
    assert "not valid TOML (Exceeds the limit" in message(BadTargetError, targets.get, path)


@pytest.mark.parametrize("key, value, fragment", [
    ("row_overhead_bits", "1e200",
     "'core.row_overhead_bits' is 1e+200, above the maximum; allowed: an integer from 0 up to 65,536"),
    ("neurons", "9223372036854775807", "'core.neurons' is 9223372036854775807, above the maximum"),
    ("synop_pj", "inf", "'costs.synop_pj' is inf, not finite"),
    ("chips", "true", "'chip.chips' is True, not a number"),
    ("state_bits", "-24", "'precision.state_bits' is -24, negative"),
    ("word_bits", "0", "'core.word_bits' is 0, below the minimum; allowed: a positive integer up to 65,536"),
    ("static_mw", "nan", "'costs.static_mw' is NaN, not a number"),
])
def test_a_number_out_of_range_names_the_field_the_value_and_the_range(key, value, fragment, tmp_path):
    path = loihi_toml(tmp_path / "chip.toml", key, value)
    assert f"{path}: field {fragment}" in message(BadTargetError, targets.get, path)


# --- artifacts: budgets ---------------------------------------------------------------------


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def resealed(members: dict[str, bytes], manifest: dict, arrays: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """``members`` with ``arrays`` added or replaced, listed in ``manifest`` with their true checksums."""
    arrays = arrays or {}
    manifest["checksums"].update({name: hashlib.sha256(blob).hexdigest() for name, blob in arrays.items()})
    return {**members, **arrays, "manifest.json": json.dumps(manifest).encode()}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_manifest_over_its_budget_is_refused_before_it_is_parsed(artifact_bytes, tmp_path):
    """A manifest of 64 MiB and one byte (padded with blanks: it compresses to a few hundred kB)."""
    members = members_of(artifact_bytes)
    text = members["manifest.json"]
    members["manifest.json"] = text + b" " * (artifact.MAX_MANIFEST_BYTES + 1 - len(text))
    path = zipped(tmp_path / "fat.snn", members)
    outcome = read_in_a_process("artifact", path)
    assert_refused(outcome, BadArtifactError, "manifest.json unpacks to 67,108,865 bytes, more than a manifest")


def test_members_over_the_total_budget_are_refused_before_any_is_read(artifact_bytes, tmp_path):
    """Nine members of 64 MiB of zeros (64 kB each, compressed): 576 MiB in all."""
    members = members_of(artifact_bytes)
    zeros = bytes(64 << 20)
    path = zipped(tmp_path / "many.snn", {**members, **{f"arrays/pad/{i}.npy": zeros for i in range(9)}})
    outcome = read_in_a_process("artifact", path)
    assert_refused(outcome, BadArtifactError, "more than an artifact holds (536,870,912;")


def test_large_arrays_that_no_layer_uses_are_refused_unread(artifact_bytes, tmp_path):
    """Four arrays of 32 MiB, listed with true checksums, that no layer refers to."""
    members = members_of(artifact_bytes)
    junk = npy(np.zeros(4 << 20, np.int64))
    manifest = json.loads(members["manifest.json"])
    path = zipped(tmp_path / "junk.snn", resealed(members, manifest, {f"arrays/junk/{i}.npy": junk for i in range(4)}))
    outcome = read_in_a_process("artifact", path)
    assert_refused(outcome, BadArtifactError, "the manifest lists 4 array(s) that no layer or table uses")


def test_arrays_that_grow_beyond_the_budget_in_the_program_are_refused(artifact_bytes, tmp_path):
    """A layer's weights as 200 Mi int8 zeros: 200 MiB unpacked, 1.56 GiB as the program's float64."""
    members = members_of(artifact_bytes)
    weights = npy(np.zeros(200 << 20, np.int8))
    path = zipped(tmp_path / "int8.snn", resealed(members, json.loads(members["manifest.json"]),
                                                   {"arrays/Gemm_5/weight.npy": weights}))
    outcome = read_in_a_process("artifact", path)
    assert_refused(outcome, BadArtifactError, "the arrays take more than 1,610,612,736 bytes in the program")


def test_compression_other_than_deflate_is_refused(artifact_bytes, tmp_path):
    path = tmp_path / "lzma.snn"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_LZMA) as archive:
        for name, data in members_of(artifact_bytes).items():
            archive.writestr(name, data)
    assert "uses compression method 14; snnconv writes deflate only" in message(BadArtifactError, snnconv.load, path)


# --- artifacts: what the manifest says --------------------------------------------------


def changed(artifact_bytes: bytes, path: Path, change) -> Path:
    """The good artifact with ``change(manifest)`` applied. The core table is in the manifest's mapping as ``cores``
    (JSON as ``dataclasses.asdict`` makes it) while ``change`` runs, then written back as arrays."""
    members = members_of(artifact_bytes)
    manifest = json.loads(members["manifest.json"])
    good = artifact.decode(io.BytesIO(artifact_bytes), "good").mapping.cores
    manifest["mapping"]["cores"] = json.loads(json.dumps([dataclasses.asdict(core) for core in good]))
    change(manifest)
    names, table = core_table.encode(tuple(map(core_from_json, manifest["mapping"].pop("cores"))))
    manifest["mapping"]["names"] = names
    arrays = {f"core_table/{key}.npy": npy(rows) for key, rows in table.items()}
    return zipped(path, resealed(members, manifest, arrays))


def core_from_json(core: dict) -> Core:
    tiles = tuple(Tile(tile["population"], tuple(map(tuple, tile["box"])), Resources(**tile["resources"]),
                       tile["group"], tile["groups"], tuple(map(tuple, tile["inputs"]))) for tile in core["tiles"])
    return Core(core["index"], tiles, core["chip"], tuple(core["position"]), tuple(core["routes"]))


def no_cores(manifest: dict) -> None:
    manifest["mapping"]["cores"] = []


def output_on_no_core(manifest: dict) -> None:
    for core in manifest["mapping"]["cores"]:
        core["tiles"] = [tile for tile in core["tiles"] if tile["population"] != "output"]


def a_tile_twice(manifest: dict) -> None:
    tiles = manifest["mapping"]["cores"][0]["tiles"]
    tiles.append(dict(tiles[0]))


def half_a_tile(manifest: dict) -> None:
    tile = manifest["mapping"]["cores"][0]["tiles"][0]
    tile["box"][0] = [0, 2]


@pytest.mark.parametrize("change, fragment", [
    (no_cores, "population 'Relu_2' has no tile on any core"),
    (output_on_no_core, "population 'output' has no tile on any core"),
    (a_tile_twice, "the tiles of 'Relu_2' (input group 0) hold 512 neurons, not its 256 once each"),
    (half_a_tile, "the tiles of 'Relu_2' (input group 0) hold 128 neurons, not its 256 once each"),
], ids=["empty core table", "a population on no core", "a tile twice", "neurons on no core"])
def test_a_core_table_that_does_not_hold_every_neuron_once_is_refused(change, fragment, artifact_bytes, tmp_path):
    path = changed(artifact_bytes, tmp_path / "cores.snn", change)
    text = message(BadArtifactError, snnconv.load, path)
    assert f"{path}: core table: {fragment}" in text and "compile the model again" in text


def with_table(artifact_bytes: bytes, path: Path, **changes) -> Path:
    """The good artifact with core-table arrays replaced by ``changes[key](array)``, their checksums fixed."""
    members = members_of(artifact_bytes)
    arrays = {f"core_table/{key}.npy": npy(make(np.load(io.BytesIO(members[f"core_table/{key}.npy"]))))
              for key, make in changes.items()}
    return zipped(path, resealed(members, json.loads(members["manifest.json"]), arrays))


def set_row(row: int, column: int, value: int):
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[row, column] = value
        return array
    return change


TOO_MANY_TILES = core_table.MAX_OBJECT_BYTES // core_table.ROW_BYTES["tiles"]  # with the one core: over the budget
TABLE_CASES = {
    "tiles as floats": ({"tiles": lambda a: a.astype(np.float64)},
                        "tiles is a float64 array of shape (3, 14), not integer rows of 14 (population, channel_start"),
    "a column missing": ({"tiles": lambda a: a[:, :13]}, "tiles is a int32 array of shape (3, 13), not integer rows"),
    "a negative size": ({"tiles": set_row(0, 7, -1)}, "tiles row 0: neurons = -1 is not an integer in [0, 2147483648)"),
    "a chip below -1": ({"cores": set_row(0, 0, -2)}, "cores row 0: chip = -2 is not an integer in [-1,"),
    "counts that do not add up": ({"cores": set_row(0, 3, 4)}, "the cores claim 4 tiles but 3 are listed"),
    "a population beyond the names": ({"tiles": set_row(1, 0, 9)}, "core 0, tile 1: population 9 is not one of the 3"),
    "a box beyond its population": ({"tiles": set_row(2, 2, 11)}, "core 0, tile 2: box [[0, 11], [0, 1], [0, 1]] is "
                                                                  "not inside 'output' of (10, 1, 1)"),
    "an input group beyond its groups": ({"tiles": set_row(0, 11, 1)},
                                         "core 0, tile 0: group 1 of 1 with 0 input ranges does not fit"),
    "a source beyond the names": ({"tiles": set_row(1, 13, 1), "inputs": lambda a: np.array([[7, 0, 4]], a.dtype)},
                                  "core 0, tile 1: input [7, 0, 4] is not [a name of the 3, first channel, end"),
    "a channel range backwards": ({"tiles": set_row(2, 13, 1), "inputs": lambda a: np.array([[1, 4, 2]], a.dtype)},
                                  "core 0, tile 2: input [1, 4, 2] is not [a name of the 3"),
    "a route to a core that is not there": ({"cores": set_row(0, 4, 1), "routes": lambda a: np.array([[5]], a.dtype)},
                                            "core 0: routes name core 5, beyond the 1 there are"),
    "more tiles than a reader builds": ({"tiles": lambda a: np.zeros((TOO_MANY_TILES, 14), np.int8)},
                                        f"1 cores, {TOO_MANY_TILES:,} tiles, 0 inputs, 0 routes take about "
                                        f"{850 * TOO_MANY_TILES + 350:,} bytes as objects, more than a core table "
                                        "holds (2,147,483,648)"),
}


@pytest.mark.parametrize("changes, fragment", TABLE_CASES.values(), ids=TABLE_CASES.keys())
def test_a_core_table_with_arrays_that_describe_no_cores_is_refused_naming_the_row(changes, fragment,
                                                                                  artifact_bytes, tmp_path):
    path = with_table(artifact_bytes, tmp_path / "table.snn", **changes)
    text = message(BadArtifactError, snnconv.load, path)
    assert f"{path}: core table: {fragment}" in text


def name_not_a_string(manifest: dict) -> None:
    manifest["mapping"]["names"][1] = 3


def routes_as_the_tiles(manifest: dict) -> None:
    manifest["mapping"]["table"]["tiles"] = {"array": "core_table/routes.npy"}


def a_list_as_the_tiles(manifest: dict) -> None:
    manifest["mapping"]["table"]["tiles"] = [0, 1]
    del manifest["checksums"]["core_table/tiles.npy"]


def no_routes(manifest: dict) -> None:
    del manifest["mapping"]["table"]["routes"], manifest["checksums"]["core_table/routes.npy"]


@pytest.mark.parametrize("change, fragment", [
    (name_not_a_string, "core table: names: ['Relu_2', 3, 'output'] is not a list of names"),
    (routes_as_the_tiles, "the manifest lists 1 array(s) that no layer or table uses (['core_table/tiles.npy'])"),
    (a_list_as_the_tiles, "core table: table 'tiles' is [0, 1], not an array of the file"),
    (no_routes, "core table: table: expected an object with cores, tiles, inputs, routes"),
], ids=["a name not a string", "another array as the tiles", "a list as the tiles", "an array missing"])
def test_a_core_table_whose_manifest_entry_is_wrong_is_refused(change, fragment, artifact_bytes, tmp_path):
    members = members_of(artifact_bytes)
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    path = zipped(tmp_path / "entry.snn", resealed(members, manifest))
    assert f"{path}: {fragment}" in message(BadArtifactError, snnconv.load, path)


@pytest.mark.parametrize("timesteps", [2**31, artifact.MAX_TIMESTEPS + 1, 0, None, 8.0])
def test_timesteps_beyond_the_cap_are_refused(timesteps, artifact_bytes, tmp_path):
    path = changed(artifact_bytes, tmp_path / "long.snn", lambda m: m["options"].__setitem__("timesteps", timesteps))
    assert f"options.timesteps is {timesteps!r}; snnconv simulates 1 to 16,384 timesteps" in \
        message(BadArtifactError, snnconv.load, path)


def test_a_manifest_nested_within_the_parser_but_beyond_snnconv_is_refused(artifact_bytes, tmp_path):
    """900 levels: json parses them, a recursive walk of the manifest after it would not."""
    def nest(manifest: dict) -> None:
        manifest["target"]["sources"]["deep"] = json.loads("[" * 900 + "]" * 900)
    path = changed(artifact_bytes, tmp_path / "deep.snn", nest)
    assert "manifest nested more than 32 levels deep" in message(BadArtifactError, snnconv.load, path)


def test_timesteps_at_the_cap_load(artifact_bytes, tmp_path):
    path = changed(artifact_bytes, tmp_path / "long.snn",
                   lambda m: m["options"].__setitem__("timesteps", artifact.MAX_TIMESTEPS))
    assert snnconv.load(path).timesteps == artifact.MAX_TIMESTEPS


# --- artifacts: integers the target's chip cannot hold -----------------------------------


def with_array(artifact_bytes: bytes, path: Path, name: str, change) -> Path:
    """The good artifact with array ``name`` (integers widened to int64) replaced by ``change(array)`` and its
    checksum fixed."""
    members = members_of(artifact_bytes)
    array = np.load(io.BytesIO(members[name]))
    array = array.astype(np.int64) if array.dtype.kind == "i" else array.copy()
    change(array)
    return zipped(path, resealed(members, json.loads(members["manifest.json"]), {name: npy(array)}))


def set_at(index: tuple, value: int):
    return lambda array: array.__setitem__(index, value)


PRECISION_CASES = {
    "weight beyond the mantissa and exponent": (
        "arrays/Gemm_5/weight.npy", set_at((3, 7), 1 << 30),
        ("layer 'Gemm_5': weight[3, 7] = 1073741824 does not fit loihi's 8-bit weights (m * 2^e with |m| <= 127 "
         "and e in [0, 14], one e per output channel)")),
    "weight finer than its channel's exponent": (
        "arrays/Gemm_5/weight.npy", lambda w: w.__setitem__((2, slice(None)), [127 * 4] + [5] * 63),
        "layer 'Gemm_5': weight[2, 1] = 5 does not fit loihi's 8-bit weights"),
    "bias beyond its format": (
        "arrays/Gemm_5/bias.npy", set_at((4,), 4095 * 128 + 128),
        "layer 'Gemm_5': bias[4] = 524288 does not fit loihi's 13-bit biases (m * 2^e with |m| <= 4,095 and e in"),
}


@pytest.mark.parametrize("name, change, fragment", PRECISION_CASES.values(), ids=PRECISION_CASES.keys())
def test_integers_beyond_the_targets_formats_are_refused(name, change, fragment, artifact_bytes, tmp_path):
    path = with_array(artifact_bytes, tmp_path / "bits.snn", name, change)
    loaded = artifact.read(path)  # the checksums hold: only the precision check can tell
    text = message(BadArtifactError, artifact.check_precision, loaded.graph, targets.get("loihi"), str(path))
    assert f"{path}: {fragment}" in text and "compile the model again for loihi" in text


@pytest.mark.parametrize("field, value, fragment", [
    ("threshold", 2.0 ** 40,
     "layer 'Relu_2': threshold = 1099511627776 does not fit loihi's 17-bit thresholds (m * 2^6 with 1 <= m <= 131"),
    ("threshold", 100.0, "layer 'Relu_2': threshold = 100 does not fit loihi's 17-bit thresholds"),
    ("state_bits", 40, "layer 'Relu_2': state_bits = 40 does not fit loihi's 24-bit membranes"),
])
def test_thresholds_and_membranes_beyond_the_target_are_refused(field, value, fragment, artifact_bytes, tmp_path):
    def change(manifest: dict) -> None:
        next(entry for entry in manifest["program"] if entry["name"] == "Relu_2")[field] = value
    path = changed(artifact_bytes, tmp_path / "bits.snn", change)
    text = message(BadArtifactError, artifact.check_precision, artifact.read(path).graph, targets.get("loihi"), str(path))
    assert f"{path}: {fragment}" in text


def test_loading_refuses_weights_beyond_the_targets_bits(artifact_bytes, tmp_path):
    path = with_array(artifact_bytes, tmp_path / "bits.snn", "arrays/Gemm_5/weight.npy", set_at((3, 7), 1 << 30))
    assert "weight[3, 7] = 1073741824 does not fit loihi's 8-bit weights" in message(BadArtifactError, snnconv.load, path)
