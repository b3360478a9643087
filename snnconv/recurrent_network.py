"""A compiled recurrent network: what ``snnconv.compile`` returns for a graph with a recurrent layer and
``snnconv.load`` reads back from its artifact, with the surface of ``CompiledNetwork`` (``run``, ``report``,
``save``, ``to_nir``, ``classes``, ``timesteps``).

It wraps the streamed program of ``snnconv.recurrent`` (a ReLU Elman RNN: each of the
``L`` items of a sequence presented for ``K`` steps, the recurrent synapses delayed by
``K``, the hidden membranes carried from item to item and clipped to ``[0, theta]`` at
each item's first step). ``timesteps`` means steps per item ``K`` here, fixed at compile
time: the head's integer scale is the largest whose window integral fits the state bits
over ``K`` steps, so another ``K`` needs another compilation. ``run`` streams sequences
(N, L, F) and gives each item's output and the final one (the last item's), with the
energy and latency of ``snnconv.recurrent_cost`` per sequence and per item.

What ``compile`` returns is read back from the bytes ``save`` writes (as for a
feed-forward network, ``compiled._emitted``), and ``load`` checks, beyond the artifact's
own checks: the program's integers against the target's formats
(``artifact.check_recurrent_precision``), its core table equal to the one
``recurrent.partition`` gives for it on that target (so every core is within the limits),
and its sums exact in float64 (``recurrent.bounds``). So a network that loads also runs,
exactly as the reference simulator would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from snnconv import ann_cost, artifact, data, options, recurrent, recurrent_cost
from snnconv.data import as_array
from snnconv.errors import BadArtifactError, BadDataError, BadOptionError
from snnconv.ir import Graph
from snnconv.recurrent_program import RecurrentProgram
from snnconv.targets.target import Target

__all__ = ["RecurrentNetwork", "SequenceRun", "compile", "from_artifact", "is_recurrent"]


def is_recurrent(graph: Graph) -> bool:
    return any(layer.kind == "recurrent" for layer in graph)


@dataclass
class SequenceRun:
    """A streamed run: each item's outputs, the final ones, and per-sequence statistics (``per_item`` inside)."""

    item_outputs: np.ndarray  # (N, L, C): the output integrators read at the end of each item's window, as logits
    stats: dict
    timesteps: int  # steps per item
    items: int

    @property
    def outputs(self) -> np.ndarray:
        """The final outputs: the last item's (the ANN's ``V h_L + c``)."""
        return self.item_outputs[:, -1]

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(axis=1)

    def accuracy(self, labels) -> float:
        return data.accuracy(self.outputs, labels)


@dataclass
class RecurrentNetwork:
    """A recurrent program at a chip's precision on its cores (``snnconv.recurrent``)."""

    program: RecurrentProgram
    target: Target
    options: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    ann: dict = field(default_factory=dict)
    name: str = "recurrent"

    @property
    def timesteps(self) -> int:
        """Steps per item (a sequence takes ``items`` times as many)."""
        return self.program.steps_per_item

    @property
    def classes(self) -> int:
        return len(self.program.output_weight)

    @property
    def report(self):
        from snnconv.recurrent_report import RecurrentReport

        return RecurrentReport(self)

    def run(self, x, timesteps: int | None = None, batch_size: int = 256, device: str = "cpu", progress=None,
            executor: str = "local", ray_address: str | None = None) -> SequenceRun:
        """Stream the sequences ``x`` (N, L, F): per-item and final outputs and per-sequence statistics.

        ``timesteps`` (steps per item) may only be the compiled one; the streamed chip model
        runs here on the CPU (``device`` "cpu", ``executor`` "local").
        """
        k = self.timesteps if timesteps is None else options.timesteps(timesteps)
        if k != self.timesteps:
            raise BadOptionError(f"timesteps {k}: this recurrent network was compiled for {self.timesteps} steps per "
                                 "item (its head's integer scale and overflow bounds depend on it); compile it again "
                                 f"with --timesteps {k}")
        batch_size = options.positive(batch_size, "batch_size")
        if options.device(device) != "cpu" or options.choice(executor, "executor", options.EXECUTORS) != "local":
            raise BadOptionError(f"device {device!r} / executor {executor!r}: a recurrent network's streamed chip "
                                 "model runs on this machine's CPU; drop --device cuda and --ray for it")
        x = as_array(x, "sequences")
        parts = []
        for start in range(0, len(x), batch_size):
            parts.append(recurrent.run(self.program, x[start:start + batch_size], batch_size))
            if progress is not None:
                progress(min(start + batch_size, len(x)))
        result = recurrent.SequenceResult(np.concatenate([p.item_outputs for p in parts]),
                                          np.concatenate([p.spikes for p in parts]),
                                          sum(p.saturations for p in parts),
                                          np.concatenate([p.neuron_spikes for p in parts]))
        stats = {**recurrent_cost.statistics(self.program, self.target, result), "saturations": result.saturations}
        if self.ann:
            stats["ann"] = dict(self.ann)
        return SequenceRun(result.item_outputs, stats, self.timesteps, self.program.items)

    def save(self, path: str | Path) -> Path:
        """Write the ``.snn`` artifact atomically (``artifact.write_recurrent``); the same compilation gives the
        same bytes."""
        return artifact.write_recurrent(path, self.program, self.name, self._manifest_extra())

    def _manifest_extra(self) -> dict:
        from snnconv.version import __version__

        extra = {"snnconv": __version__, "target": self.target.to_dict(), "options": self.options}
        if self.ann:
            extra["ann"] = ann_cost.deterministic(self.ann)
        return extra

    def write_html(self, path, run=None, accuracy=None, evaluation=None):
        raise BadOptionError("--html: the HTML report draws a feed-forward network's layers on its cores; for a "
                             "recurrent network use `snnconv report` (text or --json)")

    def to_nir(self, path: str | Path) -> list[str]:
        """Export to NIR (``snnconv.export.write_recurrent_nir``); returns what NIR could not express."""
        from snnconv.export import write_recurrent_nir

        return write_recurrent_nir(self, path)


