"""``snnconv.bench``: one inference at batch size 1, the compiled SNN beside the ANN, honestly costed.

Why: a spiking chip is sold on latency and energy per inference, and the comparison
that matters is with what else could run the same network at batch 1 (Davies et al.,
Proc. IEEE 2021, compared Loihi with CPUs, GPUs and edge accelerators exactly so).
Every number here is either measured on this machine (and says so) or modeled from a
listed source:

- **the SNN**, per target, coding (neuron model) and T, on the chip model
  (``CompiledNetwork.run``): latency and energy per inference with the energy split into
  synaptic operations, neuron updates, routing and static power (``chip.statistics``),
  from the target's per-operation costs, whose sources each target lists;
- **the ANN measured here** (``snnconv.ann_measure``): onnxruntime and torch at batch 1,
  median and spread of many runs, energy from Linux RAPL where readable;
- **the ANN modeled** on reference platforms (``snnconv.platforms``): a server CPU core,
  a GPU and an edge accelerator, memory traffic and static power included;
- with data, accuracy and agreement with the ANN's predictions (fidelity) per row.

EDP, the energy-delay product, is energy (J) x latency (s): lower is better on both
axes at once. A target a network does not fit, or a coding a target cannot run, is a
row that says why rather than an error.

Compiling is the slow part, so by default it runs without tuning on the first
``CALIBRATION_SAMPLES`` calibration samples (``tune`` and ``calibration_samples`` say
otherwise): accuracy can be a little below what ``snnconv compile --tune fast`` reaches.

On Ray (``executor="ray"``) only the exact, countable part moves: each configuration's
run over the samples (accuracy, agreement, spikes, synaptic operations, and the energy
and latency *modeled* from those counts) is cut into batches that run as tasks and are
merged as counts and sums (``snnconv.distributed``), the same bytes as here. Nothing
measured by a clock leaves this machine: the ANN is timed here, before any task is
submitted, because a batch-1 latency taken on a worker shared with other tasks would be
the contention's, not the network's. Compiling and the modeled platforms stay here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnconv import ann, ann_measure, benchmark_sequence, files, neurons, options, platforms
from snnconv import targets as known_targets
from snnconv.data import as_array, check_labels
from snnconv.errors import BadDataError, BadOptionError, DoesNotFitError
from snnconv.progress import Progress, reporting

__all__ = ["CALIBRATION_SAMPLES", "Bench", "bench"]

CALIBRATION_SAMPLES = 128
ACTIVITY_SAMPLES = 64  # without data, the calibration samples whose activity gives the SNN's statistics


@dataclass
class Bench:
    """The configurations of one network at batch 1, each with latency, energy, EDP and accuracy."""

    model: str
    samples: int  # samples the activity and accuracy come from
    labelled: bool  # whether accuracy was scored (else only agreement with the ANN)
    ann_accuracy: float | None
    measured: dict  # ann_measure.measure
    platforms: list[dict]  # platforms.model per platform
    snn: list[dict]  # one per target, coding and T
    settings: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """Every configuration as one row: name, how it was obtained, latency, energy (total, dynamic, split),
        EDP, accuracy and agreement with the ANN (None where not known), and why a configuration does not run."""
        return ([_snn_row(config) for config in self.snn]
                + [_platform_row(result, self.ann_accuracy) for result in self.platforms]
                + [_measured_row(result, self.ann_accuracy) for result in self.measured["runtimes"]])

    def to_dict(self) -> dict:
        return {"model": self.model, "batch": 1, "samples": self.samples, "ann_accuracy": self.ann_accuracy,
                "settings": self.settings, "rows": self.rows(), "snn": self.snn, "ann_platforms": self.platforms,
                "ann_measured": self.measured, "best": self.best()}

    def best(self) -> dict[str, str | None]:
        """The configuration with the lowest latency, energy and EDP, among rows that have the figure (a target
        without costs, such as ``ideal``, models zero: not a contender)."""
        rows = self.rows()
        return {key: min((r for r in rows if r[key]), key=lambda r: r[key], default={}).get("name")
                for key in ("latency_us", "energy_uj", "edp_js")}

    def render(self) -> str:
        """Terminal tables: the configurations, the energy split, the ANN's measurements, and every source."""
        from snnconv import benchmark_text

        return benchmark_text.render(self)

    def to_html(self) -> str:
        from snnconv import benchmark_html

        return benchmark_html.render(self)

    def write_html(self, path: str | Path) -> Path:
        """The self-contained HTML page (``benchmark_html``), written atomically."""
        files.check_outputs({"the HTML page": path})
        text = self.to_html()
        return files.atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))

    def __str__(self) -> str:
        return self.render()


