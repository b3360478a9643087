"""Compile time and peak memory for big networks on the default target (loihi).

MobileNet-v1 (width 1.0, 128 x 128 x 3), ResNet-18 (224 x 224 x 3) and ResNet-18 twice as
wide (128 .. 1,024 channels), all with random weights and batch-norm statistics
(``benchmarks/networks.py``), calibrated on 8 random images. Each network compiles in a
fresh process (so peak memory is its own): import (torch export in memory), conversion,
quantization, partition and placement, timed separately. Also the partition's mean
utilization of used cores and the chips it takes. Writes
benchmarks/results/compile_scale.{json,md}.

Run:  python benchmarks/compile_scale.py      # about 3 minutes on 2 cores
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NETWORKS = {"mobilenet_v1 128x128": ("mobilenet", 1.0, 128), "resnet18 224x224": ("resnet", 64, 224),
            "resnet18 2x wide 224x224": ("resnet", 128, 224)}


def compile_one(kind: str, width: float, size: int) -> dict:
    """Runs in its own process: every stage timed, peak memory read at the end."""
    import torch

    import snnconv
    from snnconv import targets
    from snnconv.pipeline import convert, to_cores, to_target
    from snnconv.report import PartitionReport

    sys.path.insert(0, str(HERE))
    from networks import mobilenet_v1, randomize_batchnorm, resnet18

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = randomize_batchnorm(mobilenet_v1(width) if kind == "mobilenet" else resnet18(int(width)))
    calibration = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1)).numpy()
    loihi = targets.get("loihi")
    times = {}
    start = time.perf_counter()
    graph = snnconv.load_torch(model, torch.zeros(1, 3, size, size), exporter="legacy")
    times["import"] = time.perf_counter() - start
    mark = time.perf_counter()
    spiking = convert(graph, calibration)
    times["convert"] = time.perf_counter() - mark
    mark = time.perf_counter()
    quantized = to_target(spiking, loihi)
    times["quantize"] = time.perf_counter() - mark
    mark = time.perf_counter()
    mapped = to_cores(quantized, loihi, chips=10_000, calibration=calibration)
    times["partition+place"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    totals = PartitionReport.from_graph(mapped.graph, loihi).totals
    return {"seconds": {k: round(v, 1) for k, v in times.items()},
            "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "params": int(sum(p.numel() for p in model.parameters())), "cores": totals["cores"],
            "chips": totals["chips"], "neuron_util": round(totals["neuron_util"], 4),
            "axon_util": round(totals["axon_util"], 4), "memory_util": round(totals["memory_util"], 4),
            "synapses": totals["synapses"], "neurons": totals["neurons"],
            "messages_across_chips": totals["messages_across_chips"],
            "messages_within_chip": totals["messages_within_chip"]}


def markdown(rows: dict) -> str:
    lines = ["| network | params | neurons | synapses | cores | chips | neuron % | axon % | memory % | compile s "
             "| peak GB |", "|" + "---|" * 11]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['params']:,} | {r['neurons']:,} | {r['synapses']:,} | {r['cores']:,} | "
                     f"{r['chips']} | {100 * r['neuron_util']:.1f} | {100 * r['axon_util']:.1f} | "
                     f"{100 * r['memory_util']:.1f} | {r['seconds']['total']} | {r['peak_memory_gb']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 4:  # child process
        print(json.dumps(compile_one(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))))
        return
    rows = {}
    for name, (kind, width, size) in NETWORKS.items():
        child = subprocess.run([sys.executable, __file__, kind, str(width), str(size)], capture_output=True,
                               text=True, check=True)
        rows[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(name, rows[name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    import snnconv

    meta = {"snnconv": snnconv.__version__, "machine": platform.machine(), "cpus": 2,
            "note": "peak memory: ru_maxrss of the compiling process"}
    (RESULTS / "compile_scale.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "compile_scale.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
