"""The largest model-zoo files compiled, saved and loaded back: time, artifact size, peak memory.

onnx's backend test data ships real architectures with random weights
(``onnx/backend/test/data/light``). ResNet-50, VGG-19 and DenseNet-121 compile for loihi
at T = 4 without tuning (2 random calibration images: this measures the compiler, not
accuracy), on the chips each needs, and the artifact is written and read back. Compile and
load each run in a fresh process, so each peak memory (ru_maxrss) is its own. Writes
benchmarks/results/compile_zoo.{json,md}.

Run:  python benchmarks/compile_zoo.py [NAME ...]   # all: about 40 minutes and up to 17 GB on 2 cores

With names, only those run and their rows replace the ones in the results file.
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
# The loihi chips (128 cores each) each network's cores need at T = 4, as `place` reports them.
NETWORKS = {"light_resnet50": 332, "light_vgg19": 1901, "light_densenet121": 2084}


def _peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def compile_one(name: str, chips: int, output: str) -> dict:
    """Runs in its own process: compile and save."""
    import numpy as np
    import onnx

    import snnconv

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"{name}.onnx"
    shape = snnconv.load_onnx(path).input.shape
    calibration = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    start = time.perf_counter()
    net = snnconv.compile(path, "loihi", calibration, timesteps=4, tune="off", chips=chips)
    compiled = time.perf_counter() - start
    mark = time.perf_counter()
    saved = net.save(output)
    mapping = net.graph.fact("mapping")
    return {"compile_s": round(compiled, 1), "save_s": round(time.perf_counter() - mark, 1),
            "compile_peak_gb": _peak_gb(), "cores": len(mapping.cores), "chips": mapping.chips,
            "tiles": sum(len(core.tiles) for core in mapping.cores),
            "routes": sum(len(core.routes) for core in mapping.cores),
            "artifact_mb": round(saved.stat().st_size / 2**20, 1)}


def load_one(output: str) -> dict:
    """Runs in its own process: load (every check of ``snnconv.artifact``) and nothing else."""
    import snnconv

    start = time.perf_counter()
    net = snnconv.load(output)
    return {"load_s": round(time.perf_counter() - start, 1), "load_peak_gb": _peak_gb(),
            "loaded_cores": len(net.graph.fact("mapping").cores)}


def markdown(rows: dict) -> str:
    lines = ["| network | cores | chips | tiles | routes | compile s | compile peak GB | save s | artifact MB "
             "| load s | load peak GB |", "|" + "---|" * 11]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} |" + " |" * 9)
            continue
        lines.append(f"| {name} | {r['cores']:,} | {r['chips']:,} | {r['tiles']:,} | {r['routes']:,} | "
                     f"{r['compile_s']} | {r['compile_peak_gb']} | {r['save_s']} | {r['artifact_mb']} | "
                     f"{r['load_s']} | {r['load_peak_gb']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["compile"]:  # child processes
        print(json.dumps(compile_one(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
        return
    if sys.argv[1:2] == ["load"]:
        print(json.dumps(load_one(sys.argv[2])))
        return
    import tempfile

    import snnconv

    chosen = sys.argv[1:] or list(NETWORKS)
    unknown = set(chosen) - set(NETWORKS)
    if unknown:
        sys.exit(f"unknown network(s) {sorted(unknown)}; choose from {list(NETWORKS)}")
    saved = RESULTS / "compile_zoo.json"
    rows = json.loads(saved.read_text())["rows"] if sys.argv[1:] and saved.exists() else {}
    with tempfile.TemporaryDirectory() as folder:
        for name in chosen:
            chips = NETWORKS[name]
            output = str(Path(folder) / f"{name}.snn")
            row = {}
            for command in (["compile", name, str(chips), output], ["load", output]):
                child = subprocess.run([sys.executable, __file__, *command], capture_output=True, text=True, check=False)
                if child.returncode:  # a refusal is a result too: its last line says what
                    last = child.stderr.strip().splitlines()[-1:] or [f"killed by signal {-child.returncode}"]
                    row["error"] = last[0]
                    break
                row.update(json.loads(child.stdout.strip().splitlines()[-1]))
            rows[name] = row
            print(name, row, flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"snnconv": snnconv.__version__, "machine": platform.machine(), "cpus": 2, "timesteps": 4,
            "note": "peak memory: ru_maxrss of the compiling and of the loading process"}
    rows = {name: rows[name] for name in NETWORKS if name in rows}
    saved.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "compile_zoo.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
