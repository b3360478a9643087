"""ANN vs SNN accuracy and cost at several timesteps, per coding: ``snnconv eval`` and training loops.

``evaluate(model, (x, y), target="loihi", timesteps=(8, 16, 32))`` imports the model
(a path, an ``onnx.ModelProto``, a ``torch.nn.Module`` or an IR graph) and, for each T,
compiles it for the target tuned and bias-corrected for that T (as ``snnconv compile
--timesteps T`` would) and runs the chip model for T steps: each row is what a user who
compiles for that T gets, with the chip model's synaptic operations and modeled energy
and latency per inference beside the ANN's MACs, energy and latency. ``neuron`` may name
several codings (``"if,graded"``, ``snnconv.codings``): each is compiled and run at every
T. With ``compile_once=True`` it compiles once per coding, for the largest T, and runs
that network for each T (small T then understates what a network compiled for it
reaches, and the table says so). Nothing is written to disk, so a training loop can call
it every epoch on the module it is training.

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
from dataclasses import dataclass, field

import numpy as np

from snnconv import ann, chip, codings
from snnconv import options as valid
from snnconv.data import check_labels
from snnconv.errors import BadDataError, BadOptionError
from snnconv.ir import Recurrent
from snnconv.progress import Progress, reporting
from snnconv.table import render_table

__all__ = ["CALIBRATION_SAMPLES", "Evaluation", "Row", "evaluate"]

CALIBRATION_SAMPLES = 500


@dataclass
class Row:
    """One coding at one T: the SNN's accuracy and fidelity against the ANN, and its modeled cost per inference."""

    coding: str  # e.g. "if", "graded 4-bit" (``codings.Coding.label``)
    neuron: str
    timesteps: int
    compiled_for: int  # the T its network was compiled (tuned) for
    accuracy: float
    agreement: float  # fraction of samples where the SNN predicts what the ANN does
    rms_error: float  # relative RMS error of the SNN's outputs against the ANN's
    cosine: float  # mean cosine similarity of each sample's output vector with the ANN's
    synaptic_ops: float  # per inference, from the chip model's statistics
    energy_uj: float
    latency_us: float

    def to_dict(self) -> dict:
        return {"coding": self.coding, "neuron": self.neuron, "timesteps": self.timesteps, "accuracy": self.accuracy,
                "agreement_with_ann": self.agreement, "relative_rms_error": self.rms_error,
                "cosine_similarity": self.cosine, "compiled_for_timesteps": self.compiled_for,
                "synaptic_ops": self.synaptic_ops, "energy_uj": self.energy_uj, "latency_us": self.latency_us}


@dataclass
class Evaluation:
    """Accuracies and costs of the ANN and of its SNN on the chip model, per coding and T, on the same samples.

    ``snn``, ``agreement``, ``rms_error``, ``cosine`` and ``compiled_for`` are the rows'
    figures keyed by T, where one coding was evaluated (a training loop's case).
    """

    target: str
    samples: int
    ann: float
    rows: list[Row]
    ann_cost: dict = field(default_factory=dict)  # the ANN's MACs, modeled energy (uJ), measured latency (us)

    @property
    def codings(self) -> list[str]:
        return list(dict.fromkeys(row.coding for row in self.rows))

    @property
    def snn(self) -> dict[int, float]:
        return self._per_t("accuracy")

    @property
    def agreement(self) -> dict[int, float]:
        return self._per_t("agreement")

    @property
    def rms_error(self) -> dict[int, float]:
        return self._per_t("rms_error")

    @property
    def cosine(self) -> dict[int, float]:
        return self._per_t("cosine")

    @property
    def compiled_for(self) -> dict[int, int]:
        return self._per_t("compiled_for")

    def _per_t(self, name: str) -> dict:
        if len(self.codings) > 1:
            raise BadOptionError(f"the evaluation holds {len(self.codings)} codings ({', '.join(self.codings)}); "
                                 f"read {name} per coding and T from .rows")
        return {row.timesteps: getattr(row, name) for row in sorted(self.rows, key=lambda row: row.timesteps)}

    def to_dict(self) -> dict:
        ann = {key: self.ann_cost.get(key) for key in ("macs", "energy_uj", "latency_us")}
        return {"target": self.target, "samples": self.samples, "ann_accuracy": self.ann, "ann": ann,
                "snn": [row.to_dict() for row in self.rows]}

    def render(self) -> str:
        several = len(self.codings) > 1
        rows = [([row.coding] if several else []) + [
                    row.timesteps, f"{100 * row.accuracy:.2f}%", f"{100 * (row.accuracy - self.ann):+.2f}",
                    f"{100 * row.agreement:.1f}%", f"{row.rms_error:.3f}", f"{row.cosine:.4f}",
                    f"{row.synaptic_ops:,.0f}", f"{row.energy_uj:,.1f}", f"{row.latency_us:,.0f}"]
                for row in self.rows]
        header = (["coding"] if several else []) + ["T", "SNN accuracy", "vs ANN (points)", "same prediction",
                                                    "output RMS error", "output cosine", "synaptic ops",
                                                    "energy uJ", "latency us"]
        return self._title() + "\n" + render_table(header, rows)

    def _title(self) -> str:
        title = f"ANN accuracy {100 * self.ann:.2f}% on {self.samples:,} samples"
        if self.ann_cost.get("macs") is not None:
            latency = self.ann_cost.get("latency_us")
            title += (f" ({self.ann_cost['macs']:,} MACs, {self.ann_cost['energy_uj']:,.1f} uJ"
                      + (f", {latency:,.0f} us" if latency is not None else "") + " per inference)")
        title += f"; SNN on the {self.target} chip model"
        once = {row.compiled_for for row in self.rows}
        steps = {row.timesteps for row in self.rows}
        return title + (f", every T read off one network compiled for T = {once.pop()}:"
                        if len(once) == 1 and len(steps) > 1 else ", compiled for each T:")

    def __str__(self) -> str:
        return self.render()


