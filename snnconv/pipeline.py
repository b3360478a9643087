"""The order of the passes, in one place.

``convert`` takes an imported IR graph to a spiking one; each pass's notes are kept for
the report. When a pass fails, the error says which passes had already run.

Given the number of ``timesteps`` it will run for, the pipeline tunes the normalization
percentile and the initial membranes: each combination is compiled, and the one whose
SNN agrees best with the ANN's own predictions on (up to 512 of) the calibration samples
at that T is kept, then each IF layer's mean rate is corrected for that T
(``passes/correct_bias``), and last the steps the readout leaves out at the start
(``Output.burn_in``) are chosen. No labels are needed, and the test data is never seen.

Given a ``target``, the spiking graph is then lowered to synapses, its resets made
legal for the chip, and quantized to the chip's integer formats.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from snnconv import ann, ann_cost, geometry, neurons, overflow, progress
from snnconv.data import iter_batches
from snnconv.errors import SnnconvError, UnsupportedOpError
from snnconv.ir import Graph
from snnconv.passes.canonicalize import Canonicalize
from snnconv.passes.correct_bias import CorrectBias
from snnconv.passes.fold_batchnorm import FoldBatchNorm
from snnconv.passes.graded import Graded, GradeRelays
from snnconv.passes.legalize_fan_in import LegalizeFanIn
from snnconv.passes.legalize_reset import LegalizeReset
from snnconv.passes.lower_to_synapses import LowerToSynapses
from snnconv.passes.normalize import Normalize
from snnconv.passes.partition import Partition
from snnconv.passes.place import Place
from snnconv.passes.quantize import Quantize
from snnconv.passes.spike import V_INITS, Spike
from snnconv.snn import simulate
from snnconv.targets import Target

__all__ = ["DEFAULT_PERCENTILE", "DEFAULT_PER_CHANNEL", "PERCENTILES", "Conversion", "check_structure", "convert",
           "to_cores", "to_target"]

# Used when nothing can be tuned (no T given, or a one-shot calibration iterator): the
# best single setting across the bundled models in benchmarks/accuracy.py (README).
DEFAULT_PERCENTILE = 99.99
DEFAULT_PER_CHANNEL = True
PERCENTILES = (99.9, 99.99, 99.999)  # what percentile="auto" tries
TUNING_SAMPLES = 512  # calibration samples simulated for bias correction, and for tuning with tune="full"
TUNE_SAMPLES = {"fast": 128, "full": TUNING_SAMPLES}  # samples each tuning candidate is simulated on
# What "fast" (and "off", for bias correction) may simulate, in the float simulation's
# multiply-accumulates: the network's MACs x T x samples (x 2 for bias correction, whose
# sweep runs each IF layer twice). 2^38 is about 17 s at the ~16 G/s measured on 2 cores:
# the bundled MNIST nets tune on all 128 samples up to T = 128, while MobileNet-v1-128 or ResNet-18 at T = 32
# could not tune on even MIN_TUNE_SAMPLES and keep the defaults (tune="full" tunes them).
FAST_WORK = {"tuning": 2**38, "bias": 2**37}
MIN_TUNE_SAMPLES = 16  # fewer cannot rank candidates: each sample is 1/16 of the agreement
DEFAULT_TIMESTEPS = 32  # what the output integrator is sized for when no T is given
BURN_INS = (2, 4, 6, 8)  # readout burn-ins tuned (those up to T / 4), beside reading every step

logger = logging.getLogger(__name__)


@dataclass
class Conversion:
    """The spiking graph and, per pass, its notes."""

    graph: Graph
    notes: dict[str, dict] = field(default_factory=dict)


def convert(graph: Graph, calibration=None, *, target: Target | None = None, reset: str = "emulate",
            percentile: float | str = "auto", per_channel: bool = DEFAULT_PER_CHANNEL, max_pool: str = "spiking",
            encoding: str = "current", v_init: str = "auto", timesteps: int | None = None,
            correct_bias: bool = True, neuron: str = "if", decay: int = 0, spikes_per_step: int | None = None,
            tune: str = "fast") -> Conversion:
    """Canonicalize, fold BN, normalize with ``calibration``, convert to IF neurons, and fit ``target``.

    A network trained with QCFS activations (``snnconv.training``; graph fact
    ``qcfs_levels``) takes its ceilings as the scales and ``v_init`` half: nothing is tuned
    or bias-corrected (at T = L its expected error is zero, Bu et al. 2022).
    ``percentile`` and ``v_init`` may be "auto": every combination is compiled and the
    one whose SNN at ``timesteps`` agrees best with the ANN on the calibration samples
    is kept; then each IF layer's mean rate is corrected for that T (``correct_bias``).
    Both need ``timesteps`` and calibration data that can be read twice; without them
    the defaults are used. With a ``target``, the result is at the chip's precision
    (``reset``: how a chip without subtractive reset gets one, see ``legalize_reset``).
    ``neuron`` names the neuron model (``snnconv.neurons``), ``decay`` a leaky one's decay
    in 4096ths per step, ``spikes_per_step`` the most a graded or burst neuron fires in one
    step (None: the model's default). ``tune``: "fast" simulates each candidate on up to 128
    calibration samples within a work budget (``FAST_WORK``; a network too big to tune on
    ``MIN_TUNE_SAMPLES`` keeps the defaults, and the notes say so), "full" on up to 512,
    "off" takes the defaults; the candidate whose predictions agree most with the ANN's
    wins, ties broken by the smaller output error; one pass over the calibration data
    serves every percentile. Bias correction runs on the samples that fit
    ``FAST_WORK["bias"]`` (all of them with "full"). Last, unless ``tune`` is "off", the
    readout's burn-in (``Output.burn_in``, see ``_burn_in``) is tuned on the tuning samples.
    """
    recurrent = [layer.name for layer in graph if layer.kind == "recurrent"]
    if recurrent:
        raise UnsupportedOpError(f"{recurrent[0]}: a recurrent layer streams a sequence item by item, which this "
                                 "pipeline does not; compile it with snnconv.compile(model, target, calibration) "
                                 "or `snnconv compile`, which hand it to snnconv.recurrent")
    check = None if target is None else lambda trial: _lowerable(trial, target)
    conversion = _spiking(graph, calibration, percentile, per_channel, max_pool, encoding, v_init, timesteps,
                          correct_bias, {"model": neuron, "decay": decay, "spikes_per_step": spikes_per_step}, tune,
                          check)
    return conversion if target is None else to_target(conversion, target, timesteps, reset)


def check_structure(graph: Graph, target: Target) -> int:
    """Refuse, by its one-line error, a network whose structure ``target``'s synapse maps cannot compute, before
    any calibration data is read (scales from the weights: structure does not depend on them); else the number
    of layers it lowers to."""
    quiet = logging.getLogger(Normalize.__module__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the weight-based scales' warning is not news here
    try:
        conversion = _spiking(graph, None, DEFAULT_PERCENTILE, DEFAULT_PER_CHANNEL, "spiking", "current", "half",
                              None, False, {"model": "if", "decay": 0, "spikes_per_step": None}, "off")
    finally:
        quiet.setLevel(level)
    return len(_lowerable(conversion, target))


def _lowerable(trial: Conversion, target: Target) -> Graph:
    """Refuse now what lowering to the chip's synapses would refuse after tuning (no synapse map computes two
    weighted layers in a row, a position-dependent average, a max pool of negative scales): structure does not
    depend on the tuned scales, and tuning a large network takes minutes."""
    spiking, notes = trial.graph, dict(trial.notes)
    for step in _lowering(spiking, target):
        spiking = _run(step, spiking, notes)
    return spiking


def _lowering(spiking: Graph, target: Target) -> tuple:
    """The passes that take a float spiking graph to the chip's synapse maps."""
    return LegalizeFanIn(target), *([GradeRelays()] if spiking.fact("graded") else []), LowerToSynapses()


