"""The ANN measured on this machine at batch size 1: onnxruntime and torch, latency and, where readable, energy.

Why: the modeled platforms (``snnconv.platforms``) are lower bounds; a measurement says
what a real runtime on a real CPU takes, overheads included. As ``BENCHMARKING.md``
asks, both runtimes get the same treatment: one thread each (one core, like the modeled
server CPU), warm-up runs first, then blocks of ``BLOCK`` timed runs interleaved
(onnxruntime, torch, onnxruntime, ...) so that a change of load hits both alike, until
``budget_s`` is spent. Each reports the median and the 10th and 90th percentiles of its
run times, and the energy per run from Linux RAPL (``snnconv.rapl``) summed over its
blocks, or why that is not measurable here. ``/proc/pressure/cpu`` (the share of time
some task waited for a CPU over the last 10 s) is recorded after the runs: a high value
means something else competed.

The input is one all-zero sample: a dense or convolutional ANN does the same work on
any input.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from snnconv import ann_cost, rapl
from snnconv.ir import Graph

__all__ = ["BLOCK", "BUDGET_S", "measure"]

WARMUP = 20
BLOCK = 25  # runs per block: long enough for RAPL counters, which update about once a millisecond
BUDGET_S = 1.0  # for all runtimes together
MAX_RUNS = 5000  # per runtime
PRESSURE = Path("/proc/pressure/cpu")


def measure(model, graph: Graph, budget_s: float = BUDGET_S, powercap: Path = rapl.POWERCAP) -> dict:
    """Latency (and energy where RAPL is readable) of one inference of the ANN ``graph`` in onnxruntime (from
    the ONNX ``model``; not without one) and in torch, on this CPU at batch 1 with one thread."""
    runners, unavailable = _runners(model, graph)
    meter, energy_source = rapl.package_meter(powercap)
    times: dict[str, list[int]] = {name: [] for name in runners}
    joules = dict.fromkeys(runners, 0.0)
    with _one_thread():
        for run, _ in runners.values():
            for _ in range(WARMUP):
                run()
        deadline = time.perf_counter() + budget_s
        while (min(map(len, times.values())) < 2 * BLOCK or time.perf_counter() < deadline) \
                and max(map(len, times.values())) < MAX_RUNS:
            for name, (run, _) in runners.items():
                joules[name] += _block(run, times[name], meter)
    return {"threads": 1, "batch": 1, "cpu_pressure_avg10": _pressure(), "energy_source": energy_source,
            "runtimes": [_summary(name, how, times[name], joules[name] if meter else None)
                         for name, (_, how) in runners.items()],
            "unavailable": unavailable}


def _runners(model, graph: Graph) -> tuple[dict[str, tuple[Callable[[], object], str]], dict[str, str]]:
    """What runs one inference in each runtime and how it is described; and the runtimes that cannot, with why."""
    import torch

    from snnconv import ann

    runners, unavailable = {}, {}
    try:
        import onnxruntime

        if model is None:
            raise ValueError("no ONNX model (benchmarked from an IR graph)")
        session, feed = ann_cost.session(model, graph.input.source_shape or graph.input.shape)
        runners["onnxruntime"] = (lambda: session.run(None, feed),
                                  f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider, 1 thread")
    except Exception as exc:  # noqa: BLE001 - ImportError, no model, or onnxruntime's errors (plain Exceptions)
        unavailable["onnxruntime"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    sample = np.zeros((1, *graph.input.shape), np.float32)
    runners["torch"] = (lambda: ann.activations(graph, sample, [graph.output.name]),
                        f"torch {torch.__version__} eager (snnconv's IR evaluator, one op per layer), 1 thread")
    return runners, unavailable


def _block(run: Callable[[], object], times: list[int], meter: rapl.Meter | None) -> float:
    """``BLOCK`` timed runs appended to ``times`` (ns); the packages' energy meanwhile in joules (0 without a
    meter)."""
    start = meter.read() if meter else None
    for _ in range(BLOCK):
        began = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - began)
    return meter.joules_since(start) if meter else 0.0


def _summary(name: str, how: str, times: list[int], joules: float | None) -> dict:
    deciles = statistics.quantiles(times, n=10)
    return {"runtime": name, "how": how, "runs": len(times), "median_us": statistics.median(times) / 1e3,
            "p10_us": deciles[0] / 1e3, "p90_us": deciles[-1] / 1e3,
            "energy_uj": None if joules is None else joules / len(times) * 1e6}


@contextmanager
def _one_thread():
    """torch on one thread for the measurement, as onnxruntime (``ann_cost.session``); restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pressure() -> float | None:
    """``some avg10`` of ``/proc/pressure/cpu`` in percent, or None where the kernel does not report it."""
    try:
        first = PRESSURE.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=") for part in first.split()[1:])
    return float(fields["avg10"])
