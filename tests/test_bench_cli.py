"""``snnconv bench`` on the command line: JSON and HTML out, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from bench_cases import MLP, MODELS
from test_cli import snnconv_cli

CALIBRATION = str(MODELS / "mnist_calib.npz")
TEST = str(MODELS / "mnist_test.npz")


def test_bench_writes_json_and_html(tmp_path):
    page = tmp_path / "bench.html"
    result = snnconv_cli("bench", MLP, "--target", "loihi,speck", "--timesteps", "4", "--data", TEST, "--samples",
                         "40", "--calibration", CALIBRATION, "--calibration-samples", "64", "--json", "--html",
                         str(page))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = [row["name"] for row in data["rows"]]
    assert names[:2] == ["SNN loihi if T=4", "SNN speck if T=4"]
    assert {"ANN server-cpu", "ANN gpu", "ANN edge", "ANN onnxruntime here", "ANN torch here"} <= set(names)
    assert data["samples"] == 40 and data["settings"]["calibration_samples"] == 64
    for row in data["rows"]:
        if row["edp_js"] is not None:
            assert row["edp_js"] == pytest.approx(row["energy_uj"] * row["latency_us"] * 1e-12)
    assert data["html"] == str(page) and page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("args, message", [
    (["--target", "nope", "--calibration", CALIBRATION], "unknown target 'nope'"),
    (["--coding", "graded", "--calibration", CALIBRATION], "coding: no requested coding runs"),
    (["--coding", "spiky", "--calibration", CALIBRATION], "coding: 'spiky'"),
    ([], "bench needs samples to compile with"),
    (["--timesteps", "0", "--calibration", CALIBRATION], "--timesteps"),
    (["--calibration", CALIBRATION, "--html", "/nonexistent-folder/b.html"], "does not exist"),
])
def test_bench_errors_are_one_line_exit_2(args, message):
    result = snnconv_cli("bench", MLP, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
