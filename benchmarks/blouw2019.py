"""A published comparison point reproduced with snnconv's cost models: Blouw et al. 2019, keyword spotting on Loihi.

Blouw, Choo, Hunsberger and Eliasmith, "Benchmarking keyword spotting efficiency on
neuromorphic hardware" (arXiv:1812.01739; code and paper source: github.com/abr/power_benchmarks)
ran one keyword spotter at batch 1 on Loihi, a CPU, a GPU, a Jetson TX1 and a Movidius
NCS, and measured dynamic energy per inference (running power minus idle power, divided
by inferences per second). Their network: 390 inputs (MFCC frames), two hidden layers of
256 neurons, 29 outputs (characters); on Loihi each frame is presented for 10 timesteps
(``p_time=10`` in nengo-loihi's keyword-spotting example, which their benchmark adapts).

Here the same network size is built with random weights (He-normal, seed 0; the trained
parameters are not published in a readable form) and inputs drawn from N(0, 1), converted
by snnconv for loihi at T = 10, and benchmarked with ``snnconv.bench``: the chip model for
Loihi, the platform models for the CPU, GPU and edge accelerator. Published figures are
Table 1 of the paper. What differs, and so bounds how close the model can come:

- Blouw et al. ran the first hidden layer off-chip (nengo-loihi's ``on_chip = False``);
  here all three layers are on the chip model, so it models more on-chip work than theirs;
- their spike rates come from trained LIF neurons; here from the converted IF network on
  random data (the rates are reported);
- their measured power includes Loihi's embedded x86 cores, I/O and barrier
  synchronisation each step, which the chip model does not count (only synaptic
  operations, neuron updates, spike hops and static power);
- their CPU, GPU and NCS are a Xeon E5-2630, a Quadro K4000 and a Movidius NCS under
  TensorFlow / NCSDK; the platform models are an EPYC 9654 core, an A100 and an Edge TPU
  (``snnconv/platforms.py``), at their arithmetic and memory traffic, not a framework's.

Writes benchmarks/results/blouw2019.{md,json}.

Run:  python benchmarks/blouw2019.py      # about a minute on 2 cores
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import snnconv

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (390, 256, 256, 29)  # inputs, hidden, hidden, outputs (Blouw et al. 2019, Methodology)
TIMESTEPS = 10  # steps per frame on Loihi (nengo-loihi keyword-spotting example, p_time=10)
CALIBRATION, SAMPLES = 256, 200
# Blouw et al. 2019, Table 1: idle W, running W, dynamic W, inferences per second, dynamic joules per inference.
PUBLISHED = {"Loihi": (0.029, 0.110, 0.081, 296, 0.00027), "CPU (Xeon E5-2630)": (17.01, 28.48, 11.47, 1813.63, 0.0063),
             "GPU (Quadro K4000)": (14.97, 37.83, 22.86, 770.39, 0.0298),
             "Jetson TX1": (2.64, 4.98, 2.34, 419, 0.0056), "Movidius NCS": (0.210, 0.647, 0.437, 300, 0.0015)}
COUNTERPART = {"Loihi": "SNN loihi if T=10", "CPU (Xeon E5-2630)": "ANN server-cpu", "GPU (Quadro K4000)": "ANN gpu",
               "Movidius NCS": "ANN edge"}


def keyword_spotter(seed: int = 0):
    """The 390-256-256-29 ReLU network as ONNX, He-normal weights, zero biases."""
    rng = np.random.default_rng(seed)
    nodes, initializers, previous = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(pairwise(SIZES)):
        weight = rng.normal(0, np.sqrt(2 / fan_in), (fan_out, fan_in)).astype(np.float32)
        initializers += [numpy_helper.from_array(weight, f"w{i}"),
                         numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [previous, f"w{i}", f"b{i}"], [f"h{i}"], transB=1))
        previous = f"h{i}"
        if i < len(SIZES) - 2:
            nodes.append(helper.make_node("Relu", [previous], [f"r{i}"]))
            previous = f"r{i}"
    graph = helper.make_graph(nodes, "keyword_spotter", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                       ["N", SIZES[0]])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", SIZES[-1]])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def compare(result) -> list[dict]:
    """Published against modeled, per device: dynamic energy and time per inference, and their ratios."""
    rows = {row["name"]: row for row in result.rows()}
    comparison = []
    for device, (_, _, _, per_second, joules) in PUBLISHED.items():
        model = rows.get(COUNTERPART.get(device))
        entry = {"device": device, "published_dynamic_uj": joules * 1e6, "published_us_per_inference": 1e6 / per_second}
        if model is not None:
            entry.update({"modeled_as": model["name"], "modeled_dynamic_uj": model["dynamic_energy_uj"],
                          "modeled_latency_us": model["latency_us"],
                          "energy_modeled_over_published": model["dynamic_energy_uj"] / (joules * 1e6),
                          "time_modeled_over_published": model["latency_us"] / (1e6 / per_second)})
        comparison.append(entry)
    return comparison


def ratios(comparison: list[dict]) -> list[dict]:
    """Each conventional device's dynamic energy over Loihi's, published and modeled: who wins, and by how much."""
    loihi = comparison[0]
    return [{"device": c["device"], "published": c["published_dynamic_uj"] / loihi["published_dynamic_uj"],
             "modeled": c["modeled_dynamic_uj"] / loihi["modeled_dynamic_uj"]}
            for c in comparison[1:] if "modeled_dynamic_uj" in c]


def markdown(comparison: list[dict], against: list[dict], config: dict, measured: dict) -> str:
    intro = ("Dynamic energy (running minus idle) and time per inference at batch 1. Published: Table 1 of "
             "arXiv:1812.01739. Modeled: `snnconv.bench` on a 390-256-256-29 network of the same size (random "
             f"weights, N(0, 1) inputs), loihi at T = {TIMESTEPS}; see the script's docstring for what differs.")
    header = ("| device | published µJ | modeled as | modeled µJ | modeled / published | published µs | modeled µs | "
              "modeled / published |")
    lines = ["# Blouw et al. 2019 (keyword spotting on Loihi) against snnconv's cost models", "", intro, "", header,
             "|---" * 8 + "|"]
    for c in comparison:
        if "modeled_as" in c:
            lines.append(f"| {c['device']} | {c['published_dynamic_uj']:,.0f} | {c['modeled_as']} | "
                         f"{c['modeled_dynamic_uj']:,.2f} | {c['energy_modeled_over_published']:.2g} | "
                         f"{c['published_us_per_inference']:,.0f} | {c['modeled_latency_us']:,.2f} | "
                         f"{c['time_modeled_over_published']:.2g} |")
        else:
            lines.append(f"| {c['device']} | {c['published_dynamic_uj']:,.0f} | (no counterpart) | - | - | "
                         f"{c['published_us_per_inference']:,.0f} | - | - |")
    lines += ["", "Each device's dynamic energy over Loihi's (above 1: Loihi uses less):", "",
              "| device | published | modeled |", "|---|---|---|"]
    lines += [f"| {r['device']} | {r['published']:.1f}x | {r['modeled']:.2f}x |" for r in against]
    onnxruntime = next((r for r in measured["runtimes"] if r["runtime"] == "onnxruntime"), None)
    split = ", ".join(f"{k} {v:.2f} µJ" for k, v in config["energy_split_uj"].items())
    rate = config["spikes"] / (sum(SIZES[1:-1]) * TIMESTEPS)  # the hidden layers spike; the output integrates
    lines += ["", (f"The SNN on the chip model: {config['spikes']:,.0f} spikes ({rate:.3f} per hidden neuron and step), "
                   f"{config['synaptic_ops']:,.0f} synaptic "
                   f"operations and {config['neuron_updates']:,.0f} neuron updates per inference on {config['cores']} "
                   f"cores; energy split {split}; agreement with the ANN {100 * config['agreement_with_ann']:.1f}% "
                   f"on {SAMPLES} samples.")]
    if onnxruntime is not None:
        lines.append(f"For scale, onnxruntime runs the same network here in {onnxruntime['median_us']:.1f} µs "
                     f"(median, batch 1, one thread; p10-p90 {onnxruntime['p10_us']:.1f}-{onnxruntime['p90_us']:.1f}"
                     " µs), against the 551 µs per inference of TensorFlow on the Xeon in the paper.")
    return "\n".join(lines) + "\n"


def main() -> None:
    rng = np.random.default_rng(1)
    calibration = rng.normal(size=(CALIBRATION, SIZES[0])).astype(np.float32)
    x = rng.normal(size=(SAMPLES, SIZES[0])).astype(np.float32)
    result = snnconv.bench(keyword_spotter(), ["loihi"], timesteps=[TIMESTEPS], data=x, calibration=calibration,
                           calibration_samples=CALIBRATION)
    comparison = compare(result)
    against = ratios(comparison)
    config = result.snn[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "blouw2019.json").write_text(json.dumps(
        {"published": {k: dict(zip(("idle_w", "running_w", "dynamic_w", "inferences_per_s", "dynamic_j"), v))
                       for k, v in PUBLISHED.items()},
         "comparison": comparison, "dynamic_energy_over_loihi": against, "bench": result.to_dict()}, indent=1) + "\n")
    text = markdown(comparison, against, config, result.measured)
    (RESULTS / "blouw2019.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
