"""snnconv's intermediate representation: layers and the graph that orders them.

The IR knows nothing of ONNX, torch, targets or files; everything else speaks it.
"""

from snnconv.ir.graph import Graph
from snnconv.ir.layers import (
    IF,
    LAYER_KINDS,
    OUTPUT_ACTIVATIONS,
    Add,
    Affine,
    BatchNorm,
    Concat,
    Conv,
    Dense,
    Flatten,
    Input,
    Layer,
    Output,
    Pad,
    Pool,
    Recurrent,
    ReLU,
    Round,
    Upsample,
    one_d_shape,
)

__all__ = [
    "OUTPUT_ACTIVATIONS",
    "Graph",
    "Layer",
    "Input",
    "Dense",
    "Conv",
    "BatchNorm",
    "Affine",
    "ReLU",
    "Recurrent",
    "IF",
    "Pool",
    "Add",
    "Concat",
    "Flatten",
    "Pad",
    "Upsample",
    "Output",
    "Round",
    "LAYER_KINDS",
    "one_d_shape",
]
