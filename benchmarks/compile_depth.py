"""Compile time against depth: chains of 100, 200, 400 and 1,000 dense layers.

Each chain is ``depth`` x (Gemm 64 -> 64, ReLU) and a Gemm 64 -> 10 read out, built with
onnx.helper. Weights are the identity plus small noise and biases small and positive, so
that activity stays alive through a thousand layers. Each is compiled as a user would:
``snnconv.compile(model, "loihi", calibration, timesteps=32)`` with 512 calibration
samples (uniform in [0, 1]) and default options (percentile and initial-membrane tuning,
bias correction, quantization, partition, placement). A compile of a 10-layer chain
warms the process up first; each depth is then compiled ``--repeats`` times and the
median kept, with the CPU pressure during each compile (Linux PSI): on a shared machine,
torch's two threads slow down several-fold while another process holds a core, so only
figures at pressure near 0 compare.

The cost should be linear in depth: the table gives milliseconds per layer beside each
time. Writes benchmarks/results/compile_depth.json.

Run:  python benchmarks/compile_depth.py      # about 5 minutes on 2 idle cores
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import snnconv

DEPTHS = (100, 200, 400, 1000)
WIDTH, CLASSES, SAMPLES, TIMESTEPS = 64, 10, 512, 32
RESULTS = Path(__file__).resolve().parent / "results"


def chain(depth: int, seed: int = 0) -> onnx.ModelProto:
    """``depth`` x (Gemm WIDTH -> WIDTH, Relu), then Gemm WIDTH -> CLASSES."""
    rng = np.random.default_rng(seed)
    nodes, initializers, value = [], [], "x"
    for i in range(depth + 1):
        outputs = CLASSES if i == depth else WIDTH
        weight = 0.3 * rng.standard_normal((outputs, WIDTH)) / np.sqrt(WIDTH)
        if i < depth:
            weight += np.eye(WIDTH)
        bias = rng.uniform(0.0, 0.05, outputs)
        initializers += [numpy_helper.from_array(weight.astype(np.float32), f"w{i}"),
                         numpy_helper.from_array(bias.astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [value, f"w{i}", f"b{i}"], [f"z{i}"], transB=1))
        value = f"z{i}"
        if i < depth:
            nodes.append(helper.make_node("Relu", [value], [f"a{i}"]))
            value = f"a{i}"
    graph = helper.make_graph(nodes, f"chain{depth}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
                              [helper.make_tensor_value_info(value, TensorProto.FLOAT, ["N", CLASSES])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def compile_timed(model: onnx.ModelProto, calibration: np.ndarray) -> tuple[float, float]:
    """Seconds to compile, and the CPU pressure meanwhile (the fraction of that time something waited for a core)."""
    stalled, start = cpu_stall_seconds(), time.perf_counter()
    snnconv.compile(model, "loihi", calibration, timesteps=TIMESTEPS)
    seconds = time.perf_counter() - start
    return seconds, (cpu_stall_seconds() - stalled) / seconds


def cpu_stall_seconds() -> float:
    """Linux's PSI: total time some task was runnable but waited for a CPU (0 where PSI is missing)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return 0.0
    return int(line.rsplit("total=", 1)[1]) / 1e6


def markdown(rows: dict) -> str:
    lines = ["| layers (dense + ReLU) | compile s | ms per layer |", "|---|---|---|"]
    for depth, row in rows.items():
        lines.append(f"| {depth} | {row['seconds']:.1f} | {1000 * row['seconds'] / int(depth):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="compiles per depth; the median is kept")
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    args = parser.parse_args()
    torch.set_num_threads(2)
    calibration = np.random.default_rng(1).uniform(0, 1, (SAMPLES, WIDTH)).astype(np.float32)
    compile_timed(chain(10), calibration)  # warm-up: imports, torch's first kernels
    rows = {}
    for depth in args.depths:
        model = chain(depth)
        runs = [compile_timed(model, calibration) for _ in range(args.repeats)]
        rows[str(depth)] = {"seconds": round(statistics.median(t for t, _ in runs), 2),
                            "runs": [round(t, 2) for t, _ in runs], "cpu_pressure": [round(p, 2) for _, p in runs]}
        print(f"{depth} layers: {rows[str(depth)]['seconds']:.1f} s (CPU pressure {rows[str(depth)]['cpu_pressure']})",
              flush=True)
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(), "threads": 2,
            "repeats": args.repeats, "width": WIDTH, "calibration_samples": SAMPLES, "timesteps": TIMESTEPS,
            "target": "loihi",
            "note": "cpu_pressure: share of each compile's time that some task waited for a CPU (Linux PSI)"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_depth.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
