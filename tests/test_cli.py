"""The command line: ``--json`` output and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import resources

import numpy as np
import onnx
import pytest
from helpers import inception_pool_model

import snnconv
from snnconv.summary import summary_dict

CNN = str(resources.files("snnconv.models").joinpath("mnist_cnn.onnx"))


def snnconv_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the command outside the source tree, so the installed package (with snnconv.targets) is imported."""
    return subprocess.run([sys.executable, "-m", "snnconv.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir())


def test_inspect_json_describes_the_model():
    result = snnconv_cli("inspect", CNN, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    graph = snnconv.load_onnx(CNN)
    assert data == json.loads(json.dumps(summary_dict(graph, CNN)))
    kinds = [row["kind"] for row in data["layers"]]
    assert kinds == [layer.kind for layer in graph]
    conv = data["layers"][1]
    # conv 1->16, 5x5, pad 2 on 28x28: 16*28*28 outputs, each 25 MACs
    assert conv["macs"] == 16 * 28 * 28 * 25 and conv["params"] == 16 * 25 + 16 and conv["fan_in"] == 25
    assert data["totals"]["params"] == sum(row["params"] for row in data["layers"])


def test_inspect_table_has_totals():
    result = snnconv_cli("inspect", CNN)
    assert result.returncode == 0
    assert "total (12 layers)" in result.stdout and "29,130" in result.stdout


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x08\x07garbage"])
def test_inspect_bad_file_is_one_line_exit_2(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    result = snnconv_cli("inspect", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_inspect_with_a_target_checks_the_structure_without_calibration(tmp_path):
    """A structure no synapse map computes (Inception's count_include_pad=0 pool before a conv) is refused by
    inspect --target in compile's words, after the table, with exit 2; the bundled CNN converts."""
    fine = snnconv_cli("inspect", CNN, "--target", "loihi")
    assert fine.returncode == 0 and fine.stderr == "", fine.stderr
    assert "structure: converts for loihi (lowered to" in fine.stdout
    rng = np.random.default_rng(0)
    path = tmp_path / "inception_pool.onnx"
    onnx.save(inception_pool_model(rng), path)
    refused = snnconv_cli("inspect", str(path), "--target", "loihi", "--json")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "average pool 'AveragePool_2'" in lines[0] and "count_include_pad=1" in lines[0]
    structure = json.loads(refused.stdout)["structure"]
    assert structure["target"] == "loihi" and lines[0] == f"error: {structure['refused']}"


def test_inspect_bad_input_shape_is_exit_2():
    result = snnconv_cli("inspect", CNN, "--input-shape", "0,x")
    assert result.returncode == 2 and "--input-shape" in result.stderr


def test_targets_lists_every_target_and_json_has_every_field():
    from snnconv import targets

    table = snnconv_cli("targets")
    assert table.returncode == 0, table.stderr
    assert all(name in table.stdout for name in targets.names())
    listed = json.loads(snnconv_cli("targets", "--json").stdout)
    assert [entry["name"] for entry in listed] == targets.names()
    assert listed[0]["precision"] == json.loads(json.dumps(targets.get(listed[0]["name"]).to_dict()["precision"]))


def test_targets_toml_prints_a_file_that_loads_as_the_same_target(tmp_path):
    from snnconv import targets

    printed = snnconv_cli("targets", "--toml", "loihi")
    assert printed.returncode == 0, printed.stderr
    path = tmp_path / "mine.toml"
    path.write_text(printed.stdout)
    assert targets.get(str(path)) == targets.get("loihi")


def test_unknown_target_is_one_line_and_exit_code_2():
    result = snnconv_cli("targets", "--toml", "loihi9")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown target 'loihi9'" in result.stderr


MODELS = resources.files("snnconv.models")


def test_compile_run_report_json_round_trip(tmp_path):
    out = tmp_path / "mlp.snn"
    compiled = snnconv_cli("compile", str(MODELS.joinpath("mnist_mlp.onnx")), "--calibration",
                           str(MODELS.joinpath("mnist_calib.npz")), "--timesteps", "8", "-o", str(out), "--json")
    assert compiled.returncode == 0, compiled.stderr
    report = json.loads(compiled.stdout)["report"]
    assert report == json.loads(snnconv_cli("report", str(out), "--json").stdout)
    ran = snnconv_cli("run", str(out), "--data", str(MODELS.joinpath("mnist_test.npz")), "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    net = snnconv.load(out)
    x = np.load(MODELS.joinpath("mnist_test.npz"))["x"]
    assert result["predictions"] == net.run(x, 8).predictions.tolist()
    assert result["stats"]["synaptic_ops"] > 0 and 0.9 < result["accuracy"] <= 1.0


def test_compile_spread_is_the_api_option(tmp_path):
    """``--spread`` writes the artifact ``snnconv.compile(..., spread=True)`` gives: the same bytes."""
    model, calib = str(MODELS.joinpath("mnist_cnn.onnx")), str(MODELS.joinpath("mnist_calib.npz"))
    out = tmp_path / "cnn.snn"
    compiled = snnconv_cli("compile", model, "--calibration", calib, "--timesteps", "8", "--spread", "-o", str(out))
    assert compiled.returncode == 0, compiled.stderr
    x = np.load(calib)["x"]
    api = snnconv.compile(model, "loihi", x, timesteps=8, spread=True).save(tmp_path / "api.snn")
    packed = snnconv.compile(model, "loihi", x, timesteps=8).save(tmp_path / "packed.snn")
    assert out.read_bytes() == api.read_bytes() != packed.read_bytes()


@pytest.mark.parametrize("args, needle", [
    (["compile", "missing.onnx", "-o", "x.snn"], "missing.onnx: no such file"),
    (["run", "missing.snn", "--data", "d.npz"], "missing.snn: no such file"),
    (["report", "missing.snn"], "missing.snn: no such file"),
    (["compile", str(MODELS.joinpath("mnist_mlp.onnx")), "--target", "nochip", "-o", "x.snn"], "unknown target"),
    (["compile", str(MODELS.joinpath("mnist_mlp.onnx")), "-o", "x.snn"], "no calibration data"),
])
def test_bad_inputs_give_one_line_and_exit_code_2(args, needle, tmp_path):
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", *args], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and needle in result.stderr
    assert not (tmp_path / "x.snn").exists()


def test_uncalibrated_compiles_for_a_mapping_report_with_a_warning(tmp_path):
    """Without data the weight-based bound is only allowed when asked for, and the notes say what was used."""
    result = snnconv_cli("compile", str(MODELS.joinpath("mnist_mlp.onnx")), "--uncalibrated", "--timesteps", "4",
                         "-o", str(tmp_path / "mlp.snn"))
    assert result.returncode == 0, result.stderr
    assert "weight-based bound" in result.stderr and (tmp_path / "mlp.snn").exists()


def test_eval_json_scores_the_ann_and_every_t(tmp_path):
    data = tmp_path / "few.npz"
    test = np.load(MODELS.joinpath("mnist_test.npz"))
    np.savez(data, x=test["x"][:100], y=test["y"][:100])
    result = snnconv_cli("eval", str(MODELS.joinpath("mnist_mlp.onnx")), "--data", str(data), "--timesteps", "4,16",
                         "--calibration", str(MODELS.joinpath("mnist_calib.npz")), "--json")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    ann = snnconv.ann.evaluate(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))), test["x"][:100])
    assert table["ann_accuracy"] == float((ann.argmax(1) == test["y"][:100]).mean())
    assert [row["timesteps"] for row in table["snn"]] == [4, 16]
    assert table["snn"][1]["accuracy"] >= table["ann_accuracy"] - 0.05


def test_eval_without_labels_is_one_line_and_exit_code_2(tmp_path):
    data = tmp_path / "unlabelled.npz"
    np.savez(data, x=np.zeros((3, 1, 28, 28), np.float32))
    result = snnconv_cli("eval", str(MODELS.joinpath("mnist_mlp.onnx")), "--data", str(data))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "has no labels y" in result.stderr


def test_bad_timesteps_list_is_exit_code_2():
    result = snnconv_cli("eval", str(MODELS.joinpath("mnist_mlp.onnx")), "--data", "d.npz", "--timesteps", "8,x")
    assert result.returncode == 2 and "not a list of timesteps" in result.stderr


def test_demo_json_reports_ann_and_chip_accuracy_on_the_bundled_digits():
    result = snnconv_cli("demo", "--json")
    assert result.returncode == 0, result.stderr
    demo = json.loads(result.stdout)
    assert demo["samples"] == 1000 and demo["timesteps"] == 32
    assert demo["ann_accuracy"] == json.loads((MODELS / "models.json").read_text())["cnn"]["test_accuracy"]
    assert demo["accuracy"] >= demo["ann_accuracy"] - 0.01
    assert demo["stats"]["energy_uj"] > 0 and demo["report"]["totals"]["cores"] > 0
    assert result.stderr == ""  # no progress bars when stderr is not a terminal


def test_report_html_json_names_a_self_contained_page(tmp_path):
    out, page = tmp_path / "mlp.snn", tmp_path / "report.html"
    snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi", np.load(MODELS.joinpath("mnist_calib.npz"))["x"],
                    timesteps=8).save(out)
    data = tmp_path / "few.npz"
    test = np.load(MODELS.joinpath("mnist_test.npz"))
    np.savez(data, x=test["x"][:50], y=test["y"][:50])
    result = snnconv_cli("report", str(out), "--html", str(page), "--data", str(data), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"html": str(page)}
    text = page.read_text()
    assert 'id="mesh-image"' in text and 'id="layers-table"' in text and 'id="run-table"' in text
    assert "http://" not in text and "https://" not in text


def test_report_html_into_a_missing_folder_is_one_line_and_exit_code_2(tmp_path):
    out = tmp_path / "mlp.snn"
    snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi", np.load(MODELS.joinpath("mnist_calib.npz"))["x"],
                    timesteps=8).save(out)
    result = snnconv_cli("report", str(out), "--html", str(tmp_path / "no" / "report.html"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr


@pytest.mark.parametrize("args, needle", [
    (["compile", "m.onnx", "-o", "x.snn", "--timesteps", "-3"], "'-3' is not a positive integer"),
    (["run", "x.snn", "--data", "d.npz", "--batch-size", "0"], "'0' is not a positive integer"),
    (["run", "x.snn", "--data", "d.npz", "--device", "tpu"], "invalid choice: 'tpu'"),
])
def test_bad_option_values_are_refused_by_the_parser_with_exit_code_2(args, needle):
    result = snnconv_cli(*args)
    assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr


def test_an_unwritable_output_is_one_line_and_exit_code_2(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    result = snnconv_cli("compile", str(MODELS.joinpath("mnist_mlp.onnx")), "-o", str(folder), "--timesteps", "4")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_compile_nir_json_names_the_file_and_what_nir_cannot_express(tmp_path):
    pytest.importorskip("nir", minversion="1.0.6", reason="NIR export needs nir >= 1.0.6 (the test extra installs it)")
    out, nir_file = tmp_path / "mlp.snn", tmp_path / "mlp.nir"
    result = snnconv_cli("compile", str(MODELS.joinpath("mnist_mlp.onnx")), "--calibration",
                         str(MODELS.joinpath("mnist_calib.npz")), "--timesteps", "8", "-o", str(out),
                         "--nir", str(nir_file), "--json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["nir"] == str(nir_file) and nir_file.stat().st_size > 0
    assert any("output" in warning for warning in written["nir_warnings"])


def test_compile_nir_into_a_missing_folder_is_one_line_and_exit_code_2(tmp_path):
    result = snnconv_cli("compile", str(MODELS.joinpath("mnist_mlp.onnx")), "-o", str(tmp_path / "mlp.snn"),
                         "--nir", str(tmp_path / "no" / "mlp.nir"), "--timesteps", "4")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mlp.snn").exists()


def test_demo_takes_no_input_and_refuses_one_with_exit_code_2():
    result = snnconv_cli("demo", "models/mnist_cnn.onnx")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_a_reader_that_leaves_early_is_not_an_error():
    """``snnconv targets --json | head``: the pipe closes before snnconv writes; no error line, exit 141."""
    child = subprocess.Popen([sys.executable, "-m", "snnconv.cli", "targets", "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    child.stdout.close()  # the reader is gone before the command prints
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 141 and "error" not in stderr.lower(), stderr


@pytest.mark.parametrize("argv, quiet", [(["targets"], False), (["-q", "targets"], True), (["targets", "-q"], True),
                                         (["compile", "m.onnx", "-o", "x.snn", "--quiet"], True)])
def test_quiet_goes_before_or_after_the_command(argv, quiet):
    from snnconv.cli import build_parser

    assert build_parser().parse_args(argv).quiet is quiet