def to_target(conversion: Conversion, target: Target, timesteps: int | None = None,
              reset: str = "emulate") -> Conversion:
    """A float spiking conversion lowered to synapses, legalized and quantized for ``target``."""
    spiking, notes = conversion.graph, dict(conversion.notes)
    for step in (*_lowering(spiking, target), LegalizeReset(target, reset),
                 Quantize(target, timesteps or DEFAULT_TIMESTEPS)):
        spiking = _run(step, spiking, notes)
    return Conversion(spiking, notes)


def to_cores(conversion: Conversion, target: Target, chips: int | None = None,
             calibration=None, spread: bool = False) -> Conversion:
    """A quantized conversion partitioned into cores and placed on chips.

    With ``calibration``, traffic is estimated from the spike rates the ANN's clipped
    activations predict on (up to 256 of) its samples; else from fan-out counts.
    ``spread``: partition balances the expected synaptic operations (from the same
    rates, per neuron) over one chip's cores instead of using the fewest cores
    (``passes.partition``).
    """
    rates = _rates(conversion.graph, calibration) if calibration is not None else None
    maps = _rates(conversion.graph, calibration, per_neuron=True) if spread and calibration is not None else None
    graph, notes = conversion.graph, dict(conversion.notes)
    for step in (Partition(target, spread, maps), Place(target, chips, rates)):
        graph = _run(step, graph, notes)
    return Conversion(graph, notes)


