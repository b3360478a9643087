"""ANN vs SNN accuracy at several timesteps: ``snnconv eval`` and training loops.

``evaluate(model, (x, y), target="loihi", timesteps=(8, 16, 32))`` imports the model
(a path, an ``onnx.ModelProto``, a ``torch.nn.Module`` or an IR graph) and, for each T,
compiles it for the target tuned and bias-corrected for that T (as ``snnconv compile
--timesteps T`` would) and runs the chip model for T steps: each row is what a user who
compiles for that T gets. With ``compile_once=True`` it compiles once, for the largest
T, and reads the output integrators at every smaller T on the way (one compile and one
simulation; small T then understates what a network compiled for it reaches, and the
table says so). Nothing is written to disk, so a training loop can call it every epoch
on the module it is training.

Calibration: the samples given as ``calibration`` (pass training data to keep the test
data unseen), else the first ``CALIBRATION_SAMPLES`` samples of ``data``.

Beyond top-1, how faithful the SNN's outputs are, per T, against the ANN's outputs before
any output function (the logits of a classifier, the raw values of any other head), as
the chip's output integrators carry them: the relative RMS error
``sqrt(mean((snn - ann)^2)) / sqrt(mean(ann^2))`` and the mean cosine similarity of each
sample's output vector with the ANN's.
"""

from __future__ import annotations

import functools
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
    compiled_for: dict[int, int]  # the T each row's network was compiled (tuned) for

    def to_dict(self) -> dict:
        return {"target": self.target, "samples": self.samples, "ann_accuracy": self.ann,
                "snn": [{"timesteps": t, "accuracy": self.snn[t], "agreement_with_ann": self.agreement[t],
                         "relative_rms_error": self.rms_error[t], "cosine_similarity": self.cosine[t],
                         "compiled_for_timesteps": self.compiled_for[t]}
                        for t in sorted(self.snn)]}

    def render(self) -> str:
        rows = [[t, f"{100 * self.snn[t]:.2f}%", f"{100 * (self.snn[t] - self.ann):+.2f}",
                 f"{100 * self.agreement[t]:.1f}%", f"{self.rms_error[t]:.3f}", f"{self.cosine[t]:.4f}"]
                for t in sorted(self.snn)]
        title = f"ANN accuracy {100 * self.ann:.2f}% on {self.samples:,} samples; SNN on the {self.target} chip model"
        once = set(self.compiled_for.values())
        title += (f", every T read off one network compiled for T = {once.pop()}:" if len(once) == 1 and len(self.snn) > 1
                  else ", compiled for each T:")
        return title + "\n" + render_table(["T", "SNN accuracy", "vs ANN (points)", "same prediction",
                                            "output RMS error", "output cosine"], rows)

    def __str__(self) -> str:
        return self.render()


def evaluate(model, data, labels=None, *, target="loihi", timesteps: Sequence[int] = (8, 16, 32), calibration=None,
             example=None, input_shape: tuple[int, ...] | None = None, batch_size: int = 256, device: str = "cpu",
             compile_once: bool = False, executor: str = "local", ray_address: str | None = None,
             **options) -> Evaluation:
    """The ANN vs SNN table for ``model`` on ``data``: ``(x, y)``, ``x`` with ``labels``, or (x, y) batches.

    ``options`` go to ``snnconv.compile`` (``percentile``, ``reset``, ``chips``, ...).
    ``executor="ray"`` simulates the batches as tasks on a Ray cluster (``ray_address``,
    else one started here): the same table, to the byte (``snnconv.distributed``).
    """
    from snnconv.compiled import _load, compile

    x, y = _samples(data, labels)
    steps = valid.timesteps_list(timesteps)
    batch_size, device = valid.positive(batch_size, "batch_size"), valid.device(device)
    executor = valid.choice(executor, "executor", valid.EXECUTORS)
    graph, _ = _load(model, example if example is not None else _example(x), input_shape)
    check_labels(y, math.prod(graph.output.shape), "data: labels")
    ann_outputs = ann.evaluate(graph, x, graph.output.inputs[0]).reshape(len(x), -1)  # before any output function
    ann_predictions = ann_outputs.argmax(axis=1)
    calibration = calibration if calibration is not None else x[:CALIBRATION_SAMPLES]
    groups = [steps] if compile_once else [[t] for t in steps]
    snn, compiled_for = {}, {}
    for group in groups:
        with reporting(f"compiling for T = {group[-1]}"):
            net = compile(graph, target, calibration, timesteps=group[-1], **options)
        snn.update(_outputs(net, x, group, batch_size, device, executor, ray_address))
        compiled_for.update({t: group[-1] for t in group})
    return Evaluation(net.target.name, len(x), float((ann_predictions == y).mean()),
                      {t: float((o.argmax(axis=1) == y).mean()) for t, o in snn.items()},
                      {t: float((o.argmax(axis=1) == ann_predictions).mean()) for t, o in snn.items()},
                      {t: _relative_rms_error(o, ann_outputs) for t, o in snn.items()},
                      {t: _mean_cosine(o, ann_outputs) for t, o in snn.items()}, compiled_for)


def _outputs(net, x: np.ndarray, steps: list[int], batch_size: int, device: str, executor: str,
             ray_address: str | None) -> dict[int, np.ndarray]:
    """The chip model's output integrators after each of ``steps``, one simulation of ``steps[-1]`` steps."""
    from snnconv.snn import CHUNK_ELEMENTS

    show = Progress(f"simulating T = {steps[-1]}", len(x), "samples")
    batch_size = ann.samples_per_batch(net.graph, CHUNK_ELEMENTS, batch_size)
    work = functools.partial(batch_outputs, steps=tuple(steps))
    if executor == "ray":
        from snnconv.distributed import map_batches

        batches = map_batches(net.graph, x, batch_size, work, device, ray_address, show)
    else:
        batches = []
        for start in range(0, len(x), batch_size):
            batches.append(work(net.graph, x[start:start + batch_size], device))
            show(min(len(x), start + batch_size))
    return {t: np.concatenate([batch[t] for batch in batches]).reshape(len(x), -1) for t in steps}


def batch_outputs(graph, x: np.ndarray, device: str, steps: tuple[int, ...]) -> dict[int, np.ndarray]:
    """One batch's output integrators after each of ``steps`` (a module-level function: Ray ships it)."""
    from snnconv.snn import simulate

    return simulate(graph, x, steps[-1], checkpoints=steps, device=device).outputs


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
