"""ANN vs SNN accuracy of every bundled model at T = 4 .. 128, in float and per target.

The models: the MNIST MLP, CNN and ResNet (models/train.py; 500 calibration and 1,000 test
digits) and the Fashion-MNIST VGG-style CNN with max pooling and ResNet
(models/train_fashion.py; 500 calibration and 1,000 test images of clothes).

Default: each model is compiled for each T as a user would (``convert(..., timesteps=T)``:
tuning on the bundled calibration images and bias correction) and simulated on the 1,000
bundled test images of its data set (constant-current input, spiking max pooling). Writes
benchmarks/results/accuracy.{json,md}.

``--targets``: each float compilation is then quantized for every target
(``to_target``; Loihi also with reset to zero instead of its emulated subtractive
reset) and the integer SNN simulated. Writes accuracy_targets.{json,md}.

``--neurons``: each model compiled for loihi with every neuron model (``snnconv.neurons``):
integrate-and-fire, and leaky IF at decays of 1/256, 1/64 and 1/16 per step (Loihi's
decay_v 16, 64, 256), the integer SNN simulated. Writes accuracy_neurons.{json,md}.

``--ablation``: the same models without tuning or bias correction, over percentile,
per-layer / per-channel scales and initial membranes (each compiled once, simulated once
to T = 128 with checkpoints): how much each choice matters. Writes accuracy_ablation.*.

``--target NAME``: each model compiled for the target per T as ``snnconv.compile`` does it
(tuned, bias-corrected, quantized, partitioned) and run on the integer chip model
(``net.run``), with synaptic operations per inference. With ``--test-set full`` the
official test set (Fashion-MNIST's 10,000 images, ``testsets.py``; ``--test-samples N``:
its first N), ``--timesteps`` the T, and ``--out NAME`` the results file
(benchmarks/results/NAME.{json,md}). The issue-18 floors (Fashion VGG on loihi2)::

    python benchmarks/accuracy.py --models fashion_vgg fashion_resnet --target loihi2 \
        --test-set full --test-samples 2000 --timesteps 4 8 16 32 64 --out accuracy_fashion_loihi2

Run:
    python benchmarks/accuracy.py              # about 20 minutes on 2 cores
    python benchmarks/accuracy.py --targets    # about 20 minutes (T = 8, 16, 32, 64)
    python benchmarks/accuracy.py --ablation   # about 15 minutes
    python benchmarks/accuracy.py --neurons    # about 15 minutes
    python benchmarks/accuracy.py --models fashion_vgg fashion_resnet   # only these; their
        # rows replace their earlier rows in the results file, the other models' rows stay

(The times are for the three MNIST models; the two Fashion-MNIST ones take longer.)
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
from testsets import official_test

import snnconv
from snnconv import ann, targets
from snnconv.pipeline import convert, to_target
from snnconv.snn import simulate

TIMESTEPS = (4, 8, 16, 32, 64, 128)
TARGET_TIMESTEPS = (8, 16, 32, 64)  # --targets: five targets and a reset variant per T; --neurons
NEURONS = [("if", 0), ("lif", 16), ("lif", 64), ("lif", 256)]  # --neurons: model and decay in 4096ths
# model -> (ONNX file, data set: the prefix of its bundled <prefix>_calib.npz and <prefix>_test.npz)
MODELS = {"mlp": ("mnist_mlp.onnx", "mnist"), "cnn": ("mnist_cnn.onnx", "mnist"),
          "resnet": ("mnist_resnet.onnx", "mnist"), "fashion_vgg": ("fashion_vgg.onnx", "fashion"),
          "fashion_resnet": ("fashion_resnet.onnx", "fashion")}
ABLATION = [(p, pc, "half") for pc in (False, True) for p in (100.0, 99.999, 99.99, 99.9)] + [
    (p, True, "dither") for p in (99.99, 99.9)]
RESULTS = Path(__file__).resolve().parent / "results"


def bundled(name: str) -> np.lib.npyio.NpzFile:
    return np.load(resources.files("snnconv.models").joinpath(name), allow_pickle=False)


def load(model: str) -> snnconv.Graph:
    return snnconv.load_onnx(str(resources.files("snnconv.models").joinpath(MODELS[model][0])))


def merged(rows: list[dict], path: Path) -> list[dict]:
    """``rows`` with the earlier rows (in ``path``) of the models not measured now, in ``MODELS`` order."""
    measured = {row["model"] for row in rows}
    earlier = json.loads(path.read_text())["rows"] if path.exists() else []
    kept = [row for row in earlier if row["model"] not in measured] + rows
    order = list(MODELS)
    return sorted(kept, key=lambda row: order.index(row["model"]) if row["model"] in order else len(order))


def measure_compiled_per_t(model: str, x, y, calibration) -> dict:
    """The pipeline as users get it: compiled (tuned, bias-corrected) for each T."""
    graph = load(model)
    start = time.perf_counter()
    snn, chosen = {}, {}
    for steps in TIMESTEPS:
        conversion = convert(graph, calibration, timesteps=steps)
        snn[str(steps)] = float((simulate(conversion.graph, x, steps).predictions() == y).mean())
        chosen[str(steps)] = conversion.notes["tuning"]["chosen"]
    return {"model": model, "setting": "tuned + bias correction", "chosen": chosen,
            "ann": float((ann.evaluate(graph, x).argmax(1) == y).mean()), "snn": snn,
            "seconds": round(time.perf_counter() - start, 1)}


def measure_on_target(model: str, x, y, calibration, target: str, steps: tuple[int, ...]) -> dict:
    """The command-line path on one target: ``snnconv.compile`` per T (defaults: tuned, bias-corrected), ``net.run``."""
    path = str(resources.files("snnconv.models").joinpath(MODELS[model][0]))
    start = time.perf_counter()
    snn, chosen, ops = {}, {}, {}
    for t in steps:
        net = snnconv.compile(path, target, calibration, timesteps=t)
        result = net.run(x)
        snn[str(t)] = float((result.predictions == y).mean())
        chosen[str(t)] = net.notes.get("tuning", {}).get("chosen")
        ops[str(t)] = result.stats["synaptic_ops"]
        print(f"  {model} {target} T={t}: {100 * snn[str(t)]:.2f}% {chosen[str(t)]} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return {"model": model, "setting": f"{target}, compiled per T (defaults)", "chosen": chosen,
            "ann": float((ann.evaluate(load(model), x).argmax(1) == y).mean()), "snn": snn, "synaptic_ops": ops,
            "seconds": round(time.perf_counter() - start, 1)}


def measure_targets(model: str, x, y, calibration) -> list[dict]:
    """Per T: the float compilation, then the same quantized for every target (and Loihi with reset to zero)."""
    graph = load(model)
    ann_accuracy = float((ann.evaluate(graph, x).argmax(1) == y).mean())
    variants = [("float SNN", None, "emulate")] + [(name, name, "emulate") for name in targets.names()] + [
        (f"{name} (reset to zero)", name, "zero") for name in targets.names()
        if "subtract" not in targets.get(name).neuron.reset]
    rows = {label: {"model": model, "setting": label, "ann": ann_accuracy, "snn": {}, "saturations": {}}
            for label, _, _ in variants}
    for steps in TARGET_TIMESTEPS:
        conversion = convert(graph, calibration, timesteps=steps)
        for label, target, reset in variants:
            compiled = conversion if target is None else to_target(conversion, targets.get(target), steps, reset)
            result = simulate(compiled.graph, x, steps)
            rows[label]["snn"][str(steps)] = float((result.predictions() == y).mean())
            rows[label]["saturations"][str(steps)] = sum(result.saturations.values())
        print(model, steps, {label: row["snn"][str(steps)] for label, row in rows.items()}, flush=True)
    return list(rows.values())


def measure_neurons(model: str, x, y, calibration) -> list[dict]:
    """Per T and neuron model: compiled (tuned, bias-corrected) for loihi, the integer SNN's accuracy."""
    graph = load(model)
    ann_accuracy = float((ann.evaluate(graph, x).argmax(1) == y).mean())
    rows = {(neuron, decay): {"model": model, "setting": f"loihi, {neuron}" + (f" decay {decay}/4096" if decay else ""),
                              "ann": ann_accuracy, "snn": {}} for neuron, decay in NEURONS}
    for steps in TARGET_TIMESTEPS:
        for (neuron, decay), row in rows.items():
            conversion = convert(graph, calibration, timesteps=steps, neuron=neuron, decay=decay)
            compiled = to_target(conversion, targets.get("loihi"), steps)
            row["snn"][str(steps)] = float((simulate(compiled.graph, x, steps).predictions() == y).mean())
        print(model, steps, {row["setting"]: row["snn"][str(steps)] for row in rows.values()}, flush=True)
    return list(rows.values())