def _rates(graph: Graph, calibration, per_neuron: bool = False) -> dict[str, np.ndarray]:
    """Mean messages per step per channel of every spiking population, from the ANN equivalent's activations.

    A binary neuron's activation is its rate, at most one spike and message per step; a
    graded neuron's is its payload per step, sent in at most one message per step (so
    ``min(payload, 1)``: a payload below 1 per step is a message in that fraction of the
    steps); a burst of up to ``G`` spikes is that many messages. ``per_neuron``: per
    neuron instead of per channel (what ``spread`` balances).
    """
    samples = np.concatenate(list(_first_samples(calibration, 256)))
    names = [p.name for p in geometry.populations(graph)]
    values = ann.activations(graph, samples, names)
    return {name: np.clip(v, 0, _messages_per_step(graph, name)).mean(
        axis=0 if per_neuron else tuple(i for i in range(v.ndim) if i != 1)) for name, v in values.items()}


def _messages_per_step(graph: Graph, name: str) -> float:
    """The most messages a population (or spiking max pool) sends per neuron and step."""
    return overflow.spikes_per_step(graph, name) / overflow.payload(graph, name)


def _spiking(graph: Graph, calibration, percentile, per_channel, max_pool, encoding, v_init, timesteps,
             correct_bias, neuron: dict, tune: str, check=None) -> Conversion:
    notes: dict[str, dict] = {}
    for step in (Canonicalize(), FoldBatchNorm()):
        graph = _run(step, graph, notes)
    simulable = _tunable(calibration, timesteps, encoding)
    samples = np.concatenate(list(_first_samples(calibration, TUNING_SAMPLES))) if simulable else None
    work = ann_cost.macs(graph) * (timesteps or 0)  # one sample's simulation
    if graph.fact("qcfs_levels"):  # trained for conversion: ceilings are the scales, the shift half a step, and
        percentile, v_init, correct_bias = 100.0, "half", False  # at T = L its expected error is already zero
    auto = [name for name, value in (("percentile", percentile), ("v_init", v_init)) if value == "auto"]
    candidates = (len(PERCENTILES) if "percentile" in auto else 1) * (len(V_INITS) if "v_init" in auto else 1)
    count, skipped = _tuning_samples(tune, work, candidates, len(samples) if simulable else 0, timesteps, auto)
    tunable = simulable and tune != "off" and skipped is None
    percentiles = [percentile] if percentile != "auto" else list(PERCENTILES) if tunable else [DEFAULT_PERCENTILE]
    schemes = [v_init] if v_init != "auto" else list(V_INITS) if tunable else ["half"]
    trials = _trials(graph, calibration, percentiles, schemes, per_channel, max_pool, encoding, neuron, notes)
    if check is not None and simulable:  # before tuning and bias correction simulate
        check(Conversion(*next(iter(trials.values()))))
    if not simulable:
        return Conversion(*next(iter(trials.values())))
    started = time.perf_counter()
    tuning = samples[:count] if len(trials) > 1 else samples[:0]
    scores = _agreement(graph, {key: g for key, (g, _) in trials.items()}, tuning, timesteps)
    best = max(scores, key=scores.get)
    spiking, notes = trials[best]
    notes["tuning"] = {"mode": tune, "timesteps": timesteps, "samples": len(tuning),
                       "chosen": {"percentile": best[0], "v_init": best[1]},
                       "agreement": {f"p{p:g} {s}": a for (p, s), (a, _) in scores.items()},
                       "output_error": {f"p{p:g} {s}": -e for (p, s), (_, e) in scores.items()},
                       "candidates": len(trials), "seconds": round(time.perf_counter() - started, 2)}
    if skipped:
        notes["tuning"]["skipped"] = skipped
        logger.warning("%s", skipped)
    if correct_bias:
        spiking = _correct_bias(spiking, notes, samples, timesteps, tune, work)
    if tunable:
        spiking = _burn_in(graph, spiking, tuning if len(tuning) else samples[:count], timesteps, notes["tuning"])
    return Conversion(spiking, notes)


