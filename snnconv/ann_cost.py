"""The ANN's own cost per inference, the baseline the chip's figures are read against.

Measured at compile time, from the imported graph before conversion and from the ONNX
model it came from (for a torch module, the ONNX the frontend exported), because the
artifact holds only the converted network:

- **MACs**: multiply-accumulates of the weighted layers, dense and convolution, for one
  sample: ``out_features * in_features`` for a dense layer and
  ``C_out * H_out * W_out * (C_in / groups) * k_h * k_w`` for a convolution (padded taps
  included, as MAC counters such as ``snnconv inspect`` count them), and for a recurrent
  (Elman) layer its cell's ``H (F + H)`` per item times the ``L`` items of a sequence (one
  inference is one sequence). Bias adds,
  batch norm, pooling, residual adds and activation functions are not counted: NeuroBench
  counts synaptic operations of the same layers (Linear, Conv) and no others.
- **Energy**: ``MACs * E_MAC`` with ``E_MAC = 3.7 + 0.9 = 4.6 pJ``, a 32-bit float multiply
  plus a 32-bit float add at 45 nm (Horowitz, "Computing's energy problem", ISSCC 2014),
  since onnxruntime runs the model in float32. Memory access is not modeled: by the same
  source an 8 KB SRAM read of 64 bits costs about 10 pJ and a DRAM access 1.3-2.6 nJ,
  so a real processor spends more; the figure is the arithmetic only, the usual
  ``MACs x E_MAC`` of SNN papers.
- **Latency**: onnxruntime on this CPU (CPUExecutionProvider, one thread, batch size 1,
  an all-zero sample), the median of up to ``RUNS`` timed runs after ``WARMUP`` runs,
  within about ``BUDGET_S`` seconds. Without onnxruntime, or when it cannot run the
  model, the latency is None and ``latency_source`` says why.

The block keeps only figures that are the same on every compilation in the artifact
(``deterministic``): a timing there would break byte-identical output.
"""

from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from snnconv.ir import Conv, Dense, Graph, Recurrent

__all__ = ["ENERGY_SOURCE", "E_MAC_PJ", "ann_cost", "deterministic", "latency_us", "macs", "session"]

log = logging.getLogger(__name__)

E_MAC_PJ = 4.6  # float32 multiply 3.7 pJ + float32 add 0.9 pJ, 45 nm
ENERGY_SOURCE = ("Horowitz, ISSCC 2014, 45 nm: float32 multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ per MAC; "
                 "MACs of dense, conv and recurrent layers; memory access not modeled")
WARMUP = 10
RUNS = 200
BUDGET_S = 0.2
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def ann_cost(graph: Graph, model=None) -> dict:
    """MACs, modeled energy and measured latency of the ANN ``graph`` imported from the ONNX ``model``."""
    count = macs(graph)
    if model is None:
        latency, how = None, "no ONNX model (compiled from an IR graph)"
    else:
        latency, how = latency_us(model, graph.input.source_shape or graph.input.shape)  # the shape ONNX takes
    return {"macs": count, "energy_per_mac_pj": E_MAC_PJ, "energy_uj": count * E_MAC_PJ / 1e6,
            "source": ENERGY_SOURCE, "latency_us": latency, "latency_source": how}


def deterministic(cost: dict) -> dict:
    """The part of an ``ann_cost`` block that is the same on every compilation (no timing)."""
    return {key: value for key, value in cost.items() if key not in ("latency_us", "latency_source")}


def macs(graph: Graph) -> int:
    """Multiply-accumulates of the dense, convolution and recurrent layers of ``graph`` for one sample (a sequence)."""
    return sum(layer.macs(graph.input_shapes(layer)) for layer in graph if isinstance(layer, (Conv, Dense, Recurrent)))


def latency_us(model, sample_shape: tuple[int, ...]) -> tuple[float | None, str]:
    """Median onnxruntime latency in microseconds at batch size 1, and how it was measured (or why not)."""
    try:
        import onnxruntime
    except ImportError:
        return None, "onnxruntime is not installed (pip install onnxruntime)"
    try:
        times = _timed_runs(*session(model, sample_shape))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors derive from Exception alone
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("onnxruntime could not run the ANN, so its latency is not measured: %s", reason)
        return None, f"onnxruntime {onnxruntime.__version__} could not run the model: {reason}"
    how = (f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider on this CPU, batch 1, 1 thread, "
           f"median of {len(times)} runs after {WARMUP} warm-up runs")
    return statistics.median(times) / 1e3, how


def session(model, sample_shape: tuple[int, ...]) -> tuple[object, dict]:
    """An onnxruntime session of ``model`` on one CPU thread and its feed, one all-zero sample at batch 1.

    Raises ImportError without onnxruntime and onnxruntime's own errors when it cannot run the model.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    runner = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    first = runner.get_inputs()[0]
    return runner, {first.name: np.zeros((1, *sample_shape), _DTYPES.get(first.type, np.float32))}


def _timed_runs(session, feed: dict) -> list[int]:
    """Wall times in nanoseconds of up to ``RUNS`` runs, stopping once ``BUDGET_S`` is spent."""
    for _ in range(WARMUP):
        session.run(None, feed)
    times: list[int] = []
    deadline = time.perf_counter() + BUDGET_S
    while len(times) < RUNS and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter_ns()
        session.run(None, feed)
        times.append(time.perf_counter_ns() - start)
    return times
