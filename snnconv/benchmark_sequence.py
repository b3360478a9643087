"""``snnconv bench`` for a sequence model (a ReLU RNN, ``snnconv.recurrent``): per item and per sequence.

The streamed SNN (``snnconv.recurrent``: each item presented for ``K`` steps, the
recurrent synapses delayed by ``K``) is costed by ``snnconv.recurrent_cost`` from the
spike counts of its run; the ANN is measured here at batch 1 on the whole sequence
(``snnconv.ann_measure``) and modeled on the reference platforms as what a batch-1
streaming RNN executes: ``L`` cell steps (one kernel of ``H x (F + H)`` MACs each, its
own dispatch, weights read again each step) and the head once (``platforms.model``,
which runs a recurrent layer so).
Per item is the sequence's figure divided by its items (the ANN's measured latency too:
onnxruntime runs the sequence in one call).

``timesteps`` are steps per item here (None: ``recurrent.DEFAULT_STEPS_PER_ITEM``); only
rate-coded IF (``"if"``) runs; the sequence runs locally (its simulation is one stream,
not batches of independent samples for Ray).
"""

from __future__ import annotations

import numpy as np

from snnconv import ann, ann_measure, platforms, recurrent, recurrent_cost
from snnconv.errors import BadOptionError, DoesNotFitError
from snnconv.ir import Graph, Recurrent
from snnconv.progress import reporting

__all__ = ["bench_sequence", "is_sequence_model", "platform_cost"]


def is_sequence_model(graph: Graph) -> bool:
    return any(isinstance(layer, Recurrent) for layer in graph)


def bench_sequence(name: str, graph: Graph, proto, chips: list, codings: list[str], steps: tuple, calibration: np.ndarray,
                   x: np.ndarray | None, y: np.ndarray | None, budget_s: float, executor: str):
    """The ``Bench`` of a recurrent ``graph``: one row per target (and steps per item), with ``per_item`` figures."""
    from snnconv.benchmark import Bench

    if executor != "local":
        raise BadOptionError(f"executor {executor!r}: a sequence model's streamed run stays on this machine; "
                             "drop --ray for it")
    activity = x if x is not None else calibration[:64]
    ann_predictions = ann.evaluate(graph, activity).argmax(axis=1)
    with reporting("measuring the ANN"):
        measured = ann_measure.measure(proto, graph, budget_s)
    items = graph.input.shape[0]
    snn = [_configuration(graph, chip, coding, k, calibration, activity, y, ann_predictions)
           for chip in chips for coding in codings for k in steps]
    settings = {"tune": "off", "calibration_samples": len(calibration), "targets": [chip.name for chip in chips],
                "codings": codings, "timesteps": list(steps),
                "activity_from": "the data" if x is not None else f"the first {len(activity)} calibration samples",
                "sequence": {"items": items, "timesteps_are": "steps per item",
                             "ann_per_item": "per sequence / items"}}
    return Bench(name, len(activity), y is not None,
                 None if y is None else float((ann_predictions == y).mean()), measured,
                 [platform_cost(graph, platform) for platform in platforms.PLATFORMS.values()], snn, settings)


def _configuration(graph: Graph, chip, coding: str, steps: int | None, calibration: np.ndarray, x: np.ndarray,
                   y: np.ndarray | None, ann_predictions: np.ndarray) -> dict:
    k = steps or recurrent.DEFAULT_STEPS_PER_ITEM
    config = {"target": chip.name, "coding": coding, "timesteps": k, "items": graph.input.shape[0]}
    if coding != "if":
        return {**config, "runs": False, "reason": f"coding {coding!r}: a recurrent network streams rate-coded "
                                                   "IF neurons only (use coding 'if')"}
    try:
        with reporting(f"compiling the sequence model for {chip.name}, {k} steps per item"):
            program = recurrent.compile(graph, chip, calibration, steps_per_item=k)
    except DoesNotFitError as exc:
        return {**config, "runs": False, "reason": str(exc)}
    result = recurrent.run(program, x)
    stats = recurrent_cost.statistics(program, chip, result)
    return {**config, "runs": True, "latency_us": stats["latency_us"], "energy_uj": stats["energy_uj"],
            "dynamic_energy_uj": stats["dynamic_energy_uj"], "energy_split_uj": stats["energy_split_uj"],
            "edp_js": stats["energy_uj"] * stats["latency_us"] * 1e-12, "cores": stats["cores"],
            "chips": stats["chips"], "synaptic_ops": stats["synaptic_ops"], "spikes": stats["spikes"],
            "neuron_updates": stats["neuron_updates"], "per_item": stats["per_item"],
            "saturations": int(result.saturations),
            "accuracy": None if y is None else float((result.predictions == y).mean()),
            "agreement_with_ann": float((result.predictions == ann_predictions).mean()),
            "sources": {key: text for key, text in chip.sources.items() if key.startswith("costs")}}


def platform_cost(graph: Graph, platform) -> dict:
    """``platforms.model`` of the sequence model (its recurrent layer as one cell step per item, the head once),
    with ``per_item`` figures: the sequence's divided by its items."""
    cost = platforms.model(graph, platform)
    items = graph.input.shape[0]
    return {**cost, "per_item": {"latency_us": cost["latency_us"] / items, "energy_uj": cost["energy_uj"] / items}}
