"""ANN vs float-SNN accuracy of every bundled model at T = 4 .. 128, per normalization setting.

Each model is compiled for each T with the bundled calibration digits (as a user would
with ``--timesteps T``) and simulated on the 1,000 bundled test digits (constant-current
input, spiking max pooling). The sweep over percentile, per-layer / per-channel scales
and initial membranes is how the pipeline's defaults were chosen.

Writes benchmarks/results/accuracy.json and accuracy.md. Run:
    python benchmarks/accuracy.py            # full sweep (about 30 minutes on 2 cores)
    python benchmarks/accuracy.py --quick    # the default setting only
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

import snnconv
from snnconv.pipeline import DEFAULT_PERCENTILE, DEFAULT_PER_CHANNEL, convert
from snnconv.snn import simulate

TIMESTEPS = (4, 8, 16, 32, 64, 128)
SETTINGS = [(p, pc, "half") for pc in (False, True) for p in (100.0, 99.999, 99.99, 99.9)] + [
    (p, True, "dither") for p in (99.99, 99.9)] + [("auto", True, "auto")]
RESULTS = Path(__file__).resolve().parent / "results"


def bundled(name: str) -> np.lib.npyio.NpzFile:
    return np.load(resources.files("snnconv.models").joinpath(name), allow_pickle=False)


def measure(model: str, x, y, calibration, percentile: float, per_channel: bool, v_init: str) -> dict:
    graph = snnconv.load_onnx(str(resources.files("snnconv.models").joinpath(f"mnist_{model}.onnx")))
    start = time.perf_counter()
    snn, chosen = {}, {}
    for steps in TIMESTEPS:  # compiled for each T, as a user would with --timesteps T
        conversion = convert(graph, calibration, percentile=percentile, per_channel=per_channel, v_init=v_init,
                             timesteps=steps)
        snn[str(steps)] = float((simulate(conversion.graph, x, steps).predictions() == y).mean())
        chosen[str(steps)] = conversion.notes.get("tuning", {}).get("chosen", {"percentile": percentile, "v_init": v_init})
    return {
        "model": model, "percentile": percentile, "per_channel": per_channel, "v_init": v_init, "chosen": chosen,
        "ann": float((snnconv.evaluate(graph, x).argmax(1) == y).mean()), "snn": snn,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _cell(row: dict, steps: int) -> str:
    """Accuracy, and what tuning chose when it was asked to (e.g. ``98.4 (p99.9, dither)``)."""
    text = f"{100 * row['snn'][str(steps)]:.1f}"
    if row["percentile"] == "auto":
        chosen = row["chosen"][str(steps)]
        text += f" (p{chosen['percentile']:g}, {chosen['v_init']})"
    return text


def markdown(rows: list[dict]) -> str:
    head = "| model | scales | v_init | ANN | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |"
    lines = [head, "|" + "---|" * (4 + len(TIMESTEPS))]
    for r in rows:
        percentile = r["percentile"] if r["percentile"] == "auto" else f"p{r['percentile']:g}"
        scales = f"{percentile} {'per channel' if r['per_channel'] else 'per layer'}"
        cells = " | ".join(_cell(r, t) for t in TIMESTEPS)
        lines.append(f"| {r['model']} | {scales} | {r['v_init']} | {100 * r['ann']:.1f} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="measure only the default setting")
    args = parser.parse_args()
    torch.set_num_threads(2)
    test, calib = bundled("mnist_test.npz"), bundled("mnist_calib.npz")
    x, y, calibration = test["x"], test["y"], calib["x"]
    settings = [("auto", DEFAULT_PER_CHANNEL, "auto")] if args.quick else SETTINGS
    rows = []
    for model in ("mlp", "cnn", "resnet"):
        for percentile, per_channel, v_init in settings:
            rows.append(measure(model, x, y, calibration, percentile, per_channel, v_init))
            print(markdown(rows[-1:]).splitlines()[2], flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(),
            "test_digits": int(len(y)), "calibration_digits": int(len(calibration)),
            "untuned_default": {"percentile": DEFAULT_PERCENTILE, "per_channel": DEFAULT_PER_CHANNEL}}
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"accuracy{suffix}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / f"accuracy{suffix}.md").write_text(markdown(rows))
    print(f"wrote {RESULTS / f'accuracy{suffix}.md'}")


if __name__ == "__main__":
    main()