def _burn_in(ann_graph: Graph, spiking: Graph, samples: np.ndarray, timesteps: int, notes: dict) -> Graph:
    """The spiking graph with the readout's burn-in (``Output.burn_in``), chosen last, on the network as it
    will run, from one simulation read at each candidate step.

    Only ``BURN_INS`` up to a quarter of T are tried. Against reading every step, a burn-in
    turns some tuning samples into agreements with the ANN (``fixed``) and others into
    disagreements (``broken``); it is kept only where the net gain is significant, at least
    twice its standard deviation under a coin flip (a sign test, ``fixed - broken >= 2
    sqrt(fixed + broken)``): a difference of one or two samples in 128 is what another draw
    of calibration samples reverses (measured on the bundled nets: -0.4 to +0.9 points on the
    test samples), while start-up spikes that wreck an output are not subtle.
    """
    candidates = [k for k in BURN_INS if k <= timesteps // 4]
    if not candidates or not len(samples):
        return spiking
    progress.stage(f"tuning: readout burn-in {candidates} on {len(samples)} samples at T = {timesteps}")
    target = ann.evaluate(ann_graph, samples, ann_graph.output.inputs[0]).argmax(axis=1)
    outputs = simulate(spiking, samples, timesteps, checkpoints=candidates).outputs
    agrees = {0: outputs[timesteps].argmax(axis=1) == target}
    for k in candidates:  # the mean per step after step k, from the integrals after steps k and T
        agrees[k] = ((timesteps * outputs[timesteps] - k * outputs[k]) / (timesteps - k)).argmax(axis=1) == target
    gains = {k: (int((agrees[k] & ~agrees[0]).sum()), int((agrees[0] & ~agrees[k]).sum())) for k in candidates}
    significant = {k: fixed - broken for k, (fixed, broken) in gains.items()
                   if fixed - broken > 0 and fixed - broken >= 2 * math.sqrt(fixed + broken)}
    best = max(significant, key=lambda k: (significant[k], -k)) if significant else 0
    notes["chosen"]["burn_in"] = best
    notes["burn_in_agreement"] = {k: float(a.mean()) for k, a in agrees.items()}
    notes["burn_in_fixed_broken"] = gains
    if not best:
        return spiking
    return spiking.rebuilt(dataclasses.replace(layer, burn_in=best) if layer is spiking.output else layer
                           for layer in spiking)


def _correct_bias(spiking: Graph, notes: dict, samples: np.ndarray, timesteps: int, tune: str, work: int) -> Graph:
    """Bias correction on the calibration samples whose simulation fits the work budget (all of them for "full")."""
    fits = len(samples) if tune == "full" else FAST_WORK["bias"] // max(1, 2 * work)
    count = max(1, min(fits, len(samples)))
    spiking = _run(CorrectBias(samples[:count], timesteps), spiking, notes)
    if count < len(samples):
        notes["correct_bias"].update(samples_given=len(samples), limited_by=(
            f"tune={tune!r}: {_gmacs(FAST_WORK['bias'])} G multiply-accumulates of simulation"))
    return spiking


def _tuning_samples(tune: str, work: int, candidates: int, available: int, timesteps: int | None,
                    auto: list[str]) -> tuple[int, str | None]:
    """How many calibration samples each candidate is simulated on, and why tuning is skipped (None if not).

    ``work``: multiply-accumulates of one sample's simulation at ``timesteps``. "fast"
    fits ``FAST_WORK["tuning"]``; when that leaves fewer than ``MIN_TUNE_SAMPLES`` per
    candidate, tuning is skipped and the defaults of the ``auto`` options are kept.
    """
    wanted = min(available, TUNE_SAMPLES.get(tune, 0))
    if tune != "fast" or candidates < 2 or not wanted:
        return wanted, None
    fits = FAST_WORK["tuning"] // max(1, candidates * work)
    if fits >= min(wanted, MIN_TUNE_SAMPLES):
        return min(wanted, fits), None
    defaults = {"percentile": f"percentile {DEFAULT_PERCENTILE:g}", "v_init": "v_init 'half'"}
    return 0, (f"tuning skipped: simulating {candidates} candidates on {MIN_TUNE_SAMPLES} samples at "
               f"T = {timesteps} takes {_gmacs(candidates * work * MIN_TUNE_SAMPLES)} G multiply-accumulates, "
               f"over the {_gmacs(FAST_WORK['tuning'])} G that tune='fast' allows; kept "
               f"{' and '.join(defaults[name] for name in auto)} (tune='full' tunes them)")


def _gmacs(count: int) -> str:
    return f"{count / 1e9:,.0f}"


def _trials(graph: Graph, calibration, percentiles, schemes, per_channel, max_pool, encoding, neuron: dict,
            notes: dict) -> dict[tuple, tuple[Graph, dict]]:
    """Every (percentile, v_init) candidate, normalized and converted, with its notes."""
    measured = None
    if calibration is not None and len(percentiles) > 1:
        progress.stage("calibration: activation histograms")
        measured = Normalize(calibration, per_channel=per_channel).measure(graph)
    trials: dict[tuple, tuple[Graph, dict]] = {}
    for p in percentiles:
        trial_notes = dict(notes)
        normalized = _run(Normalize(calibration, percentile=p, per_channel=per_channel, measured=measured,
                                    ceilings=bool(graph.fact("qcfs_levels"))), graph, trial_notes)
        for scheme in schemes:
            scheme_notes = dict(trial_notes)
            spiking = _run(Spike(max_pool, encoding, scheme, **neuron), normalized, scheme_notes)
            if neurons.fires_several(neuron["model"]):  # graded, burst: one step carries up to spikes_per_step
                spiking = _run(Graded(neuron["model"]), spiking, scheme_notes)
            trials[(p, scheme)] = (spiking, scheme_notes)
    return trials


def _run(step, graph: Graph, notes: dict) -> Graph:
    progress.stage(step.name)
    try:
        result = step.run(graph)
    except SnnconvError as exc:
        done = ", ".join(notes) or "none"
        raise type(exc)(f"{exc} (in pass {step.name}; passes already run: {done})") from exc
    notes[step.name] = result.notes
    return result.graph.validate()


def _tunable(calibration, timesteps: int | None, encoding: str) -> bool:
    """Tuning needs a known T, constant-current input and calibration data it can read twice."""
    one_shot = calibration is not None and not hasattr(calibration, "shape") and iter(calibration) is calibration
    return calibration is not None and timesteps is not None and encoding == "current" and not one_shot


def _agreement(ann_graph: Graph, trials: dict[tuple, Graph], samples: np.ndarray,
               timesteps: int) -> dict[tuple, tuple[float, float]]:
    """Per candidate, in order: the fraction of tuning samples where the SNN predicts what the ANN does, and
    minus the mean |SNN output - ANN logit| relative to the logits' range, which breaks ties (on few
    samples, candidates often agree equally: on 128 digits every CNN candidate at T = 8 may agree on all,
    while their errors differ by 2x). One trial: none is simulated."""
    if len(trials) == 1 or not len(samples):
        return {next(iter(trials)): (float("nan"), float("nan"))}
    progress.stage(f"tuning: {len(trials)} candidates simulated on {len(samples)} samples at T = {timesteps}")
    logits = ann.evaluate(ann_graph, samples, ann_graph.output.inputs[0])  # the SNN's outputs skip any softmax
    target, spread = logits.argmax(axis=1), float(np.ptp(logits)) or 1.0
    scores = {}
    for key, graph in trials.items():
        outputs = simulate(graph, samples, timesteps).outputs[timesteps]
        scores[key] = (float((outputs.argmax(axis=1) == target).mean()),
                       -float(np.abs(outputs - logits).mean()) / spread)
    return scores


def _first_samples(calibration, count: int):
    taken = 0
    for batch in iter_batches(calibration, 256, "calibration data"):
        yield batch[: count - taken]
        taken += len(batch[: count - taken])
        if taken >= count:
            return
