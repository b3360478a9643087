"""snnconv: an ANN-to-SNN conversion compiler for neuromorphic chips."""

from snnconv import errors
from snnconv.ann import evaluate
from snnconv.frontend import load_onnx, load_torch
from snnconv.ir import Graph

__version__ = "0.1.0"

__all__ = ["errors", "evaluate", "load_onnx", "load_torch", "Graph", "__version__"]