DEFAULTS = {"reset": "emulate", "encoding": "current", "neuron": "if", "decay": None, "payload_bits": None,
            "burst": None, "uncalibrated": False, "spread": False}  # feed-forward options a recurrent network takes only as these
TUNES = ("off", "fast")  # nothing is tuned: both mean the same here ("full" would promise more)


def compile(graph: Graph, onnx_model, chip: Target, calibration, name: str, timesteps: int | None,
            chips: int | None, percentile, settings: dict) -> RecurrentNetwork:
    """``snnconv.compile`` of a recurrent ``graph``: ``timesteps`` is steps per item (None: the default,
    ``recurrent.DEFAULT_STEPS_PER_ITEM``), ``percentile`` "auto" the recurrent default; ``settings`` (the
    feed-forward pipeline's other options) at other than ``DEFAULTS`` are refused in one line, not ignored."""
    unused = {key: value for key, value in settings.items()
              if key in DEFAULTS and value != DEFAULTS[key] or key == "tune" and value not in TUNES}
    if unused:
        names = ", ".join(f"{key}={value!r}" for key, value in unused.items())
        raise BadOptionError(f"{names}: a recurrent network streams rate-coded IF neurons with subtractive reset from "
                             "a constant-current input, calibrated, with nothing to tune; drop these options for it")
    if calibration is None:
        raise BadDataError("a recurrent network needs calibration sequences (N, L, F) to set its scale; pass "
                           "calibration data (CLI: --calibration DATA.npz)")
    x = np.concatenate([as_array(batch, "calibration data") for batch in _batches(calibration)])
    steps = timesteps or recurrent.DEFAULT_STEPS_PER_ITEM
    level = recurrent.DEFAULT_PERCENTILE if percentile == "auto" else float(percentile)
    program = recurrent.compile(graph, chip, x, steps_per_item=steps, percentile=level, chips=chips)
    kept = {"model": name, "timesteps": steps, "steps_per_item": steps, "items": program.items,
            "percentile": level, "chips": chips}
    network = RecurrentNetwork(program, chip, kept, {"recurrent": dict(program.notes)},
                               ann_cost.ann_cost(graph, onnx_model), name)
    return _emitted(network)


def _batches(calibration):
    """An array or tensor as one batch; an iterable of batches (a DataLoader) as they come."""
    return [calibration] if hasattr(calibration, "shape") else calibration


def _emitted(network: RecurrentNetwork) -> RecurrentNetwork:
    """``network`` as its artifact holds it, read back through every load check (as ``compiled._emitted``)."""
    buffer = io.BytesIO()
    artifact.encode_recurrent(network.program, network.name, network._manifest_extra(), buffer, compress=False)
    buffer.seek(0)
    emitted = from_artifact(artifact.decode(buffer, "<compiled network>"), network.target, "<compiled network>")
    return replace(emitted, notes=network.notes, ann=network.ann)


def from_artifact(loaded: artifact.Artifact, target: Target, where: str) -> RecurrentNetwork:
    """The network of a recurrent artifact, checked against ``target`` (the one its manifest names)."""
    program, settings = loaded.recurrent, dict(loaded.manifest.get("options", {}))
    if program.target != target.name or settings.get("steps_per_item") != program.steps_per_item:
        raise BadArtifactError(f"{where}: the recurrent program names target {program.target!r} and "
                               f"{program.steps_per_item} steps per item, the manifest {target.name!r} and "
                               f"{settings.get('steps_per_item')!r}; the file was altered: compile the model again")
    artifact.check_recurrent_precision(program, target, where)
    chips = settings.get("chips")
    try:
        expected = tuple(recurrent.partition(program, target, chips if isinstance(chips, int) else None))
    except Exception as exc:  # noqa: BLE001 - a DoesNotFitError, or a partition of nonsense: either way refused
        raise BadArtifactError(f"{where}: the recurrent program does not fit {target.name} ({exc}); the file was "
                               "altered: compile the model again") from None
    if expected != program.cores:
        raise BadArtifactError(f"{where}: the recurrent core table is not the one {target.name}'s limits give for "
                               "this program; the file was altered: compile the model again")
    largest = recurrent.bounds(program).largest_sum
    if not largest < 2.0**53:
        raise BadArtifactError(f"{where}: the recurrent program forms sums up to {largest:.3g}, not exact in float64; "
                               "the file was altered: compile the model again")
    ann = {**loaded.manifest["ann"], "latency_us": None, "latency_source": "not stored in the artifact"} \
        if isinstance(loaded.manifest.get("ann"), dict) else {}
    return RecurrentNetwork(program, target, settings, ann=ann, name=loaded.manifest["name"])
