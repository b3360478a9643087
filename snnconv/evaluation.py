"""ANN vs SNN accuracy at several timesteps, compiling once: ``snnconv eval`` and training loops.

``evaluate(model, (x, y), target="loihi", timesteps=(8, 16, 32))`` imports the model
(a path, an ``onnx.ModelProto``, a ``torch.nn.Module`` or an IR graph), compiles it once
for the target, tuned for the largest T, and runs the chip model once for that T,
reading the output integrators at every smaller T on the way: one simulation gives the
whole accuracy-vs-timesteps curve. Nothing is written to disk, so a training loop can
call it every epoch on the module it is training.

Calibration: the samples given as ``calibration`` (pass training data to keep the test
data unseen), else the first ``CALIBRATION_SAMPLES`` samples of ``data``.

Beyond top-1, how faithful the SNN's outputs are, per T, against the ANN's outputs before
any output function (the logits of a classifier, the raw values of any other head), as
the chip's output integrators carry them: the relative RMS error
``sqrt(mean((snn - ann)^2)) / sqrt(mean(ann^2))`` and the mean cosine similarity of each
sample's output vector with the ANN's.
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
    rms_error: dict[int, float]  # relative RMS error of the SNN's outputs against the ANN's
    cosine: dict[int, float]  # mean cosine similarity of each sample's output vector with the ANN's

    def to_dict(self) -> dict:
        return {"target": self.target, "samples": self.samples, "ann_accuracy": self.ann,
                "snn": [{"timesteps": t, "accuracy": self.snn[t], "agreement_with_ann": self.agreement[t],
                         "relative_rms_error": self.rms_error[t], "cosine_similarity": self.cosine[t]}
                        for t in sorted(self.snn)]}

    def render(self) -> str:
        rows = [[t, f"{100 * self.snn[t]:.2f}%", f"{100 * (self.snn[t] - self.ann):+.2f}",
                 f"{100 * self.agreement[t]:.1f}%", f"{self.rms_error[t]:.3f}", f"{self.cosine[t]:.4f}"]
                for t in sorted(self.snn)]
        title = f"ANN accuracy {100 * self.ann:.2f}% on {self.samples:,} samples; SNN on the {self.target} chip model:"
        return title + "\n" + render_table(["T", "SNN accuracy", "vs ANN (points)", "same prediction",
                                            "output RMS error", "output cosine"], rows)

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
    ann_outputs = ann.evaluate(graph, x, graph.output.inputs[0]).reshape(len(x), -1)  # before any output function
    ann_predictions = ann_outputs.argmax(axis=1)
    with reporting("compiling"):
        net = compile(graph, target, calibration if calibration is not None else x[:CALIBRATION_SAMPLES],
                      timesteps=steps[-1], **options)
    show = Progress("simulating", len(x), "samples")
    outputs = {t: [] for t in steps}
    batch_size = ann.samples_per_batch(net.graph, CHUNK_ELEMENTS, batch_size)
    for start in range(0, len(x), batch_size):
        result = simulate(net.graph, x[start:start + batch_size], steps[-1], checkpoints=steps, device=device)
        for t in steps:
            outputs[t].append(result.outputs[t])
        show(min(len(x), start + batch_size))
    snn = {t: np.concatenate(o).reshape(len(x), -1) for t, o in outputs.items()}
    return Evaluation(net.target.name, len(x), float((ann_predictions == y).mean()),
                      {t: float((o.argmax(axis=1) == y).mean()) for t, o in snn.items()},
                      {t: float((o.argmax(axis=1) == ann_predictions).mean()) for t, o in snn.items()},
                      {t: _relative_rms_error(o, ann_outputs) for t, o in snn.items()},
                      {t: _mean_cosine(o, ann_outputs) for t, o in snn.items()})


def _relative_rms_error(outputs: np.ndarray, reference: np.ndarray) -> float:
    """``sqrt(mean((outputs - reference)^2)) / sqrt(mean(reference^2))`` (inf where the reference is all zero)."""
    scale = math.sqrt(float(np.mean(np.square(reference, dtype=np.float64))))
    error = math.sqrt(float(np.mean(np.square(outputs - reference, dtype=np.float64))))
    return error / scale if scale else (0.0 if error == 0 else math.inf)


def _mean_cosine(outputs: np.ndarray, reference: np.ndarray) -> float:
    """The mean over samples of the cosine of the angle between the two output vectors (1 where both are zero,
    0 where one is)."""
    dot = np.sum(outputs * reference, axis=1, dtype=np.float64)
    norms = np.linalg.norm(outputs.astype(np.float64), axis=1) * np.linalg.norm(reference.astype(np.float64), axis=1)
    both_zero = ~outputs.any(axis=1) & ~reference.any(axis=1)
    cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    return float(cosine.mean())


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
