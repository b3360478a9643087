"""The Python API's core: ``snnconv.compile`` a model for a target, run it, save it, load it.

``compile`` takes an ONNX path, an ``onnx.ModelProto`` or a ``torch.nn.Module`` (with
``example``, one input batch) and goes through the whole pipeline: import, conversion
tuned for ``timesteps``, legalization and quantization for the target, partition and
placement. The ``CompiledNetwork`` it returns runs on the chip model, reports its
partition and saves the ``.snn`` artifact; ``load`` reads one back.

The ANN's own cost (``snnconv.ann_cost``: MACs, modeled energy, onnxruntime latency) is
measured before conversion and kept in ``ann``; ``run`` adds it to the statistics. The
artifact keeps its MACs and energy but not the timing, which differs on every compilation
and would break byte-identical output: a loaded network's ANN latency is None. For a QDQ
model, what folding its activation quantizers changes in the ANN is measured on the
calibration data (``snnconv.fake_quant``) and kept as a graph fact in the artifact.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snnconv import ann_cost, artifact, fake_quant, limits, neurons, options, targets
from snnconv.data import as_array
from snnconv.errors import BadArtifactError, BadDataError, BadOptionError
from snnconv.ir import Graph
from snnconv.neurons import graded
from snnconv.targets.target import Target, from_dict

if TYPE_CHECKING:
    from snnconv.recurrent_network import RecurrentNetwork

__all__ = ["CompiledNetwork", "compile", "load"]

DEFAULT_TIMESTEPS = 32
RESETS = ("emulate", "zero")  # how a chip without subtractive reset gets one (passes/legalize_reset)
ENCODINGS = ("current", "rate")  # how the first layer receives the input (snnconv.snn)
TUNE_MODES = ("off", "fast", "full")  # how much tuning simulates (snnconv.pipeline.convert)
TRAFFIC_SAMPLES = 256  # calibration samples placement estimates traffic from
UNCALIBRATED = ("no calibration data: the SNN's scales would come from a weight-based bound and its accuracy be near "
                "chance; pass calibration data (CLI: --calibration DATA.npz), a few hundred training samples as the "
                "ANN expects them, or uncalibrated=True (--uncalibrated) for a mapping report whose accuracy does "
                "not matter")


@dataclass
class CompiledNetwork:
    """A network at a chip's precision, mapped onto its cores."""

    graph: Graph
    target: Target
    options: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    ann: dict = field(default_factory=dict)  # the ANN's cost per inference (ann_cost.ann_cost), if known

    @property
    def report(self):
        from snnconv.report import PartitionReport

        report = PartitionReport.from_graph(self.graph, self.target)
        report.network = self
        return report

    @property
    def timesteps(self) -> int:
        return int(self.options.get("timesteps", DEFAULT_TIMESTEPS))

    @property
    def classes(self) -> int:
        """The number of outputs (classes) of the network."""
        return math.prod(self.graph.layers[-1].shape)

    def run(self, x, timesteps: int | None = None, batch_size: int = 256, device: str = "cpu", progress=None,
            executor: str = "local", ray_address: str | None = None):
        """Simulate the chip on ``x``: predictions, outputs and per-inference statistics (``RunResult``).

        ``x`` is (N, *input shape), or for a 1-D network (N, C, L) as its source model takes
        it; a 1-D network's feature-map output comes back as (N, C, L) too. ``executor="ray"``
        runs the batches on a Ray cluster (``ray_address``, else one started here) with the
        same result (``snnconv.distributed``).
        """
        from snnconv.chip import run

        steps = options.timesteps(self.timesteps if timesteps is None else timesteps)
        batch_size, device = options.positive(batch_size, "batch_size"), options.device(device)
        executor = options.choice(executor, "executor", options.EXECUTORS)
        result = run(self.graph, self.target, np.asarray(x), steps, batch_size, device, progress, executor,
                     ray_address)
        shown = self.graph.user_shape(self.graph.output.shape)
        if shown != self.graph.output.shape:
            result.outputs = result.outputs.reshape(len(result.outputs), *shown)
            result.predictions = result.outputs.argmax(axis=1)
        if self.ann:  # beside the chip's statistics, still computed only when read
            chip_statistics, ann = result.statistics, dict(self.ann)
            result.statistics = lambda: {**chip_statistics(), "ann": ann}
        return result

    def save(self, path: str | Path) -> Path:
        """Write the ``.snn`` artifact atomically; the same compilation always gives the same bytes."""
        return artifact.write(path, self.graph, self._manifest_extra())

    def _manifest_extra(self) -> dict:
        from snnconv.version import __version__

        extra = {"snnconv": __version__, "target": self.target.to_dict(), "options": self.options}
        if self.ann:
            extra["ann"] = ann_cost.deterministic(self.ann)
        return extra

    def write_html(self, path: str | Path, run=None, accuracy: dict | None = None,
                   evaluation: dict | None = None) -> Path:
        """The partitioning report as one self-contained HTML page; with ``run`` (a ``RunResult``), its activity;
        with ``evaluation`` (``snnconv.evaluate(...).to_dict()``), accuracy against energy per coding."""
        from snnconv import html_report

        return html_report.write(self, path, run, accuracy, title=self.options.get("model"), evaluation=evaluation)

    def to_nir(self, path: str | Path) -> list[str]:
        """Export to NIR (``snnconv.export``); returns what NIR could not express, also logged as warnings."""
        from snnconv.export import write_nir

        return write_nir(self, path)


