"""Accuracy against energy per coding (``snnconv.html_codings``): the curves against the rows they are drawn from.

The figure's lines are read back and compared with hand-written rows; the HTML report
holds the picture only when given rows with energy; the reader of ``snnconv eval --json``
files refuses what is not one; ``snnconv report --html --eval`` draws a real evaluation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import html_codings, html_report
from snnconv.errors import BadDataError

MODELS = resources.files("snnconv.models")
CALIB = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
EVALUATION = {"target": "loihi2", "samples": 100, "ann_accuracy": 0.95, "ann": {"energy_uj": 1.1},
              "snn": [{"coding": "if", "timesteps": 16, "accuracy": 0.94, "energy_uj": 40.0},
                      {"coding": "if", "timesteps": 8, "accuracy": 0.90, "energy_uj": 20.0},
                      {"coding": "graded 4-bit", "timesteps": 1, "accuracy": 0.95, "energy_uj": 5.0},
                      {"coding": "graded 4-bit", "timesteps": 2, "accuracy": 0.95, "energy_uj": 10.0}]}


@pytest.fixture(scope="module")
def mlp():
    return snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi2", CALIB[:100], timesteps=1,
                           neuron="graded", payload_bits=4, tune="off")


def test_each_coding_is_one_curve_through_its_rows_in_order_of_t():
    pytest.importorskip("matplotlib")
    ax = html_codings.figure(EVALUATION).axes[0]
    curves = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines}
    assert curves["if"] == ([20.0, 40.0], [90.0, 94.0])  # T = 8, then 16
    assert curves["graded 4-bit"] == ([5.0, 10.0], [95.0, 95.0])
    assert curves["ANN energy (MACs x E_MAC)"] == ([1.1], [95.0])
    assert ax.get_xscale() == "log"


def test_the_report_draws_the_curves_only_when_given_rows_with_energy(mlp):
    pytest.importorskip("matplotlib")
    assert 'id="codings-image"' in html_report.render(mlp, evaluation=EVALUATION)
    without_energy = {**EVALUATION, "snn": [{"coding": "if", "timesteps": 8, "accuracy": 0.9}]}
    assert "codings-image" not in html_report.render(mlp, evaluation=without_energy)
    assert "codings-image" not in html_report.render(mlp)


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not JSON"),
    ('{"snn": []}', "not the output of snnconv eval --json"),
    ('{"snn": [{"coding": "if", "timesteps": 8, "accuracy": 0.9}]}', "coding, timesteps, accuracy, energy_uj"),
    ('[1, 2]', "not the output of snnconv eval --json"),
])
def test_reading_an_evaluation_refuses_what_is_not_one(tmp_path, text, needle):
    path = tmp_path / "eval.json"
    path.write_text(text)
    with pytest.raises(BadDataError, match=needle):
        html_codings.read(path)


def test_report_html_with_eval_draws_a_real_evaluation(mlp, tmp_path):
    pytest.importorskip("matplotlib")
    test = np.load(MODELS.joinpath("mnist_test.npz"))
    np.savez(tmp_path / "test.npz", x=test["x"][:100], y=test["y"][:100])
    evaluation = snnconv.evaluate(str(MODELS.joinpath("mnist_mlp.onnx")), (test["x"][:100], test["y"][:100]),
                                  target="loihi2", timesteps=(1, 2), calibration=CALIB[:100], neuron="if,graded",
                                  payload_bits=4, tune="off")
    (tmp_path / "eval.json").write_text(json.dumps(evaluation.to_dict()))
    mlp.save(tmp_path / "mlp.snn")
    result = subprocess.run([sys.executable, "-m", "snnconv.cli", "report", str(tmp_path / "mlp.snn"), "--html",
                             str(tmp_path / "mlp.html"), "--eval", str(tmp_path / "eval.json")],
                            capture_output=True, text=True, timeout=600, check=False,
                            cwd=tmp_path)  # not the repository's root: the installed package
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "mlp.html").read_text()
    assert 'id="codings-image"' in page and "Accuracy against energy, per coding" in page