def evaluate(model, data, labels=None, *, target="loihi", timesteps: Sequence[int] = (8, 16, 32), calibration=None,
             example=None, input_shape: tuple[int, ...] | None = None, batch_size: int = 256, device: str = "cpu",
             compile_once: bool = False, executor: str = "local", ray_address: str | None = None, neuron="if",
             **options) -> Evaluation:
    """The ANN vs SNN table for ``model`` on ``data``: ``(x, y)``, ``x`` with ``labels``, or (x, y) batches.

    ``neuron``: one neuron model or several ("if,graded", or a list): each is a coding,
    compiled and run at every T (``snnconv.codings``). ``options`` go to
    ``snnconv.compile`` (``percentile``, ``reset``, ``chips``, ``payload_bits``, ...).
    ``executor="ray"`` simulates the batches as tasks on a Ray cluster (``ray_address``,
    else one started here): the same table, to the byte (``snnconv.distributed``).
    """
    from snnconv.compiled import _load, compile

    x, y = _samples(data, labels)
    steps = valid.timesteps_list(timesteps)
    batch_size, device = valid.positive(batch_size, "batch_size"), valid.device(device)
    executor = valid.choice(executor, "executor", valid.EXECUTORS)
    asked, common = codings.parse(neuron, options)
    graph, _ = _load(model, example if example is not None else _example(x), input_shape)
    check_labels(y, math.prod(graph.output.shape), "data: labels")
    if any(isinstance(layer, Recurrent) for layer in graph):
        return _sequence(graph, x, y, target, steps, calibration, asked, executor, common)
    ann_outputs = ann.evaluate(graph, x, graph.output.inputs[0]).reshape(len(x), -1)  # before any output function
    reference = _Reference(ann_outputs, y)
    calibration = calibration if calibration is not None else x[:CALIBRATION_SAMPLES]
    groups = [steps] if compile_once else [[t] for t in steps]
    rows, cost = [], {}
    for coding in asked:
        for group in groups:
            with reporting(f"compiling {coding.label} for T = {group[-1]}"):
                net = compile(graph, target, calibration, timesteps=group[-1], neuron=coding.neuron,
                              **coding.options, **common)
            cost = cost or net.ann
            for t in group:
                result = chip.run(net.graph, net.target, x, t, batch_size, device,
                                  Progress(f"simulating {coding.label} at T = {t}", len(x), "samples"), executor,
                                  ray_address)
                rows.append(reference.row(coding, t, group[-1], result))
    return Evaluation(net.target.name, len(x), float((reference.predictions == y).mean()), rows, dict(cost))


def _sequence(graph, x, y, target, steps, calibration, asked, executor: str, options: dict) -> Evaluation:
    """A sequence (recurrent) model goes to ``snnconv.recurrent_eval``: rate-coded IF streamed item by item, the
    T taken as steps per item; what that path has no use for is refused rather than ignored."""
    from snnconv import recurrent_eval

    kept = {name: options[name] for name in ("percentile", "chips") if options.get(name) is not None}
    ignored = sorted(name for name, value in options.items()
                     if value is not None and name not in kept and not (name == "reset" and value == "emulate"))
    names = [coding.neuron for coding in asked]
    refused = ([f"neuron {','.join(names)}"] if names != ["if"] else []) + (["ray"] if executor != "local" else [])
    if refused or ignored:
        raise BadOptionError("a sequence (recurrent) model is evaluated with rate-coded 'if' neurons, locally, "
                             f"with at most percentile and chips as options; drop {', '.join(refused + ignored)}")
    return recurrent_eval.evaluate(graph, x, y, target=target, steps_per_item=steps, calibration=calibration, **kept)


@dataclass
class _Reference:
    """The ANN's outputs and the labels, against which each run is scored."""

    outputs: np.ndarray  # (N, outputs) before any output function
    labels: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(axis=1)

    def row(self, coding: codings.Coding, timesteps: int, compiled_for: int, result) -> Row:
        """The row of a chip-model ``result`` (``chip.RunResult``) of ``coding`` run for ``timesteps``."""
        outputs = result.outputs.reshape(len(self.outputs), -1)
        stats = result.stats
        return Row(coding.label, coding.neuron, timesteps, compiled_for,
                   float((outputs.argmax(axis=1) == self.labels).mean()),
                   float((outputs.argmax(axis=1) == self.predictions).mean()),
                   _relative_rms_error(outputs, self.outputs), _mean_cosine(outputs, self.outputs),
                   stats["synaptic_ops"], stats["energy_uj"], stats["latency_us"])


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
