"""Scale-out on Ray (snnconv.distributed): the same bytes as a local run, and nothing lost when a worker dies."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import snnconv
from snnconv import distributed
from snnconv.errors import SnnconvError

ray = pytest.importorskip("ray")
MODELS = resources.files("snnconv.models")
TEST = np.load(str(MODELS.joinpath("mnist_test.npz")))
CALIBRATION = np.load(str(MODELS.joinpath("mnist_calib.npz")))["x"][:64]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local two-CPU Ray cluster for this module's tests (the API then uses it instead of starting one).

    Started from an empty folder: Ray puts the driver's working directory on its workers'
    path, and from the repository's root they would import the source tree, not the
    installed package.
    """
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        ray.init(num_cpus=2, log_to_driver=False, configure_logging=False, include_dashboard=False)
    finally:
        os.chdir(here)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cnn():
    return snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi", CALIBRATION, timesteps=16)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert json.dumps(a.stats, sort_keys=True) == json.dumps(b.stats, sort_keys=True)
    assert a.spike_counts.keys() == b.spike_counts.keys()
    for name in a.spike_counts:
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])


def test_run_on_ray_equals_the_local_run(cluster, cnn):
    x = TEST["x"][:200]
    _same(cnn.run(x, batch_size=48, executor="ray"), cnn.run(x, batch_size=48))


def test_rate_coded_run_on_ray_draws_the_same_spikes(cluster):
    """Each batch seeds its own input spikes, so batches run anywhere draw the same ones."""
    net = snnconv.compile(str(MODELS.joinpath("mnist_mlp.onnx")), "loihi2", CALIBRATION, timesteps=16,
                          encoding="rate")
    x = TEST["x"][:120]
    _same(net.run(x, batch_size=32, executor="ray"), net.run(x, batch_size=32))


def test_evaluate_on_ray_gives_the_same_table(cluster):
    data = (TEST["x"][:150], TEST["y"][:150])
    kwargs = dict(timesteps=(8, 16), calibration=CALIBRATION, batch_size=40)
    local = snnconv.evaluate(str(MODELS.joinpath("mnist_mlp.onnx")), data, **kwargs)
    on_ray = snnconv.evaluate(str(MODELS.joinpath("mnist_mlp.onnx")), data, executor="ray", **kwargs)
    assert json.dumps(on_ray.to_dict()) == json.dumps(local.to_dict())


