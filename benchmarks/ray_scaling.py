"""Scale-out on Ray: `net.run` of the bundled MNIST CNN with 1 and 2 local Ray workers, against the local run.

The CNN compiled for loihi at T = 32 runs 2,000 test digits (the bundled 1,000, twice) in
batches of 100: locally (one process, 2 threads), then on a local Ray cluster started with
``num_cpus`` 1 and 2 (one single-threaded worker per CPU, as Ray sets them). Each Ray
timing excludes the cluster's start and includes shipping the network and the data; each
is the median of ``REPEATS`` runs after a warm-up run (which loads the network on the
workers). Every Ray result is checked equal to the local one.

    python benchmarks/ray_scaling.py

Writes benchmarks/results/ray_scaling.{json,md}.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from importlib import resources
from pathlib import Path

import numpy as np
import ray
import torch

import snnconv

T, BATCH, REPEATS = 32, 100, 3
RESULTS = Path(__file__).resolve().parent / "results"


def timed(run) -> tuple[float, object]:
    run()  # warm-up: the workers decode the network once
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    torch.set_num_threads(2)
    models = resources.files("snnconv.models")
    calibration = np.load(str(models.joinpath("mnist_calib.npz")))["x"]
    x = np.concatenate([np.load(str(models.joinpath("mnist_test.npz")))["x"]] * 2)
    net = snnconv.compile(str(models.joinpath("mnist_cnn.onnx")), "loihi", calibration, timesteps=T)
    local_s, local = timed(lambda: net.run(x, T, batch_size=BATCH))
    rows = [{"executor": "local (1 process, 2 threads)", "seconds": local_s}]
    for cpus in (1, 2):
        ray.init(num_cpus=cpus, log_to_driver=False, configure_logging=False, include_dashboard=False)
        seconds, result = timed(lambda: net.run(x, T, batch_size=BATCH, executor="ray"))
        ray.shutdown()
        assert np.array_equal(result.outputs, local.outputs) and result.stats == local.stats
        rows.append({"executor": f"ray, {cpus} worker{'s' if cpus > 1 else ''}", "seconds": seconds})
    one = rows[1]["seconds"]
    for row in rows:
        row["samples_per_s"] = len(x) / row["seconds"]
        row["speedup_vs_1_worker"] = one / row["seconds"]
    RESULTS.mkdir(exist_ok=True)
    meta = {"model": "mnist_cnn", "target": "loihi", "timesteps": T, "samples": len(x), "batch_size": BATCH,
            "repeats": REPEATS, "ray": ray.__version__, "torch": torch.__version__, "machine": platform.machine()}
    (RESULTS / "ray_scaling.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["| executor | seconds | samples/s | vs 1 worker |", "|---|---|---|---|"]
    lines += [f"| {r['executor']} | {r['seconds']:.1f} | {r['samples_per_s']:,.0f} | {r['speedup_vs_1_worker']:.2f}x |"
              for r in rows]
    (RESULTS / "ray_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
