"""The ONNX frontend: the only part of snnconv that reads ONNX.

``load_onnx`` takes a path or a ModelProto; ``load_torch`` exports a torch module to ONNX
in memory first. Both return a validated IR ``Graph``.
"""

from __future__ import annotations

import os

import onnx

from snnconv.frontend.importer import import_model
from snnconv.frontend.reader import read_model
from snnconv.frontend.registry import supported_ops
from snnconv.ir import Graph

__all__ = ["load_onnx", "load_torch", "supported_ops"]


def load_onnx(model: str | os.PathLike | onnx.ModelProto, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read an ONNX model into the IR.

    ``input_shape`` is one sample's shape (no batch axis), needed only when the model
    leaves a non-batch dimension dynamic.
    """
    proto, label = read_model(model)
    return import_model(proto, label, input_shape)


def load_torch(module, example_input, exporter: str = "dynamo") -> Graph:
    """Export a ``torch.nn.Module`` to ONNX in memory (see ``torch_export``) and read it."""
    from snnconv.frontend.torch_export import export_module

    proto = export_module(module, example_input, exporter)
    return import_model(proto, f"<{type(module).__name__}>", tuple(example_input.shape[1:]))
