"""The bundled two-layer ReLU RNN (row-sequential MNIST, ``torch.nn.RNN(num_layers=2)``) on the chip models.

Issue 20's stacked layers: each layer's window for item ``t`` reads the layer below's
spikes of the same steps (``snnconv.recurrent``'s docstring). On the 1,000 bundled test
sequences, compiled on the 200 bundled calibration sequences: the ANN (onnxruntime-equal
IR evaluator), the SNN on loihi, loihi2 and spinnaker2 at the default steps per item and
on loihi at 256, and the same network in float (``target=None``: no chip precision) at
the default, to separate what the streaming costs from what quantization costs. Rows as
``benchmarks/recurrent.py``'s.

Writes benchmarks/results/recurrent_stacked.{json,md}.

Run:  python benchmarks/recurrent_stacked.py      # several minutes on 2 cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recurrent import measure  # noqa: E402

from snnconv import ann, recurrent  # noqa: E402
from snnconv.frontend import load_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PLAN = (*((target, recurrent.DEFAULT_STEPS_PER_ITEM) for target in ("loihi", "loihi2", "spinnaker2")), ("loihi", 256))


def float_row(graph, calibration: np.ndarray, x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> dict:
    program = recurrent.compile(graph, None, calibration)
    predictions = recurrent.run(program, x).predictions
    return {"target": "float (no chip precision)", "steps_per_item": program.steps_per_item, "default": True,
            "accuracy": float((predictions == y).mean()), "agreement_with_ann": float((predictions == reference).mean())}


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [f"# Bundled two-layer ReLU RNN ({meta['samples']:,} test sequences of {meta['items']} items)", "",
             (f"ANN accuracy {meta['ann_accuracy']:.1%}; default steps per item {meta['default_steps_per_item']}; "
              f"per-layer lambda {', '.join(f'{s:.3g}' for s in meta['lambda_layers'])}."), "",
             "| target | steps/item | accuracy | vs ANN | same as ANN | saturations | latency/seq | energy/seq |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = " (default)" if r["default"] else ""
        cost = (f"{r['saturations']} | {r['latency_us_per_sequence']:,.0f} us | {r['energy_uj_per_sequence']:,.1f} uJ"
                if "saturations" in r else "- | - | -")
        lines.append(f"| {r['target']} | {r['steps_per_item']}{mark} | {r['accuracy']:.1%} | "
                     f"{100 * (r['accuracy'] - meta['ann_accuracy']):+.1f} pt | {r['agreement_with_ann']:.1%} | {cost} |")
    lines += ["", f"Run: `{meta['command']}`", ""]
    return "\n".join(lines)


def main() -> None:
    graph = load_onnx(ROOT / "models" / "mnist_rnn2.onnx")
    calibration = np.load(ROOT / "models" / "mnist_rnn_calib.npz")["x"]
    test = np.load(ROOT / "models" / "mnist_rnn_test.npz")
    x, y = test["x"], test["y"]
    reference = ann.evaluate(graph, x).argmax(axis=1)
    rows = []
    for i, (target, steps) in enumerate(PLAN, 1):
        print(f"[{i}/{len(PLAN) + 1}] {target} at {steps} steps per item", flush=True)
        rows.append(measure(graph, calibration, x, y, reference, target, steps))
    print(f"[{len(PLAN) + 1}/{len(PLAN) + 1}] float", flush=True)
    rows.append(float_row(graph, calibration, x, y, reference))
    meta = {"samples": len(x), "items": x.shape[1], "ann_accuracy": float((reference == y).mean()),
            "default_steps_per_item": recurrent.DEFAULT_STEPS_PER_ITEM,
            "lambda_layers": recurrent.compile(graph, None, calibration).notes["lambda_layers"],
            "command": "python benchmarks/recurrent_stacked.py"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recurrent_stacked.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "recurrent_stacked.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()
