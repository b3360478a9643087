"""Accuracy, synaptic operations and modeled energy per inference on loihi2, per coding and T.

For the bundled MNIST CNN and Fashion-MNIST VGG (and the QCFS-trained Fashion VGG of
``models/train_qcfs.py`` where it has been trained), each compiled with its bundled
calibration sample for each T and run on its bundled 1,000 test images:

- rate coding: integrate-and-fire neurons (``neuron="if"``), binary spikes, T = 8, 16, 32;
- graded spikes: ``neuron="graded"``, an integer payload of 8 bits (up to 255 per
  message), T = 1, 2, 4; and on the Fashion VGG at T = 1 with payloads of 2 to 7 bits
  (``payload_bits``: fewer levels, more neurons rounding to 0 and sending nothing);
- burst spikes (Li & Zeng, IJCAI 2022): ``neuron="burst"``, up to ``G`` binary spikes per
  step, each a message, G = 4 at T = 2, 4, 8 (the network scaled by G, as graded ones are);
- QCFS: the network trained for T = L (rate-coded IF at T = L, its ceilings as scales).

Per row: accuracy, the ANN's accuracy and MACs (the ANN's own cost, measured at compile
time), and from the chip model's statistics per inference: synaptic operations, messages
(spikes), modeled energy and latency. Below the table, per network: the cheapest coding
whose accuracy is within 0.3 points of rate coding's at T = 32, and its energy as a
fraction of rate coding's there (issue 18 asks for at most 1/10). Writes
benchmarks/results/codings.{json,md}.

Run:  python benchmarks/codings.py      # about 15 minutes on 2 quiet cores
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
# coding -> (neuron, its options, the T each row is compiled for)
CODINGS = {"rate (if)": ("if", {}, (8, 16, 32)), "graded 8-bit": ("graded", {"payload_bits": 8}, (1, 2, 4)),
           "burst G=4": ("burst", {"burst": 4}, (2, 4, 8))}
PAYLOADS = {f"graded {bits}-bit": ("graded", {"payload_bits": bits}, (1,)) for bits in range(2, 8)}
SWEPT = {"fashion vgg"}  # the networks that the payload widths are measured on
REFERENCE = ("rate (if)", 32)  # the accuracy a coding must reach, within TOLERANCE, and the energy it is held to
TOLERANCE = 0.003


def rows_for(name: str, file: str, data: str) -> list[dict]:
    calibration = np.load(MODELS.joinpath(f"{data}_calib.npz"))["x"]
    test = np.load(MODELS.joinpath(f"{data}_test.npz"))
    path = str(MODELS.joinpath(file))
    ann = float((snnconv.ann.evaluate(snnconv.load_onnx(path), test["x"]).argmax(1) == test["y"]).mean())
    levels = snnconv.load_onnx(path).fact("qcfs_levels")
    codings = {"qcfs (if)": ("if", {}, (levels,))} if levels else {**CODINGS, **(PAYLOADS if name in SWEPT else {})}
    rows = []
    for coding, (neuron, options, steps) in codings.items():
        for t in steps:
            net = snnconv.compile(path, "loihi2", calibration, timesteps=t, neuron=neuron, **options)
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
    return "\n".join(lines) + "\n\n" + "\n".join(verdicts(rows)) + "\n"


def verdicts(rows: list[dict]) -> list[str]:
    """Per network with rate-coding rows: the cheapest row within ``TOLERANCE`` of rate coding's accuracy at
    T = 32, and its energy as a fraction of that row's."""
    lines = []
    for network in dict.fromkeys(r["network"] for r in rows):
        mine = [r for r in rows if r["network"] == network]
        reference = next((r for r in mine if (r["coding"], r["timesteps"]) == REFERENCE), None)
        if reference is None:
            continue
        close = [r for r in mine if r["accuracy"] >= reference["accuracy"] - TOLERANCE - 1e-9 and r is not reference]
        best = min(close, key=lambda r: r["energy_uj"], default=None)
        head = (f"- {network}: rate coding at T = 32 scores {100 * reference['accuracy']:.1f}% for "
                f"{reference['energy_uj']:.1f} uJ; ")
        if best is None:
            lines.append(head + "no other coding comes within 0.3 points.")
            continue
        share = reference["energy_uj"] / best["energy_uj"]
        lines.append(head + f"the cheapest coding within 0.3 points is {best['coding']} at T = {best['timesteps']}, "
                     f"{100 * best['accuracy']:.1f}% for {best['energy_uj']:.1f} uJ: 1/{share:.1f} of the energy "
                     f"({'meets' if share >= 10 else 'misses'} 1/10).")
    return lines


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
