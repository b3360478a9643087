"""What the readout burn-in is worth: each bundled feed-forward model compiled for loihi at T = 16 and 32 as
``snnconv.compile`` does it (tuning, bias correction, then the burn-in chosen on the calibration samples),
and its chip model's accuracy on the bundled test samples read with the chosen burn-in and with every step.

The burn-in is chosen without labels, on the calibration samples (agreement with the ANN);
the test samples only score it. Writes benchmarks/results/burn_in.{json,md}.

Run: ``python benchmarks/burn_in.py`` (about 20 minutes on 2 cores).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

import snnconv
from snnconv.compiled import CompiledNetwork

MODELS = {"mnist": ["mlp", "cnn", "resnet", "mobilenet", "mobilenet_v2"],
          "fashion": ["vgg", "resnet", "mobilenet_v2"]}
TIMESTEPS = (16, 32)
RESULTS = Path(__file__).resolve().parent / "results"


def bundled(name: str) -> dict[str, np.ndarray]:
    with np.load(resources.files("snnconv.models").joinpath(name), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def every_step(net: CompiledNetwork) -> CompiledNetwork:
    """The same network, its readout reading every step."""
    graph = net.graph.rebuilt(dataclasses.replace(layer, burn_in=None) if layer is net.graph.output else layer
                              for layer in net.graph)
    return CompiledNetwork(graph, net.target, dict(net.options))


def row(data: str, model: str, timesteps: int) -> dict:
    calibration, test = bundled(f"{data}_calib.npz")["x"], bundled(f"{data}_test.npz")
    path = str(resources.files("snnconv.models").joinpath(f"{data}_{model}.onnx"))
    started = time.perf_counter()
    net = snnconv.compile(path, "loihi", calibration, timesteps=timesteps)
    seconds = time.perf_counter() - started
    ann = float((snnconv.ann.evaluate(snnconv.load_onnx(path), test["x"]).argmax(1) == test["y"]).mean())
    tuning = net.notes["tuning"]
    return {"model": f"{data}_{model}", "timesteps": timesteps, "ann": ann,
            "burn_in": net.graph.output.burn_in or 0, "agreement": tuning.get("burn_in_agreement"),
            "tuning_samples": tuning["samples"], "compile_s": round(seconds, 1),
            "with_burn_in": net.run(test["x"], timesteps).accuracy(test["y"]),
            "every_step": every_step(net).run(test["x"], timesteps).accuracy(test["y"])}


def main() -> None:
    rows = []
    for data, models in MODELS.items():
        for model in models:
            for timesteps in TIMESTEPS:
                rows.append(row(data, model, timesteps))
                print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "burn_in.json").write_text(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2)
                                          + "\n")
    lines = ["| model | T | ANN % | burn-in chosen | SNN % with it | SNN % every step | difference |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['timesteps']} | {100 * r['ann']:.1f} | {r['burn_in']} | "
              f"{100 * r['with_burn_in']:.1f} | {100 * r['every_step']:.1f} | "
              f"{100 * (r['with_burn_in'] - r['every_step']):+.1f} |" for r in rows]
    (RESULTS / "burn_in.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