def bench(model, targets: Sequence = (known_targets.DEFAULT,), *, codings: Sequence[str] = ("if",),
          timesteps: Sequence[int] | None = None, data=None, labels=None, calibration=None, example=None,
          input_shape: tuple[int, ...] | None = None, samples: int | None = None, tune: str = "off",
          calibration_samples: int = CALIBRATION_SAMPLES, budget_s: float = ann_measure.BUDGET_S,
          batch_size: int = 256, executor: str = "local", ray_address: str | None = None) -> Bench:
    """Benchmark ``model`` (a path, an ``onnx.ModelProto`` or a ``torch.nn.Module`` with ``example``) at batch 1.

    ``targets``: target names, TOML paths or ``Target`` objects; ``codings``: neuron models
    (``"if"``, rate coding, or ``"graded"`` where the target carries payloads); ``timesteps``:
    the T to compile and run each for (None: the compiler's default, 32 or a QCFS net's L).
    ``data``: samples (``x`` or ``(x, y)``, or ``x`` with ``labels``) for accuracy and for the
    SNN's activity, the first ``samples`` of them; ``calibration``: samples to compile with
    (default: those of ``data``), the first ``calibration_samples``, compiled with ``tune``.
    ``executor="ray"`` simulates each configuration's samples, ``batch_size`` at a time, as
    tasks on a Ray cluster (``ray_address``, else one started here): the same result, while
    the ANN's wall-clock measurement stays here and runs before any task.
    """
    from snnconv.compiled import _load

    chips = [known_targets.get(target) for target in targets]
    codings = [options.choice(coding, "coding", neurons.names()) for coding in codings]
    steps = (None,) if timesteps is None else options.timesteps_list(timesteps)
    tune = options.choice(tune, "tune", ("off", "fast", "full"))
    run = {"batch_size": options.positive(batch_size, "batch_size"),
           "executor": options.choice(executor, "executor", options.EXECUTORS), "ray_address": ray_address}
    _check_runnable(chips, codings)
    x, y = _data(data, labels, samples)
    calibration = _calibration(calibration, x, options.positive(calibration_samples, "calibration_samples"))
    graph, proto = _load(model, example, input_shape)
    if y is not None:
        check_labels(y, math.prod(graph.output.shape), "data: labels")
    if benchmark_sequence.is_sequence_model(graph):  # a ReLU RNN streams item by item: its own rows, per item too
        return benchmark_sequence.bench_sequence(_name(model, graph), graph, proto, chips, codings, steps, calibration,
                                                 x, y, budget_s, run["executor"])
    activity = x if x is not None else calibration[:ACTIVITY_SAMPLES]
    ann_predictions = ann.evaluate(graph, activity).argmax(axis=1)
    with reporting("measuring the ANN"):  # first: no task of ours runs while the clock does
        measured = ann_measure.measure(proto, graph, budget_s)
    snn = [_configuration(graph, chip, coding, t, calibration, tune, activity, y, ann_predictions, run)
           for chip in chips for coding in codings for t in steps]
    settings = {"tune": tune, "calibration_samples": len(calibration), "targets": [chip.name for chip in chips],
                "codings": codings, "timesteps": list(steps),
                "activity_from": "the data" if x is not None else f"the first {len(activity)} calibration samples"}
    return Bench(_name(model, graph), len(activity), y is not None,
                 None if y is None else float((ann_predictions == y).mean()), measured,
                 [platforms.model(graph, platform) for platform in platforms.PLATFORMS.values()], snn, settings)


def _check_runnable(chips: list, codings: list[str]) -> None:
    """Refuse a request none of whose codings any of its targets can run (a mix skips what cannot run)."""
    reasons = {(chip.name, coding): neurons.get(coding).unsupported(chip) for chip in chips for coding in codings}
    if all(reason is not None for reason in reasons.values()):
        listed = "; ".join(f"{coding!r} on {name}: {reason}" for (name, coding), reason in reasons.items())
        raise BadOptionError(f"coding: no requested coding runs on a requested target ({listed}); "
                             "use coding 'if' or a target that carries the coding")


