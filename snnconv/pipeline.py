"""The order of the passes, in one place.

``convert`` takes an imported IR graph to a spiking one; each pass's notes are kept for
the report. When a pass fails, the error says which passes had already run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnconv.errors import SnnconvError
from snnconv.ir import Graph
from snnconv.passes.canonicalize import Canonicalize
from snnconv.passes.fold_batchnorm import FoldBatchNorm
from snnconv.passes.normalize import Normalize
from snnconv.passes.spike import Spike

__all__ = ["convert", "Conversion", "DEFAULT_PERCENTILE", "DEFAULT_PER_CHANNEL"]

# Chosen by measurement (benchmarks/accuracy.py, README): the best SNN accuracy across
# the bundled models at T = 4..32 among max, 99.9, 99.99 and 99.999.
DEFAULT_PERCENTILE = 99.99
DEFAULT_PER_CHANNEL = True


@dataclass
class Conversion:
    """The spiking graph and, per pass, its notes."""

    graph: Graph
    notes: dict[str, dict] = field(default_factory=dict)


def convert(graph: Graph, calibration=None, *, percentile: float = DEFAULT_PERCENTILE, per_channel: bool = DEFAULT_PER_CHANNEL,
            max_pool: str = "spiking", encoding: str = "current") -> Conversion:
    """Canonicalize, fold BN, normalize with ``calibration``, and convert to IF neurons."""
    passes = [
        Canonicalize(),
        FoldBatchNorm(),
        Normalize(calibration, percentile=percentile, per_channel=per_channel),
        Spike(max_pool=max_pool, encoding=encoding),
    ]
    notes: dict[str, dict] = {}
    for step in passes:
        try:
            result = step.run(graph)
        except SnnconvError as exc:
            done = ", ".join(notes) or "none"
            raise type(exc)(f"{exc} (in pass {step.name}; passes already run: {done})") from None
        graph = result.graph.validate()
        notes[step.name] = result.notes
    return Conversion(graph, notes)
