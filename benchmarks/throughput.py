"""Simulation throughput at T = 32: snnconv's chip model vs SpikingJelly and Sinabs, and the dense bound.

For the bundled MNIST MLP and CNN, in one process, interleaved in a Williams design (the
repeats cycle through the rows of a Latin square in which each method follows every other
exactly once: a run right after another method's finds the caches, allocator and threads as
that one left them, and no method always follows the same one), the median of
``REPEATS[batch]`` timed runs after a warm-up, at batch 100 and batch 1 (a batch-1 run takes
milliseconds, so it is repeated more: its median is what a busy machine disturbs most):

- snnconv ``net.run``: what users call, on the network compiled for ``loihi``: the
  simulation, predictions and outputs (what depends only on the network is prepared by
  the first call and reused); the per-core statistics, energy, latency and NeuroBench
  metrics are computed when ``result.stats`` is first read, so ``net.run + stats``
  reads them too (what ``snnconv run`` and ``eval`` do);
- snnconv engine: the simulation alone (``snnconv.snn.simulate``; integer weights, exact
  float32; constant-current input, so the input-driven layer is computed once);
- SpikingJelly 2.0.0 ``ann2snn`` (RateCodingRecipe 99.9%, channel-wise), single-step mode,
  T calls of the network;
- Sinabs 3.1.3 ``from_model`` (IAF, MembraneSubtract), the input repeated T times on the
  batch axis in one call;
- dense bound: T x the ANN's own torch forward at the same batch size.

The ``snnconv run`` command is timed too, as a user meets it: a fresh process that imports
snnconv, loads the ``.snn`` artifact, runs the ``.npz`` samples and prints its table
(median of ``CLI_REPEATS`` runs), beside the time to import the CLI alone.

Run in the peers' venv (see benchmarks/peers.py for how it is made):
    /work/peers-venv/bin/python benchmarks/throughput.py
Writes benchmarks/results/throughput.{json,md} (samples per second; the ``net.run``
overhead is its time minus the engine's). Threads fixed to 2; OMP_WAIT_POLICY=PASSIVE.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peers import IRNet, bundled, scaled_for_sinabs, sinabs_network, spikingjelly  # noqa: E402

import snnconv  # noqa: E402
from snnconv.snn import simulate  # noqa: E402

T = 32
REPEATS = {100: 12, 1: 42}  # whole cycles of the 6 methods' Williams rows
CLI_REPEATS = 5
BATCHES = tuple(REPEATS)
RESULTS = Path(__file__).resolve().parent / "results"


def runners(model: str, calibration: np.ndarray) -> dict:
    path = str(resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx"))
    graph = snnconv.load_onnx(path)
    compiled = snnconv.compile(path, "loihi", calibration, timesteps=T)
    net, folded = IRNet(graph), IRNet(graph, fold_bn=True)
    sj = spikingjelly(net, calibration, ("99.9%", True, True, False))
    sinabs = sinabs_network(scaled_for_sinabs(folded, graph, calibration, 99.9), (99.9, None, "MultiSpike", "torch"),
                            T)

    def run_user(x):
        compiled.run(x, T)

    def run_user_stats(x):
        compiled.run(x, T).stats  # noqa: B018 (reading it computes it)

    def run_engine(x):
        simulate(compiled.graph, x, T)

    def run_sj(x):
        from spikingjelly.activation_based import functional

        functional.reset_net(sj)
        xb, total = torch.from_numpy(x), 0.0
        with torch.no_grad():
            for _ in range(T):
                total = total + sj(xb)

    def run_sinabs(x):
        for module in sinabs.modules():
            if hasattr(module, "reset_states"):
                module.reset_states()
        xb = torch.from_numpy(x)
        with torch.no_grad():
            sinabs(xb.unsqueeze(1).expand(-1, T, *xb.shape[1:]).reshape(-1, *xb.shape[1:]))

    def run_dense(x):
        with torch.no_grad():
            net(torch.from_numpy(x))

    return {"net.run": run_user, "net.run + stats": run_user_stats, "snnconv": run_engine, "spikingjelly": run_sj, "sinabs": run_sinabs,
            "ann forward": run_dense}


def williams(n: int) -> list[list[int]]:
    """The rows of a Williams Latin square for ``n`` methods: each method runs once per row, and across the rows
    each method directly follows every other equally often (once for even ``n``, twice for odd, with the mirrored
    rows added)."""
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]
    rows = [[(m + i) % n for m in first] for i in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def measure(run, x) -> float:
    start = time.perf_counter()
    run(x)
    return time.perf_counter() - start


def command_seconds(args: list[str], cwd: Path) -> float:
    """Median wall-clock seconds of a fresh ``python args`` process (it must succeed)."""
    times = []
    for _ in range(CLI_REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_rows(calibration: np.ndarray, test: dict) -> list[dict]:
    """``snnconv run`` on each bundled net's artifact, at each batch: the command as a user types it."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        main = ["-c", "import sys; from snnconv.cli import main; sys.exit(main())", "-q"]
        imported = command_seconds(["-c", "import snnconv.cli"], cwd)
        for model in ("mlp", "cnn"):
            path = str(resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx"))
            snnconv.compile(path, "loihi", calibration, timesteps=T).save(cwd / f"{model}.snn")
            for batch in BATCHES:
                np.savez(cwd / f"test{batch}.npz", x=test["x"][:batch], y=test["y"][:batch])
                seconds = command_seconds(main + ["run", f"{model}.snn", "--data", f"test{batch}.npz",
                                                  "--timesteps", str(T)], cwd)
                row = {"model": model, "batch": batch, "timesteps": T, "command_s": seconds, "import_s": imported}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    torch.set_num_threads(2)
    calibration = bundled("mnist_calib.npz")["x"]
    test = bundled("mnist_test.npz")["x"]
    rows = []
    for model in ("mlp", "cnn"):
        methods = runners(model, calibration)
        for batch in BATCHES:
            x = test[:batch]
            for run in methods.values():
                run(x)  # warm-up
            times = {name: [] for name in methods}
            names, orders = list(methods), williams(len(methods))
            for repeat in range(REPEATS[batch]):
                for index in orders[repeat % len(orders)]:
                    times[names[index]].append(measure(methods[names[index]], x))
            median = {name: statistics.median(values) for name, values in times.items()}
            dense = median.pop("ann forward") * T
            row = {"model": model, "batch": batch, "timesteps": T,
                   "samples_per_s": {name: batch / s for name, s in median.items()},
                   "dense_bound_samples_per_s": batch / dense,
                   "snnconv_vs_faster_peer": min(median["spikingjelly"], median["sinabs"]) / median["snnconv"],
                   "net_run_vs_faster_peer": min(median["spikingjelly"], median["sinabs"]) / median["net.run"],
                   "net_run_stats_vs_faster_peer": min(median["spikingjelly"], median["sinabs"])
                   / median["net.run + stats"],
                   "net_run_overhead_ms": 1e3 * (median["net.run"] - median["snnconv"]),
                   "stats_ms": 1e3 * (median["net.run + stats"] - median["net.run"]),
                   "snnconv_time_vs_dense_bound": median["snnconv"] / dense}
            rows.append(row)
            print(json.dumps(row), flush=True)
    commands = cli_rows(calibration, {"x": test, "y": bundled("mnist_test.npz")["y"]})
    RESULTS.mkdir(exist_ok=True)
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(), "threads": 2,
            "repeats": REPEATS, "cli_repeats": CLI_REPEATS}
    (RESULTS / "throughput.json").write_text(json.dumps({"meta": meta, "rows": rows, "cli": commands}, indent=2)
                                             + "\n")
    lines = ["| model | batch | net.run | net.run + stats | engine | SpikingJelly | Sinabs | dense bound | "
             "net.run / faster peer | net.run + stats / faster peer | engine / faster peer | net.run overhead ms | "
             "stats ms | engine time / dense bound |", "|" + "---|" * 14]
    for r in rows:
        s = r["samples_per_s"]
        lines.append(f"| {r['model']} | {r['batch']} | {s['net.run']:,.0f} | {s['net.run + stats']:,.0f} | "
                     f"{s['snnconv']:,.0f} | {s['spikingjelly']:,.0f} | {s['sinabs']:,.0f} | "
                     f"{r['dense_bound_samples_per_s']:,.0f} | {r['net_run_vs_faster_peer']:.2f}x | "
                     f"{r['net_run_stats_vs_faster_peer']:.2f}x | {r['snnconv_vs_faster_peer']:.2f}x | "
                     f"{r['net_run_overhead_ms']:.1f} | {r['stats_ms']:.1f} | {r['snnconv_time_vs_dense_bound']:.2f} |")
    lines += ["", "`snnconv run MODEL.snn --data N.npz --timesteps 32` in a fresh process (seconds, median of "
              f"{CLI_REPEATS}; importing `snnconv.cli` alone: {commands[0]['import_s']:.2f} s)", "",
              "| model | samples | command s |", "|---|---|---|"]
    lines += [f"| {r['model']} | {r['batch']} | {r['command_s']:.2f} |" for r in commands]
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
