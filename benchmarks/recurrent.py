"""The bundled ReLU RNN (row-sequential MNIST, issue 20) streamed on each target's chip model, on its whole test set.

Issue 20's bar: the SNN within 1 point of the ANN at the default steps per item
(``snnconv.recurrent.DEFAULT_STEPS_PER_ITEM``) for loihi, loihi2 and spinnaker2. Per target
at the default, and on loihi at other steps per item: accuracy on the 1,000 bundled test
sequences (``models/mnist_rnn_test.npz``: 28 items of 28 pixels) beside the ANN's
(onnxruntime-equal IR evaluator), agreement with the ANN's predictions, membrane
saturations, spikes, and latency and energy per item and per sequence from the target's
costs (``snnconv.recurrent_cost``). Compiled on the bundled 200 calibration sequences.

Writes benchmarks/results/recurrent.{json,md}.

Run:  python benchmarks/recurrent.py      # a few minutes on 2 cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from snnconv import ann, recurrent, recurrent_cost
from snnconv import targets as known_targets
from snnconv.frontend import load_onnx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = ("loihi", "loihi2", "spinnaker2")
OTHER_STEPS = (32, 64, 256)  # on loihi: what fewer or more steps per item give


def measure(graph, calibration: np.ndarray, x: np.ndarray, y: np.ndarray, ann_predictions: np.ndarray,
            target: str, steps: int) -> dict:
    program = recurrent.compile(graph, target, calibration, steps_per_item=steps)
    result = recurrent.run(program, x)
    stats = recurrent_cost.statistics(program, known_targets.get(target), result)
    return {"target": target, "steps_per_item": steps, "default": steps == recurrent.DEFAULT_STEPS_PER_ITEM,
            "accuracy": float((result.predictions == y).mean()),
            "agreement_with_ann": float((result.predictions == ann_predictions).mean()),
            "saturations": int(result.saturations), "threshold": program.threshold,
            "lambda_h": program.notes["lambda_h"], "cores": stats["cores"], "spikes_per_sequence": stats["spikes"],
            "synaptic_ops_per_sequence": stats["synaptic_ops"], "latency_us_per_item": stats["per_item"]["latency_us"],
            "latency_us_per_sequence": stats["latency_us"], "energy_uj_per_item": stats["per_item"]["energy_uj"],
            "energy_uj_per_sequence": stats["energy_uj"]}


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [f"# Bundled ReLU RNN on the chip models ({meta['samples']:,} test sequences of {meta['items']} items)", "",
             (f"ANN accuracy {meta['ann_accuracy']:.1%}; default steps per item {meta['default_steps_per_item']}; "
              "issue 20's bar: SNN within 1 point of the ANN at the default."), "",
             ("| target | steps/item | accuracy | vs ANN | same as ANN | saturations | spikes/seq | latency/item "
              "| latency/seq | energy/item | energy/seq |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = " (default)" if r["default"] else ""
        lines.append(f"| {r['target']} | {r['steps_per_item']}{mark} | {r['accuracy']:.1%} | "
                     f"{100 * (r['accuracy'] - meta['ann_accuracy']):+.1f} pt | {r['agreement_with_ann']:.1%} | "
                     f"{r['saturations']} | {r['spikes_per_sequence']:,.0f} | {r['latency_us_per_item']:,.1f} us | "
                     f"{r['latency_us_per_sequence']:,.0f} us | {r['energy_uj_per_item']:,.2f} uJ | "
                     f"{r['energy_uj_per_sequence']:,.1f} uJ |")
    lines += ["", f"Run: `{meta['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    graph = load_onnx(ROOT / "models" / "mnist_rnn.onnx")
    calibration = np.load(ROOT / "models" / "mnist_rnn_calib.npz")["x"]
    test = np.load(ROOT / "models" / "mnist_rnn_test.npz")
    x, y = test["x"], test["y"]
    ann_predictions = ann.evaluate(graph, x).argmax(axis=1)
    default = recurrent.DEFAULT_STEPS_PER_ITEM
    plan = [(target, default) for target in TARGETS] + [("loihi", steps) for steps in OTHER_STEPS]
    rows = []
    for i, (target, steps) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {target}, {steps} steps per item", file=sys.stderr, flush=True)
        rows.append(measure(graph, calibration, x, y, ann_predictions, target, steps))
    meta = {"samples": len(x), "items": int(x.shape[1]), "ann_accuracy": float((ann_predictions == y).mean()),
            "default_steps_per_item": default, "calibration_sequences": len(calibration),
            "command": "python benchmarks/recurrent.py"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recurrent.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "recurrent.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()
