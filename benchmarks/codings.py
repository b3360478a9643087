"""Accuracy, synaptic operations and modeled energy per inference on loihi2, per coding and T.

For the bundled MNIST CNN and Fashion-MNIST VGG (and the QCFS-trained Fashion VGG of
``models/train_qcfs.py`` where it has been trained), each compiled with its bundled
calibration sample for each T and run on its bundled 1,000 test images:

- rate coding: integrate-and-fire neurons (``neuron="if"``), binary spikes, T = 8, 16, 32;
- graded spikes: ``neuron="graded"``, an integer payload of up to 255 per message, T = 1, 2, 4;
- QCFS: the network trained for T = L (rate-coded IF at T = L, its ceilings as scales).

Per row: accuracy, the ANN's accuracy and MACs (the ANN's own cost, measured at compile
time), and from the chip model's statistics per inference: synaptic operations, messages
(spikes), modeled energy and latency. Writes benchmarks/results/codings.{json,md}.

Run:  python benchmarks/codings.py      # about 5 minutes on 2 cores
"""

from __future__ import annotations

import json
import platform
from importlib import resources
from pathlib import Path

import numpy as np

import snnconv

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = resources.files("snnconv.models")
NETWORKS = {"mnist cnn": ("mnist_cnn.onnx", "mnist"), "fashion vgg": ("fashion_vgg.onnx", "fashion"),
            "fashion vgg qcfs": ("fashion_vgg_qcfs.onnx", "fashion")}
CODINGS = {"rate (if)": ("if", (8, 16, 32)), "graded": ("graded", (1, 2, 4))}


def rows_for(name: str, file: str, data: str) -> list[dict]:
    calibration = np.load(MODELS.joinpath(f"{data}_calib.npz"))["x"]
    test = np.load(MODELS.joinpath(f"{data}_test.npz"))
    path = str(MODELS.joinpath(file))
    ann = float((snnconv.ann.evaluate(snnconv.load_onnx(path), test["x"]).argmax(1) == test["y"]).mean())
    levels = snnconv.load_onnx(path).fact("qcfs_levels")
    codings = {"qcfs (if)": ("if", (levels,))} if levels else CODINGS
    rows = []
    for coding, (neuron, steps) in codings.items():
        for t in steps:
            net = snnconv.compile(path, "loihi2", calibration, timesteps=t, neuron=neuron)
            result = net.run(test["x"], t)
            stats = result.stats
            rows.append({"network": name, "coding": coding, "timesteps": t, "ann_accuracy": ann,
                         "accuracy": result.accuracy(test["y"]), "ann_macs": net.ann["macs"],
                         "synaptic_ops": stats["synaptic_ops"], "messages": stats["spikes"],
                         "energy_uj": stats["energy_uj"], "latency_us": stats["latency_us"]})
            print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| network | coding | T | accuracy | ANN | synaptic ops | / ANN MACs | messages | energy uJ | latency us |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['coding']} | {r['timesteps']} | {100 * r['accuracy']:.1f} | "
                     f"{100 * r['ann_accuracy']:.1f} | {r['synaptic_ops'] / 1e6:.2f} M | "
                     f"{r['synaptic_ops'] / r['ann_macs']:.2f} | {r['messages']:,.0f} | {r['energy_uj']:.1f} | "
                     f"{r['latency_us']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    rows = []
    for name, (file, data) in NETWORKS.items():
        if MODELS.joinpath(file).is_file():
            rows += rows_for(name, file, data)
    meta = {"snnconv": snnconv.__version__, "machine": platform.machine(), "target": "loihi2",
            "samples": "the bundled 1,000 test images of each data set"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "codings.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "codings.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
