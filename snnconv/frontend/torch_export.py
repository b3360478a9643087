"""A ``torch.nn.Module`` plus an example input -> ONNX ModelProto, in memory.

Both of torch's exporters are offered: ``"dynamo"`` (``torch.export``, the default of
current torch) and ``"legacy"`` (TorchScript tracing). The batch axis is exported as
dynamic so the model takes any batch size; the module's training flag is restored.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import onnx
import torch

from snnconv.errors import BadModelError

__all__ = ["export_module", "EXPORTERS"]

EXPORTERS = ("dynamo", "legacy")


def export_module(module: torch.nn.Module, example_input: torch.Tensor, exporter: str = "dynamo") -> onnx.ModelProto:
    """Export ``module`` in eval mode, tracing it on ``example_input`` (batch first; a numpy array is taken as a
    tensor)."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if isinstance(example_input, np.ndarray):
        example_input = torch.from_numpy(example_input)
    if not isinstance(example_input, torch.Tensor) or example_input.ndim < 2:
        raise BadModelError("example_input must be a tensor of shape (batch, ...) that the module accepts")
    if example_input.dtype != torch.float32:
        raise BadModelError(f"example_input has dtype {example_input.dtype}; snnconv converts float32 networks: "
                            "pass a float32 example (example.float()) and a module in float32 (module.float())")
    was_training = module.training
    module.eval()
    try:
        with _quiet():
            return _export(module, example_input, exporter)
    except Exception as exc:  # exporters raise many kinds; all mean the module did not export
        raise BadModelError(f"torch module {type(module).__name__}: ONNX export ({exporter}) failed: {exc}") from exc
    finally:
        module.train(was_training)


def _export(module: torch.nn.Module, example_input: torch.Tensor, exporter: str) -> onnx.ModelProto:
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(module, (example_input,), dynamo=True, input_names=["input"],
                                    dynamic_shapes=({0: batch},), verbose=False)
        return program.model_proto
    buffer = io.BytesIO()
    torch.onnx.export(module, (example_input,), buffer, dynamo=False, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    return onnx.load_from_string(buffer.getvalue())


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints and deprecation warnings."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
