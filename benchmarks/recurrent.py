"""The bundled ReLU RNN (row-sequential MNIST, issue 20) streamed on each target's chip model, on its whole test set.

Issue 20's bar: the SNN within 1 point of the ANN at the default steps per item
(``snnconv.recurrent.DEFAULT_STEPS_PER_ITEM``) for loihi, loihi2 and spinnaker2. Per target
at the default, and on loihi at other steps per item: accuracy on the 1,000 bundled test
sequences (``models/mnist_rnn_test.npz``: 28 items of 28 pixels) beside the ANN's
(onnxruntime-equal IR evaluator), agreement with the ANN's predictions, membrane
saturations, spikes, and latency and energy per item and per sequence from the target's
costs (``snnconv.recurrent_cost``). Compiled on the bundled 200 calibration sequences.

Where the points go (``ablation``): the same float network (``target=None``, at the
default K and percentile) under what-if variants of the streaming semantics, simulated
here in numpy: the ANN with ``h`` clipped at ``lambda_h`` (rates cannot exceed 1); the
ANN with ``h / lambda_h`` clipped and rounded to ``1/K`` per item (a window's spike count, nothing
carried); the SNN restarting every item at ``theta/2`` (snnconv before the rectified
carry); the same with the recurrent current spread evenly over the window (no spike
timing); and the SNN as built (the rectified carry), which must equal
``snnconv.recurrent.run``'s float predictions (checked: the what-if simulator is the
built one when its switches are off).

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


def _stream(program, x: np.ndarray, carry: bool, even: bool) -> np.ndarray:
    """Float streaming with switches: ``carry`` (clip to [0, theta] at an item's start, else restart at v_init),
    ``even`` (each step of a window gets the window's mean recurrent current). Final-item logits."""
    k, theta = program.steps_per_item, program.threshold
    current = x.astype(np.float64) @ program.input_weight.T + program.input_bias
    previous = np.zeros((k, len(x), program.hidden))
    v = np.full((len(x), program.hidden), program.v_init)
    for t in range(x.shape[1]):
        incoming = previous @ program.recurrent.T + current[:, t]
        if even:
            incoming = np.broadcast_to(incoming.mean(axis=0), incoming.shape)
        v = np.clip(v, 0.0, theta) if carry else np.full_like(v, program.v_init)
        spikes = np.zeros_like(previous)
        for step in range(k):
            v = v + incoming[step]
            spikes[step] = v >= theta
            v = v - spikes[step] * theta
        previous = spikes
    return previous.sum(axis=0) @ program.output_weight.T / k + program.output_bias


def ablation(graph, calibration: np.ndarray, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Accuracy of the float network under each what-if variant (see the module docstring)."""
    program = recurrent.compile(graph, None, calibration)
    _, cell, head, _ = recurrent.parts(graph)
    scale = program.notes["lambda_h"]
    w, u, b = (np.asarray(a, np.float64) for a in (cell.weight, cell.recurrent, cell.bias))

    def ann_variant(limit: float, levels: int | None) -> np.ndarray:
        h = np.zeros((len(x), len(b)))
        for item in np.moveaxis(x.astype(np.float64), 1, 0):
            h = np.clip(item @ w.T + h @ u.T + b, 0.0, limit)
            if levels:
                h = np.floor(h / scale * levels + 0.5) / levels * scale
        return h @ np.asarray(head.weight, np.float64).T + head.bias

    built = _stream(program, x, carry=True, even=False)
    if not np.array_equal(built.argmax(1), recurrent.run(program, x).predictions):
        raise AssertionError("the what-if simulator with its switches off differs from snnconv.recurrent.run")
    variants = {"ANN": ann_variant(np.inf, None), "ANN, h clipped at lambda_h": ann_variant(scale, None),
                "ANN, h clipped and rounded to 1/K of lambda_h per item": ann_variant(scale, program.steps_per_item),
                "SNN, restart at theta/2 per item": _stream(program, x, carry=False, even=False),
                "SNN, restart, recurrent current spread evenly": _stream(program, x, carry=False, even=True),
                "SNN as built (rectified carry)": built}
    reference = variants["ANN"].argmax(1)
    return [{"variant": name, "accuracy": float((out.argmax(1) == y).mean()),
             "agreement_with_ann": float((out.argmax(1) == reference).mean())} for name, out in variants.items()]


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
    lines += ["", (f"Where the points go: the float network (no chip precision) at K = "
                   f"{meta['default_steps_per_item']}, what-if variants of the streaming semantics (`ablation` in "
                   "the script)"), "",
              "| variant | accuracy | same as ANN |", "|---|---:|---:|"]
    lines += [f"| {r['variant']} | {r['accuracy']:.1%} | {r['agreement_with_ann']:.1%} |" for r in meta["ablation"]]
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
    print("ablation (float, what-if variants)", file=sys.stderr, flush=True)
    variants = ablation(graph, calibration, x, y)
    meta = {"samples": len(x), "items": int(x.shape[1]), "ann_accuracy": float((ann_predictions == y).mean()),
            "default_steps_per_item": default, "calibration_sequences": len(calibration),
            "command": "python benchmarks/recurrent.py", "ablation": variants}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recurrent.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "recurrent.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


if __name__ == "__main__":
    main()
