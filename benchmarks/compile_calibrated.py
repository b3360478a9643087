"""Compile time on the path users call: ``snnconv.compile`` with calibration data and default options.

MobileNet-v1 (128 x 128 x 3) and ResNet-18 (224 x 224 x 3) with random weights and
batch-norm statistics (``benchmarks/networks.py``) are exported to ONNX once, then each
is compiled for loihi in a fresh process, as ``snnconv compile NET.onnx --target loihi
--calibration calib.npz --chips 10000`` does (the same call):

    snnconv.compile("NET.onnx", "loihi", images, chips=10_000)

with 64 random calibration images and every other option at its default (T = 32,
``tune="fast"``). ``chips`` is raised because neither network fits loihi's default
board. The time is the child process's wall time, starting Python and importing torch
included; the tuning and bias-correction notes say how many samples the work budget
allowed. Also the ``snnconv demo`` command.
Writes benchmarks/results/compile_calibrated.{json,md}.

Run:  python benchmarks/compile_calibrated.py      # about 4 minutes on 2 cores
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from networks import mobilenet_v1, randomize_batchnorm, resnet18

NETWORKS = {"mobilenet_v1 128x128": (lambda: mobilenet_v1(1.0), 128),
            "resnet18 224x224": (lambda: resnet18(64), 224)}
CALIBRATION_IMAGES = 64


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=tempfile.gettempdir())
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, done.stdout


def child(onnx_path: str, data: str) -> None:
    """In a fresh process: compile as a user does, print what tuning and bias correction did."""
    import snnconv

    net = snnconv.compile(onnx_path, "loihi", np.load(data)["x"], chips=10_000)
    tuning, bias = net.notes["tuning"], net.notes["correct_bias"]
    print(json.dumps({"tuning_samples": tuning["samples"], "tuning_skipped": "skipped" in tuning,
                      "bias_samples": bias["samples"]}))


def compile_one(make, size: int, folder: Path) -> dict:
    torch.manual_seed(0)
    model = randomize_batchnorm(make()).eval()
    onnx_path, data = folder / f"{size}.onnx", folder / f"{size}.npz"
    torch.onnx.export(model, torch.zeros(1, 3, size, size), onnx_path, dynamo=False)
    images = torch.randn(CALIBRATION_IMAGES, 3, size, size, generator=torch.Generator().manual_seed(1))
    np.savez(data, x=images.numpy())
    seconds, out = timed([sys.executable, __file__, str(onnx_path), str(data)])
    return {"seconds": round(seconds, 1), **json.loads(out.strip().splitlines()[-1]),
            "calibration_images": CALIBRATION_IMAGES}


def markdown(rows: dict) -> str:
    lines = ["| network | compile s | tuning | bias-correction samples |", "|---|---|---|---|"]
    for name, r in rows.items():
        if "tuning_samples" not in r:
            lines.append(f"| {name} | {r['seconds']} | | |")
            continue
        tuning = "skipped (over budget)" if r["tuning_skipped"] else f"{r['tuning_samples']} samples"
        lines.append(f"| {name} | {r['seconds']} | {tuning} | {r['bias_samples']} of {r['calibration_images']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 3:
        child(*sys.argv[1:])
        return
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (make, size) in NETWORKS.items():
            rows[name] = compile_one(make, size, Path(tmp))
            print(name, rows[name], flush=True)
        seconds, _ = timed([str(Path(sys.executable).with_name("snnconv")), "demo", "-q"])
        rows["snnconv demo"] = {"seconds": round(seconds, 1)}
    import snnconv

    meta = {"snnconv": snnconv.__version__, "machine": platform.machine(), "cpus": 2,
            "call": "snnconv.compile(NET.onnx, 'loihi', 64 images, chips=10_000)"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile_calibrated.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "compile_calibrated.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
