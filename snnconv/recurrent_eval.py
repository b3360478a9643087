"""``snnconv eval`` for a sequence model: the ANN vs the streamed SNN (``snnconv.recurrent``) per steps per item.

The same table as ``snnconv.evaluation.evaluate`` (its ``Evaluation`` and ``Row``), where
``timesteps`` are steps per item ``K`` (each of the ``L`` items presented for ``K`` steps;
a sequence takes ``L K``): per ``K``, the network compiled for it and run on the chip
model of ``snnconv.recurrent``, its accuracy, agreement with the ANN, the fidelity of its
final outputs to the ANN's logits, and synaptic operations, energy and latency per
sequence (``snnconv.recurrent_cost``). ``evaluation.evaluate`` hands a graph with a
recurrent layer here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from snnconv import ann, ann_cost, recurrent, recurrent_cost
from snnconv import options as valid
from snnconv import targets as known_targets
from snnconv.evaluation import CALIBRATION_SAMPLES, Evaluation, Row
from snnconv.evaluation import _mean_cosine as cosine  # one definition of the fidelity figures
from snnconv.evaluation import _relative_rms_error as relative_rms_error
from snnconv.ir import Graph
from snnconv.progress import reporting

__all__ = ["evaluate"]


def evaluate(graph: Graph, x: np.ndarray, y: np.ndarray, *, target="loihi", steps_per_item: Sequence[int] = (
        recurrent.DEFAULT_STEPS_PER_ITEM,), calibration=None, percentile: float = recurrent.DEFAULT_PERCENTILE,
             chips: int | None = None) -> Evaluation:
    """ANN vs SNN on sequences ``x`` (N, L, F) with labels ``y``, one row per steps per item."""
    steps = valid.timesteps_list(steps_per_item)
    chip = known_targets.get(target)
    reference = ann.evaluate(graph, x, graph.output.inputs[0]).reshape(len(x), -1)  # logits, before any softmax
    ann_predictions = reference.argmax(axis=1)
    calibration = np.asarray(calibration if calibration is not None else x[:CALIBRATION_SAMPLES], np.float32)
    rows = []
    for k in steps:
        with reporting(f"compiling the sequence model for {chip.name}, {k} steps per item"):
            program = recurrent.compile(graph, chip, calibration, steps_per_item=k, percentile=percentile,
                                        chips=chips)
        result = recurrent.run(program, x)
        stats = recurrent_cost.statistics(program, chip, result)
        predictions = result.predictions
        rows.append(Row("if", "if", k, k, float((predictions == y).mean()),
                        float((predictions == ann_predictions).mean()), relative_rms_error(result.outputs, reference),
                        cosine(result.outputs, reference), stats["synaptic_ops"], stats["energy_uj"],
                        stats["latency_us"]))
    return Evaluation(chip.name, len(x), float((ann_predictions == y).mean()), rows, _ann_cost(graph))


def _ann_cost(graph: Graph) -> dict:
    """The ANN's MACs per sequence (``ann_cost.macs``: ``L (F H + H H)`` and the head's) at ``ann_cost``'s energy
    per MAC; no latency measured here."""
    macs = ann_cost.macs(graph)
    return {"macs": macs, "energy_per_mac_pj": ann_cost.E_MAC_PJ, "energy_uj": macs * ann_cost.E_MAC_PJ / 1e6,
            "source": ann_cost.ENERGY_SOURCE, "latency_us": None, "latency_source": "not measured by eval"}