def compile(model, target: str | Path | Target = targets.DEFAULT, calibration=None, *, example=None,
            input_shape: tuple[int, ...] | None = None, timesteps: int | None = None, chips: int | None = None,
            percentile: float | str = "auto", reset: str = "emulate", encoding: str = "current",
            neuron: str = "if", decay: float | None = None, payload_bits: int | None = None,
            burst: int | None = None, tune: str = "fast",
            uncalibrated: bool = False, spread: bool = False) -> CompiledNetwork | RecurrentNetwork:
    """Compile ``model`` for ``target`` with ``calibration`` data (an array, a tensor or batches).

    Without calibration data the SNN's scales could only come from a weight-based bound,
    which leaves the bundled MNIST nets at chance (10%) at T = 32, so it is refused unless
    ``uncalibrated`` says the accuracy does not matter (a mapping report). ``timesteps``:
    the T to tune for, by default 32, or L for a network trained with QCFS
    (``snnconv.training``). ``neuron`` is the neuron model (``snnconv.neurons``: "if";
    "graded" where the target carries payloads, of ``payload_bits`` bits, 8 by default;
    "burst" where it carries several spikes per step, bursts of up to ``burst`` spikes; or
    "lif" where the target has a leak, with ``decay`` per step, 1/256 by default).
    ``tune`` ("off", "fast", "full") is how much
    calibration data percentile, initial-membrane and readout burn-in tuning simulates (see ``convert``).
    ``spread`` spreads the synaptic operations over all of one chip's cores instead of
    packing the fewest (lower latency and static energy; ``passes.partition``).
    """
    chip = targets.get(target)  # a bad target fails before the pipeline (and torch) loads
    timesteps = None if timesteps is None else options.timesteps(timesteps)
    percentile = options.percentile(percentile)
    chips = None if chips is None else options.positive(chips, "chips")
    reset, encoding = options.choice(reset, "reset", RESETS), options.choice(encoding, "encoding", ENCODINGS)
    input_shape = None if input_shape is None else options.shape(input_shape)
    decay_v = options.decay(decay, options.choice(neuron, "neuron", neurons.names()))
    bits, longest = options.payload_bits(payload_bits, neuron), options.burst(burst, neuron)
    most = graded.payload_max(bits) if bits else longest
    tune = options.choice(tune, "tune", TUNE_MODES)
    if (reason := neurons.sized(neuron, most).unsupported(chip)) is not None:
        raise BadOptionError(f"neuron {neuron!r}: {reason}; use neuron 'if' or another target")
    from snnconv import recurrent_network  # its chip model loads torch, as the pipeline does

    graph, onnx_model = _load(model, example, input_shape)
    settings = {"model": _name(model, graph), "timesteps": timesteps, "chips": chips, "percentile": percentile,
                "reset": reset, "encoding": encoding, "neuron": neuron, "decay": decay_v, "payload_bits": bits,
                "burst": longest, "tune": tune, "spread": bool(spread)}
    if recurrent_network.is_recurrent(graph):  # streamed item by item: snnconv.recurrent's own program
        return recurrent_network.compile(graph, onnx_model, chip, calibration, _name(model, graph), timesteps, chips,
                                         percentile, {"reset": reset, "encoding": encoding, "neuron": neuron,
                                                      "decay": decay, "payload_bits": payload_bits, "burst": burst,
                                                      "tune": tune, "uncalibrated": uncalibrated, "spread": spread})
    if calibration is None and not uncalibrated:
        raise BadDataError(UNCALIBRATED)
    settings["timesteps"] = timesteps or graph.fact("qcfs_levels") or DEFAULT_TIMESTEPS  # QCFS-trained: T = L
    network = _compiled(graph, onnx_model, chip, calibration, settings, most)
    del graph, onnx_model  # each holds the weights again: freed before the round trip decodes a second program
    return _emitted(network)