def _batch_workers() -> list[int]:
    """The processes running a batch now: Ray titles a busy worker after its task."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::_run_batch" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _run_killing_one_worker(net, x, batch_size):
    """``net.run`` on Ray while a worker in the middle of a batch is killed (SIGKILL); its result, or its error."""
    outcome = {}

    def target():
        try:
            outcome["result"] = net.run(x, 64, batch_size=batch_size, executor="ray")
        except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    deadline, killed = time.monotonic() + 120, False
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        workers = _batch_workers()
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    thread.join(300)
    assert killed, "no worker was caught running a batch"
    return outcome


def test_a_killed_worker_is_retried_reported_and_the_result_unchanged(cluster, cnn, caplog):
    x = TEST["x"][:240]
    with caplog.at_level(logging.WARNING, logger="snnconv"):
        outcome = _run_killing_one_worker(cnn, x, 24)
    assert "error" not in outcome, outcome.get("error")
    _same(outcome["result"], cnn.run(x, 64, batch_size=24))
    assert any("died" in r.getMessage() and "submitting them again" in r.getMessage() for r in caplog.records)


def test_a_batch_that_keeps_failing_fails_the_run_naming_its_samples(cluster, cnn, monkeypatch):
    monkeypatch.setattr(distributed, "RETRIES", 0)
    outcome = _run_killing_one_worker(cnn, TEST["x"][:240], 24)
    assert isinstance(outcome.get("error"), SnnconvError)
    assert "samples" in str(outcome["error"]) and "worker died" in str(outcome["error"])


def test_an_error_in_the_simulation_is_raised_as_itself(cluster, cnn):
    x = TEST["x"][:10].copy()
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(snnconv.errors.BadDataError, match="NaN") as raised:
        cnn.run(x, executor="ray")
    assert type(raised.value) is snnconv.errors.BadDataError and "\n" not in str(raised.value)  # one line, as here


def test_eval_ray_json_is_byte_identical_to_the_local_run(tmp_path):
    """The command line, each run in its own process (``--ray`` starts a local cluster there)."""
    data = tmp_path / "data.npz"
    np.savez(data, x=TEST["x"][:100], y=TEST["y"][:100])
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, x=CALIBRATION)
    command = [sys.executable, "-m", "snnconv.cli", "eval", str(MODELS.joinpath("mnist_mlp.onnx")), "--data",
               str(data), "--calibration", str(calibration), "--timesteps", "8,16", "--json", "-q"]
    local = subprocess.run(command, capture_output=True, check=True, cwd=tmp_path)
    on_ray = subprocess.run(command + ["--ray"], capture_output=True, check=True, cwd=tmp_path)
    assert on_ray.stdout == local.stdout and json.loads(local.stdout)["snn"]


def _bench_without_the_clock(result: dict) -> dict:
    """A bench's JSON less what a clock measured here (the ANN's runtimes differ from run to run by nature)."""
    rows = [row for row in result["rows"] if row["how"] != "measured here"]
    return {**{k: v for k, v in result.items() if k not in ("ann_measured", "best")}, "rows": rows}


def test_bench_on_ray_gives_the_same_json_and_times_the_ann_before_any_task(cluster, monkeypatch):
    """The counted part (accuracy, spikes, synaptic ops, modeled energy) on Ray, the same bytes; the clock here, first.

    The ANN is measured once and that measurement is handed to both runs, so every byte
    of the two results must agree; the order of events shows no task of ours was running
    while the clock ran.
    """
    from snnconv import ann_measure, benchmark

    events, measure, map_batches = [], ann_measure.measure, distributed.map_batches
    measured = {}

    def measure_once(*args, **kwargs):
        events.append("measure")
        if not measured:
            measured.update(measure(*args, **kwargs))
        return json.loads(json.dumps(measured))

    def recorded(*args, **kwargs):
        events.append("ray")
        return map_batches(*args, **kwargs)

    monkeypatch.setattr(benchmark.ann_measure, "measure", measure_once)
    monkeypatch.setattr(distributed, "map_batches", recorded)
    kwargs = {"targets": ["loihi", "loihi2"], "codings": ["if", "graded"], "timesteps": [4],
              "calibration": CALIBRATION, "data": (TEST["x"][:90], TEST["y"][:90]), "batch_size": 32, "budget_s": 0.2}
    local = benchmark.bench(str(MODELS.joinpath("mnist_mlp.onnx")), **kwargs)
    assert events == ["measure"]
    on_ray = benchmark.bench(str(MODELS.joinpath("mnist_mlp.onnx")), executor="ray", **kwargs)
    assert events[1] == "measure" and events[2:] == ["ray"] * 3  # loihi if; loihi2 if and graded (loihi: no graded)
    assert json.dumps(on_ray.to_dict()) == json.dumps(local.to_dict())
    assert sum(config["runs"] for config in local.snn) == 3 and local.samples == 90


def test_bench_ray_json_equals_the_local_run_and_ray_stays_unimported_without_it(tmp_path):
    """The command line, each run in its own process; the runs differ only in what the clock measured here."""
    data = tmp_path / "data.npz"
    np.savez(data, x=TEST["x"][:80], y=TEST["y"][:80])
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, x=CALIBRATION)
    args = ["bench", str(MODELS.joinpath("mnist_mlp.onnx")), "--target", "loihi2", "--coding", "if,graded",
            "--timesteps", "4,8", "--data", str(data), "--calibration", str(calibration), "--batch-size", "24",
            "--json", "-q"]
    code = ("import sys; from snnconv import cli; status = cli.main(sys.argv[1:]); "
            "print('ray' in sys.modules, file=sys.stderr); sys.exit(status)")
    local = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                           cwd=tmp_path)
    on_ray = subprocess.run([sys.executable, "-m", "snnconv.cli", *args, "--ray"], capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert local.stderr.strip().splitlines()[-1] == "False"
    local_json, ray_json = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert len([c for c in local_json["snn"] if c["runs"] and c["accuracy"] is not None]) == 4
    assert json.dumps(_bench_without_the_clock(ray_json)) == json.dumps(_bench_without_the_clock(local_json))


def test_ray_is_not_imported_without_it():
    code = ("import sys, numpy as np, snnconv; from importlib import resources; "
            "m = resources.files('snnconv.models'); d = np.load(str(m.joinpath('mnist_calib.npz')))['x'][:32]; "
            "net = snnconv.compile(str(m.joinpath('mnist_mlp.onnx')), 'loihi', d, timesteps=8); net.run(d); "
            "snnconv.evaluate(str(m.joinpath('mnist_mlp.onnx')), (d, np.zeros(32, int)), timesteps=(8,), "
            "calibration=d); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir())  # not the repository's root: the installed package
    assert out.stdout.strip() == "False"