def measure_untuned(model: str, x, y, calibration, percentile: float, per_channel: bool, v_init: str) -> dict:
    """One fixed setting, no tuning or correction: compiled once, read at every T."""
    graph = load(model)
    start = time.perf_counter()
    spiking = convert(graph, calibration, percentile=percentile, per_channel=per_channel, v_init=v_init).graph
    result = simulate(spiking, x, max(TIMESTEPS), checkpoints=TIMESTEPS)
    setting = f"p{percentile:g} {'per channel' if per_channel else 'per layer'}, v_init {v_init}"
    return {"model": model, "setting": setting, "ann": float((ann.evaluate(graph, x).argmax(1) == y).mean()),
            "snn": {str(t): float((result.predictions(t) == y).mean()) for t in TIMESTEPS},
            "seconds": round(time.perf_counter() - start, 1)}


def _cell(row: dict, steps: int, decimals: int = 1) -> str:
    """Accuracy, and what tuning chose where it ran (e.g. ``98.4 (p99.9, dither)``)."""
    text = f"{100 * row['snn'][str(steps)]:.{decimals}f}"
    if "chosen" in row:
        chosen = row["chosen"][str(steps)]
        text += f" (p{chosen['percentile']:g}, {chosen['v_init']})" if chosen else ""
    return text