def _configuration(graph, chip, coding: str, steps: int | None, calibration: np.ndarray, tune: str,
                   x: np.ndarray, y: np.ndarray | None, ann_predictions: np.ndarray, run: dict) -> dict:
    """One SNN configuration compiled here and run (``run``: ``net.run``'s batch size and executor): its
    statistics, or why it cannot run on ``chip``."""
    from snnconv.compiled import compile

    config = {"target": chip.name, "coding": coding, "timesteps": steps}
    reason = neurons.get(coding).unsupported(chip)
    if reason is not None:
        return {**config, "runs": False, "reason": f"coding {coding!r}: {reason}"}
    try:
        with reporting(f"compiling for {chip.name}, {coding}, T = {steps or 'default'}"):
            net = compile(graph, chip, calibration, timesteps=steps, neuron=coding, tune=tune)
    except DoesNotFitError as exc:
        return {**config, "runs": False, "reason": str(exc)}
    result = net.run(x, progress=Progress("simulating", len(x), "samples"), **run)
    stats, predictions = result.stats, result.predictions
    return {**config, "timesteps": result.timesteps, "runs": True, "latency_us": stats["latency_us"],
            "energy_uj": stats["energy_uj"], "dynamic_energy_uj": stats["dynamic_energy_uj"],
            "energy_split_uj": stats["energy_split_uj"], "edp_js": stats["energy_uj"] * stats["latency_us"] * 1e-12,
            "cores": stats["cores"], "chips": stats["chips"], "synaptic_ops": stats["synaptic_ops"],
            "spikes": stats["spikes"], "neuron_updates": stats["neuron_updates"],
            "accuracy": None if y is None else float((predictions == y).mean()),
            "agreement_with_ann": float((predictions == ann_predictions).mean()),
            "sources": {key: text for key, text in chip.sources.items() if key.startswith("costs")}}


def _snn_row(config: dict) -> dict:
    steps = f"T={config['timesteps'] or 'default'}"
    if config.get("items"):  # a sequence model (benchmark_sequence): K steps per item, L items
        steps = f"K={config['timesteps']} x {config['items']} items"
    name = f"SNN {config['target']} {config['coding']} {steps}"
    if not config["runs"]:
        return _row(name, "snn", "does not run", target=config["target"], reason=config["reason"])
    return _row(name, "snn", "modeled: chip", config["latency_us"], config["energy_uj"],
                config["dynamic_energy_uj"], config["energy_split_uj"], config["accuracy"],
                config["agreement_with_ann"], config["target"])


def _platform_row(result: dict, accuracy: float | None) -> dict:
    split = result["energy_split_uj"]
    int8 = result["platform"] == "edge"  # the float ANN's accuracy is not the int8 network's
    return _row(f"ANN {result['platform']}", "ann", "modeled: platform", result["latency_us"],
                result["energy_uj"], result["dynamic_energy_uj"],
                {"arithmetic": split["arithmetic"], "memory": split["sram"] + split["dram"],
                 "static": split["static"]}, None if int8 else accuracy, None if int8 else 1.0)


def _measured_row(result: dict, accuracy: float | None) -> dict:
    return _row(f"ANN {result['runtime']} here", "ann", "measured here", result["median_us"], result["energy_uj"],
                None, None, accuracy, 1.0)


def _row(name: str, system: str, how: str, latency_us: float | None = None, energy_uj: float | None = None,
         dynamic_uj: float | None = None, split: dict | None = None, accuracy: float | None = None,
         agreement: float | None = None, target: str | None = None, reason: str | None = None) -> dict:
    edp = None if latency_us is None or energy_uj is None else energy_uj * latency_us * 1e-12
    return {"name": name, "system": system, "target": target, "how": how, "latency_us": latency_us, "energy_uj": energy_uj,
            "dynamic_energy_uj": dynamic_uj, "energy_split_uj": split, "edp_js": edp, "accuracy": accuracy,
            "agreement_with_ann": agreement, "reason": reason}


def _data(data, labels, samples: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Samples and labels (None where not given), the first ``samples`` of them."""
    if data is None:
        return None, None
    if labels is None and isinstance(data, tuple) and len(data) == 2:
        data, labels = data
    x = as_array(data, "data")
    if len(x) == 0:
        raise BadDataError("data: has no samples")
    count = len(x) if samples is None else options.positive(samples, "samples")
    y = None if labels is None else np.asarray(labels)[:count]
    if y is not None and (y.shape != (min(count, len(x)),) or y.dtype.kind not in "iu"):
        raise BadDataError(f"data: labels must be {len(x)} integer class indices, got {y.dtype} of shape {y.shape}")
    return x[:count], y


def _calibration(calibration, x: np.ndarray | None, count: int) -> np.ndarray:
    if calibration is None and x is None:
        raise BadDataError("bench needs samples to compile with: pass calibration data (CLI: --calibration "
                           "DATA.npz) or data (--data DATA.npz), a few hundred samples as the ANN expects them")
    return as_array(calibration if calibration is not None else x, "calibration data")[:count]


def _name(model, graph) -> str:
    if isinstance(model, (str, Path)):
        return Path(model).stem
    return type(model).__name__ if hasattr(model, "forward") else graph.name
