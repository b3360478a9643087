"""ANN vs SNN accuracy at several timesteps, compiling once: ``snnconv eval`` and training loops.

``evaluate(model, (x, y), target="loihi", timesteps=(8, 16, 32))`` imports the model
(a path, an ``onnx.ModelProto``, a ``torch.nn.Module`` or an IR graph), compiles it once
for the target, tuned for the largest T, and runs the chip model once for that T,
reading the output integrators at every smaller T on the way: one simulation gives the
whole accuracy-vs-timesteps curve. Nothing is written to disk, so a training loop can
call it every epoch on the module it is training.

Calibration: the samples given as ``calibration`` (pass training data to keep the test
data unseen), else the first ``CALIBRATION_SAMPLES`` samples of ``data``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from snnconv import ann
from snnconv import options as valid
from snnconv.data import check_labels
from snnconv.errors import BadDataError
from snnconv.progress import Progress, reporting
from snnconv.table import render_table

__all__ = ["CALIBRATION_SAMPLES", "Evaluation", "evaluate"]

CALIBRATION_SAMPLES = 500


@dataclass
class Evaluation:
    """Accuracies of the ANN and of its SNN on the chip model, per T, on the same samples."""

    target: str
    samples: int
    ann: float
    snn: dict[int, float]
    agreement: dict[int, float]  # fraction of samples where the SNN predicts what the ANN does

    def to_dict(self) -> dict:
        return {"target": self.target, "samples": self.samples, "ann_accuracy": self.ann,
                "snn": [{"timesteps": t, "accuracy": self.snn[t], "agreement_with_ann": self.agreement[t]}
                        for t in sorted(self.snn)]}

    def render(self) -> str:
        rows = [[t, f"{100 * self.snn[t]:.2f}%", f"{100 * (self.snn[t] - self.ann):+.2f}",
                 f"{100 * self.agreement[t]:.1f}%"] for t in sorted(self.snn)]
        title = f"ANN accuracy {100 * self.ann:.2f}% on {self.samples:,} samples; SNN on the {self.target} chip model:"
        return title + "\n" + render_table(["T", "SNN accuracy", "vs ANN (points)", "same prediction"], rows)

    def __str__(self) -> str:
        return self.render()


def evaluate(model, data, labels=None, *, target="loihi", timesteps: Sequence[int] = (8, 16, 32), calibration=None,
             example=None, input_shape: tuple[int, ...] | None = None, batch_size: int = 256, device: str = "cpu",
             **options) -> Evaluation:
    """The ANN vs SNN table for ``model`` on ``data``: ``(x, y)``, ``x`` with ``labels``, or (x, y) batches.

    ``options`` go to ``snnconv.compile`` (``percentile``, ``reset``, ``chips``, ...).
    """
    from snnconv.compiled import _load, compile
    from snnconv.snn import CHUNK_ELEMENTS, simulate

    x, y = _samples(data, labels)
    steps = valid.timesteps_list(timesteps)
    batch_size, device = valid.positive(batch_size, "batch_size"), valid.device(device)
    graph, _ = _load(model, example if example is not None else _example(x), input_shape)
    check_labels(y, math.prod(graph.output.shape), "data: labels")
    ann_predictions = ann.evaluate(graph, x).argmax(axis=1)
    with reporting("compiling"):
        net = compile(graph, target, calibration if calibration is not None else x[:CALIBRATION_SAMPLES],
                      timesteps=steps[-1], **options)
    show = Progress("simulating", len(x), "samples")
    predictions = {t: [] for t in steps}
    batch_size = ann.samples_per_batch(net.graph, CHUNK_ELEMENTS, batch_size)
    for start in range(0, len(x), batch_size):
        result = simulate(net.graph, x[start:start + batch_size], steps[-1], checkpoints=steps, device=device)
        for t in steps:
            predictions[t].append(result.predictions(t))
        show(min(len(x), start + batch_size))
    snn = {t: np.concatenate(p) for t, p in predictions.items()}
    return Evaluation(net.target.name, len(x), float((ann_predictions == y).mean()),
                      {t: float((p == y).mean()) for t, p in snn.items()},
                      {t: float((p == ann_predictions).mean()) for t, p in snn.items()})


def _samples(data, labels) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as float32 and integer labels, from an (x, y) pair, x plus labels, or batches of (x, y)."""
    if labels is None and isinstance(data, tuple) and len(data) == 2:
        data, labels = data
    if labels is None and isinstance(data, Iterable) and not hasattr(data, "shape"):
        pairs = [(_numpy(bx), _numpy(by)) for bx, by in data]
        if not pairs:
            raise BadDataError("data: has no samples")
        data, labels = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    if labels is None:
        raise BadDataError("data: no labels; pass (x, y), labels=y, or batches of (x, y)")
    x, y = _numpy(data), _numpy(labels)
    if x.dtype.kind != "f" or x.ndim < 2 or len(x) == 0:
        raise BadDataError(f"data: x must be float samples of shape (N, ...), got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise BadDataError(f"data: labels must be {len(x)} integers, got {y.dtype} of shape {y.shape}")
    return x.astype(np.float32, copy=False), y


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _example(x: np.ndarray):
    import torch

    return torch.from_numpy(x[:1].copy())