def _compiled(graph: Graph, onnx_model, chip: Target, calibration, settings: dict,
              spikes_per_step: int | None) -> CompiledNetwork:
    """The pipeline from the imported ``graph`` to cores, as ``compile``'s checked ``settings`` ask."""
    from snnconv.pipeline import convert, to_cores

    cost = ann_cost.ann_cost(graph, onnx_model)
    if graph.fact("fake_quant") and onnx_model is not None and calibration is not None:  # a QDQ model
        graph = graph.rebuilt(graph.layers, fake_quant_effect=fake_quant.effect(graph, onnx_model, calibration))
    if calibration is not None and not hasattr(calibration, "shape") and iter(calibration) is calibration:
        calibration = _Recording(calibration, TRAFFIC_SAMPLES)  # a one-shot stream: keep what placement reads again
    conversion = convert(graph, calibration, target=chip, reset=settings["reset"], percentile=settings["percentile"],
                         encoding=settings["encoding"], timesteps=settings["timesteps"], neuron=settings["neuron"],
                         decay=settings["decay"], spikes_per_step=spikes_per_step, tune=settings["tune"])
    rates_from = calibration.kept() if isinstance(calibration, _Recording) else calibration
    mapped = to_cores(conversion, chip, settings["chips"], rates_from, settings["spread"])
    return CompiledNetwork(mapped.graph, chip, settings, mapped.notes, cost)


def _emitted(network: CompiledNetwork) -> CompiledNetwork:
    """``network`` as its artifact holds it, read back through every load check.

    What runs, reports and exports after ``compile`` is then exactly what ``save`` emits
    and ``load`` reads (the program at chip precision and the core map, checked against
    the target), not the compiler's in-memory graph. The round trip is in memory and
    uncompressed; the compile notes and the ANN's measured latency stay with the network.
    """
    buffer = io.BytesIO()
    artifact.encode(network.graph, network._manifest_extra(), buffer, compress=False)
    buffer.seek(0)
    emitted = _from_artifact(artifact.decode(buffer, "<compiled network>"), "<compiled network>")
    return replace(emitted, notes=network.notes, ann=network.ann)


class _Recording:
    """A one-shot stream of calibration batches that keeps its first samples as it is read.

    Normalization reads the stream once; placement estimates traffic from the first
    ``keep`` samples afterwards, which a stream cannot give twice.
    """

    def __init__(self, batches, keep: int):
        self.batches, self.keep, self.first = iter(batches), keep, []

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.batches)
        if sum(map(len, self.first)) < self.keep:
            self.first.append(as_array(batch, "calibration data"))
        return batch

    def kept(self) -> np.ndarray | None:
        return np.concatenate(self.first)[: self.keep] if self.first else None


def _name(model, graph: Graph) -> str:
    """What reports call the model: its file's stem, a torch module's class, or the graph's name."""
    if isinstance(model, (str, Path)):
        return Path(model).stem
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        return type(model).__name__
    return graph.name


def load(path: str | Path) -> CompiledNetwork | RecurrentNetwork:
    """Read a ``.snn`` artifact (checked: format version, every array's checksum, the program against the target)."""
    return _from_artifact(artifact.read(path), str(path))


def _from_artifact(loaded: artifact.Artifact, where: str) -> CompiledNetwork | RecurrentNetwork:
    """The network an artifact describes, its program and core map checked against the target it names."""
    try:
        target = from_dict(_finite(loaded.manifest["target"]), f"{where} (target)")
    except KeyError:
        raise BadArtifactError(f"{where}: manifest has no target") from None
    if loaded.recurrent is not None:
        from snnconv import recurrent_network

        return recurrent_network.from_artifact(loaded, target, where)
    artifact.check_precision(loaded.graph, target, where)
    if loaded.mapping is not None:
        limits.check_mapping(loaded.graph, loaded.mapping, target, where)
    return CompiledNetwork(loaded.graph, target, dict(loaded.manifest.get("options", {})),
                           ann=_stored_ann(loaded.manifest))


def _stored_ann(manifest: dict) -> dict:
    """The manifest's ANN block, with the latency that the artifact does not store marked as such."""
    if "ann" not in manifest:
        return {}
    return {**manifest["ann"], "latency_us": None,
            "latency_source": "not stored in the artifact (a timing would break byte-identical output); "
                              "compile the model in this process to measure it"}


def _finite(value):
    """The manifest writes infinity as "inf"; targets want the number back."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return float("inf") if value == "inf" else value


def _load(model, example, input_shape):
    """The IR graph of ``model`` and the ONNX ModelProto it was read from (None for a graph), to time the ANN."""
    if isinstance(model, Graph):
        return model, None
    from snnconv.frontend.importer import import_model

    if hasattr(model, "forward") and hasattr(model, "parameters"):
        from snnconv.frontend.torch_export import export_module

        if example is None:
            raise BadOptionError("example: compiling a torch module needs example=<one input batch>")
        proto = export_module(model, example)
        return import_model(proto, f"<{type(model).__name__}>", tuple(example.shape[1:])), proto
    from snnconv.frontend.reader import read_model

    proto, label = read_model(model)
    return import_model(proto, label, input_shape), proto
