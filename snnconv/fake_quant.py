"""What folding a QDQ model's activation quantizers changes in its ANN, measured at compile time.

The frontend turns each QuantizeLinear -> DequantizeLinear pair on an activation into a
capped ReLU, or drops it, and records each in the graph fact ``fake_quant``
(``snnconv.frontend.ops.quantization``): the imported ANN computes without the pairs'
rounding to their scale's grid (and, where a pair was dropped, without its clip). The
difference is measured on the calibration data: onnxruntime runs the source model,
quantizers included, and the float evaluator the imported graph, on the same first
samples (up to ``SAMPLES``, and as many as ``BUDGET_MACS`` multiply-accumulates allow).
Recorded as graph fact ``fake_quant_effect``: the samples, the fraction on which both
rank the same output first (top-1 agreement) and the relative RMS difference of the
outputs, ``||y_qdq - y|| / ||y_qdq||``. onnxruntime runs on one thread, so the figures,
which go into the artifact, are the same on every compilation on one machine.
"""

from __future__ import annotations

import logging

import numpy as np

from snnconv import ann, ann_cost
from snnconv.data import iter_batches
from snnconv.ir import Graph

__all__ = ["BUDGET_MACS", "SAMPLES", "effect"]

log = logging.getLogger(__name__)

SAMPLES = 256
BUDGET_MACS = 2 ** 33  # about a second of onnxruntime and of the float evaluator on two cores
MIN_SAMPLES = 8  # fewer say little about agreement


def effect(graph: Graph, model, calibration) -> dict:
    """The ``fake_quant_effect`` fact of ``graph`` imported from the ONNX ``model``, or why it was not measured."""
    count = min(SAMPLES, BUDGET_MACS // max(1, ann_cost.macs(graph)))
    if count < MIN_SAMPLES:
        return {"measured": False, "reason": f"fewer than {MIN_SAMPLES} samples fit {BUDGET_MACS:,} MACs"}
    if not hasattr(calibration, "shape") and iter(calibration) is calibration:
        return {"measured": False, "reason": "the calibration data is a one-shot stream"}
    try:
        import onnxruntime
    except ImportError:
        return {"measured": False, "reason": "onnxruntime is not installed (pip install onnxruntime)"}
    x = _first(calibration, count)
    try:
        quantized = _onnxruntime(onnxruntime, model, x.reshape(len(x), *(graph.input.source_shape or graph.input.shape)))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors derive from Exception alone
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("onnxruntime could not run the QDQ model: %s", reason)
        return {"measured": False, "reason": f"onnxruntime could not run the model: {reason}"}
    folded = ann.evaluate(graph, x.reshape(len(x), *graph.input.shape)).reshape(len(x), -1).astype(np.float64)
    quantized = quantized.reshape(len(x), -1).astype(np.float64)
    agreement = float((folded.argmax(axis=1) == quantized.argmax(axis=1)).mean())
    error = float(np.linalg.norm(folded - quantized) / (np.linalg.norm(quantized) or 1.0))
    return {"measured": True, "samples": len(x), "top1_agreement": round(agreement, 6),
            "relative_rms": float(f"{error:.6g}"),
            "how": "onnxruntime, quantizers kept, vs snnconv's imported float graph, on the first calibration samples"}


def _first(calibration, count: int) -> np.ndarray:
    """The first ``count`` samples of the calibration data (fewer if it has fewer)."""
    parts, seen = [], 0
    for batch in iter_batches(calibration, count, "calibration data"):
        parts.append(batch[:count - seen])
        seen += len(parts[-1])
        if seen >= count:
            break
    return np.concatenate(parts)


def _onnxruntime(onnxruntime, model, x: np.ndarray) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