def markdown(rows: list[dict], decimals: int = 1) -> str:
    """The table; ``decimals``: 2 where a test set is large enough to resolve 0.05 points (2,000 images and more)."""
    steps = sorted({int(t) for row in rows for t in row["snn"]})
    head = "| model | setting | ANN | " + " | ".join(f"T={t}" for t in steps) + " |"
    lines = [head, "|" + "---|" * (3 + len(steps))]
    for r in rows:
        cells = " | ".join(_cell(r, t, decimals) if str(t) in r["snn"] else "-" for t in steps)
        lines.append(f"| {r['model']} | {r['setting']} | {100 * r['ann']:.{decimals}f} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablation", action="store_true", help="fixed settings without tuning or bias correction")
    parser.add_argument("--targets", action="store_true", help="integer SNN accuracy on every target")
    parser.add_argument("--neurons", action="store_true", help="integer SNN accuracy with each neuron model (loihi)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="measure only these; their rows replace their earlier ones in the results file")
    parser.add_argument("--target", help="compile for this target per T and run the integer chip model")
    parser.add_argument("--test-set", choices=("bundled", "full"), default="bundled",
                        help="the bundled 1,000 test images, or the official test set (testsets.py)")
    parser.add_argument("--test-samples", type=int, help="with --test-set full: its first N images")
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS), help="with --target: the T")
    parser.add_argument("--out", help="results file name (default from the mode)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for model in args.models:
        test, calib = bundled(f"{MODELS[model][1]}_test.npz"), bundled(f"{MODELS[model][1]}_calib.npz")
        x, y, calibration = test["x"], test["y"], calib["x"]
        if args.test_set == "full":
            x, y = official_test(MODELS[model][1], args.test_samples)
        if args.target:
            rows.append(measure_on_target(model, x, y, calibration, args.target, tuple(args.timesteps)))
            print(markdown(rows[-1:]).splitlines()[2], flush=True)
            continue
        if args.targets or args.neurons:
            rows += (measure_targets if args.targets else measure_neurons)(model, x, y, calibration)
            continue
        for setting in ABLATION if args.ablation else [None]:
            rows.append(measure_compiled_per_t(model, x, y, calibration) if setting is None
                        else measure_untuned(model, x, y, calibration, *setting))
            print(markdown(rows[-1:]).splitlines()[2], flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(),
            "test_digits": len(y), "calibration_digits": len(calibration),
            "test_set": ("official test set, first " + str(len(y))) if args.test_set == "full" else "bundled"}
    name = args.out or ("accuracy_ablation" if args.ablation else "accuracy_targets" if args.targets
            else "accuracy_neurons" if args.neurons else "accuracy")
    rows = merged(rows, RESULTS / f"{name}.json")
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(rows, 2 if len(y) >= 2000 else 1))
    print(f"wrote {RESULTS / (name + '.md')}")


if __name__ == "__main__":
    main()
