"""The Python API's core: ``snnconv.compile`` a model for a target, run it, save it, load it.

``compile`` takes an ONNX path, an ``onnx.ModelProto`` or a ``torch.nn.Module`` (with
``example``, one input batch) and goes through the whole pipeline: import, conversion
tuned for ``timesteps``, legalization and quantization for the target, partition and
placement. The ``CompiledNetwork`` it returns runs on the chip model, reports its
partition and saves the ``.snn`` artifact; ``load`` reads one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnconv import artifact, targets
from snnconv.errors import BadArtifactError
from snnconv.ir import Graph
from snnconv.targets.target import Target, from_dict

__all__ = ["compile", "load", "CompiledNetwork"]

DEFAULT_TIMESTEPS = 32


@dataclass
class CompiledNetwork:
    """A network at a chip's precision, mapped onto its cores."""

    graph: Graph
    target: Target
    options: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    @property
    def report(self):
        from snnconv.report import PartitionReport

        return PartitionReport.from_graph(self.graph, self.target)

    @property
    def timesteps(self) -> int:
        return int(self.options.get("timesteps", DEFAULT_TIMESTEPS))

    def run(self, x, timesteps: int | None = None, batch_size: int = 256, device: str = "cpu", progress=None):
        """Simulate the chip on ``x``: predictions, outputs and per-inference statistics (``RunResult``)."""
        from snnconv.chip import run

        return run(self.graph, self.target, np.asarray(x), timesteps or self.timesteps, batch_size, device, progress)

    def save(self, path: str | Path) -> Path:
        """Write the ``.snn`` artifact atomically; the same compilation always gives the same bytes."""
        from snnconv import __version__

        extra = {"snnconv": __version__, "target": self.target.to_dict(), "options": self.options}
        return artifact.write(path, self.graph, extra)


def compile(model, target: str | Path | Target = targets.DEFAULT, calibration=None, *, example=None,
            input_shape: tuple[int, ...] | None = None, timesteps: int = DEFAULT_TIMESTEPS, chips: int | None = None,
            percentile: float | str = "auto", reset: str = "emulate", encoding: str = "current") -> CompiledNetwork:
    """Compile ``model`` for ``target`` with ``calibration`` data (an array, a tensor or batches)."""
    from snnconv.pipeline import convert, to_cores

    chip = targets.get(target)
    graph = _load(model, example, input_shape)
    conversion = convert(graph, calibration, target=chip, reset=reset, percentile=percentile, encoding=encoding,
                         timesteps=timesteps)
    mapped = to_cores(conversion, chip, chips, calibration)
    options = {"timesteps": timesteps, "chips": chips, "percentile": percentile, "reset": reset,
               "encoding": encoding}
    return CompiledNetwork(mapped.graph, chip, options, mapped.notes)


def load(path: str | Path) -> CompiledNetwork:
    """Read a ``.snn`` artifact (checked: format version and every array's checksum)."""
    loaded = artifact.read(path)
    try:
        target = from_dict(_finite(loaded.manifest["target"]), f"{path} (target)")
    except KeyError:
        raise BadArtifactError(f"{path}: manifest has no target") from None
    return CompiledNetwork(loaded.graph, target, dict(loaded.manifest.get("options", {})))


def _finite(value):
    """The manifest writes infinity as "inf"; targets want the number back."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return float("inf") if value == "inf" else value


def _load(model, example, input_shape) -> Graph:
    if isinstance(model, Graph):
        return model
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        from snnconv.frontend import load_torch

        if example is None:
            raise TypeError("compiling a torch module needs example=<one input batch>")
        return load_torch(model, example)
    from snnconv.frontend import load_onnx

    return load_onnx(model, input_shape=input_shape)
