"""Simulation throughput at T = 32: snnconv's chip model vs SpikingJelly and Sinabs, and the dense bound.

For the bundled MNIST MLP and CNN, in one process, interleaved (A B C D, repeated), the
median of ``REPEATS`` timed runs after a warm-up, at batch 100 and batch 1:

- snnconv: the chip model's engine (``snnconv.snn.simulate``) on the network compiled for
  ``loihi`` (integer weights, exact float32; constant-current input, so the input-driven
  layer is computed once);
- SpikingJelly 2.0.0 ``ann2snn`` (RateCodingRecipe 99.9%, channel-wise), single-step mode,
  T calls of the network;
- Sinabs 3.1.3 ``from_model`` (IAF, MembraneSubtract), the input repeated T times on the
  batch axis in one call;
- dense bound: T x the ANN's own torch forward at the same batch size.

Run in the peers' venv (see benchmarks/peers.py for how it is made):
    /work/peers-venv/bin/python benchmarks/throughput.py
Writes benchmarks/results/throughput.{json,md}. Threads fixed to 2; OMP_WAIT_POLICY=PASSIVE.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from importlib import resources
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peers import IRNet, bundled, scaled_for_sinabs, sinabs_network, spikingjelly  # noqa: E402

import snnconv  # noqa: E402
from snnconv.snn import simulate  # noqa: E402

T = 32
REPEATS = 5
BATCHES = (100, 1)
RESULTS = Path(__file__).resolve().parent / "results"


def runners(model: str, calibration: np.ndarray) -> dict:
    path = str(resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx"))
    graph = snnconv.load_onnx(path)
    compiled = snnconv.compile(path, "loihi", calibration, timesteps=T)
    net, folded = IRNet(graph), IRNet(graph, fold_bn=True)
    sj = spikingjelly(net, calibration, ("99.9%", True, True, False))
    sinabs = sinabs_network(scaled_for_sinabs(folded, graph, calibration, 99.9), (99.9, None, "MultiSpike", "torch"),
                            T)

    def run_snnconv(x):
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

    return {"snnconv": run_snnconv, "spikingjelly": run_sj, "sinabs": run_sinabs, "ann forward": run_dense}


def measure(run, x) -> float:
    start = time.perf_counter()
    run(x)
    return time.perf_counter() - start


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
            for _ in range(REPEATS):
                for name, run in methods.items():
                    times[name].append(measure(run, x))
            median = {name: statistics.median(values) for name, values in times.items()}
            dense = median.pop("ann forward") * T
            row = {"model": model, "batch": batch, "timesteps": T,
                   "samples_per_s": {name: batch / s for name, s in median.items()},
                   "dense_bound_samples_per_s": batch / dense,
                   "snnconv_vs_faster_peer": min(median["spikingjelly"], median["sinabs"]) / median["snnconv"],
                   "snnconv_time_vs_dense_bound": median["snnconv"] / dense}
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(), "threads": 2,
            "repeats": REPEATS}
    (RESULTS / "throughput.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["| model | batch | snnconv | SpikingJelly | Sinabs | dense bound | snnconv / faster peer | "
             "snnconv time / dense bound |", "|" + "---|" * 8]
    for r in rows:
        s = r["samples_per_s"]
        lines.append(f"| {r['model']} | {r['batch']} | {s['snnconv']:,.0f} | {s['spikingjelly']:,.0f} | "
                     f"{s['sinabs']:,.0f} | {r['dense_bound_samples_per_s']:,.0f} | "
                     f"{r['snnconv_vs_faster_peer']:.2f}x | {r['snnconv_time_vs_dense_bound']:.2f} |")
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
