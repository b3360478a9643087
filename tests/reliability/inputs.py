"""Good inputs that the reliability tests break: small ONNX models and a way to run the
command line as a user does.

The models are small on purpose: fuzzing loads each thousands of times. Between them they
use every op family of the frontend, constant folding (``Shape -> Gather -> Concat``), a
residual and a concatenation.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib import resources

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

H = helper.make_node
MODELS = resources.files("snnconv.models")
LENET_SHAPE = (1, 8, 8)  # the sample shape of ``lenet``, the model the artifact is compiled from


def _weights(*dims: int) -> np.ndarray:
    """Random weights, the same on every call: a model builds to the same bytes each time."""
    return (np.random.default_rng(list(dims)).standard_normal(dims) * 0.3).astype(np.float32)


def _model(name: str, nodes, input_shape, initializers: dict, opset: int = 13) -> onnx.ModelProto:
    """A checked model reading ``x`` (N, *input_shape) and writing ``y`` (N, classes)."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "classes"])],
        [numpy_helper.from_array(np.asarray(value), key) for key, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def lenet() -> onnx.ModelProto:
    """Conv, BatchNorm, Relu, MaxPool, Flatten, Gemm on 1x8x8 inputs."""
    nodes = [H("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             H("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"]),
             H("Relu", ["n"], ["r"]), H("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             H("Flatten", ["p"], ["f"]), H("Gemm", ["f", "F", "FB"], ["y"], transB=1)]
    inits = {"W": _weights(4, 1, 3, 3), "B": _weights(4), "g": np.ones(4, np.float32), "b": _weights(4),
             "m": _weights(4), "v": np.full(4, 1.5, np.float32), "F": _weights(10, 64), "FB": _weights(10)}
    return _model("lenet", nodes, LENET_SHAPE, inits)


def residual() -> onnx.ModelProto:
    """Conv, Relu, Conv, Add (a residual), GlobalAveragePool, Flatten, MatMul + Add, Softmax."""
    nodes = [H("Conv", ["x", "W1"], ["a"], pads=[1, 1, 1, 1]), H("Relu", ["a"], ["ra"]),
             H("Conv", ["ra", "W2"], ["b"], pads=[1, 1, 1, 1]), H("Add", ["ra", "b"], ["s"]), H("Relu", ["s"], ["rs"]),
             H("GlobalAveragePool", ["rs"], ["g"]), H("Flatten", ["g"], ["f"]), H("MatMul", ["f", "M"], ["mm"]),
             H("Add", ["mm", "MB"], ["logits"]), H("Softmax", ["logits"], ["y"], axis=1)]
    inits = {"W1": _weights(3, 2, 3, 3), "W2": _weights(3, 3, 3, 3), "M": _weights(3, 5), "MB": _weights(5)}
    return _model("residual", nodes, (2, 6, 6), inits)


def folded_reshape() -> onnx.ModelProto:
    """Pad, Conv, Clip (ReLU6), Concat, AveragePool, and a Reshape whose target is folded from Shape."""
    nodes = [H("Pad", ["x", "pads"], ["px"]), H("Conv", ["px", "W"], ["c"]), H("Clip", ["c", "lo", "hi"], ["k"]),
             H("Relu", ["x"], ["rx"]), H("Concat", ["k", "rx"], ["cat"], axis=1),
             H("AveragePool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             H("Shape", ["p"], ["shape"]), H("Gather", ["shape", "zero"], ["batch"], axis=0),
             H("Unsqueeze", ["batch", "axes"], ["batch1"]), H("Concat", ["batch1", "minus_one"], ["target"], axis=0),
             H("Reshape", ["p", "target"], ["f"]), H("Gemm", ["f", "F"], ["y"], transB=1, alpha=0.5)]
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "W": _weights(2, 3, 3, 3),
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32), "zero": np.array(0, np.int64),
             "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64), "F": _weights(4, 20)}
    return _model("folded_reshape", nodes, (3, 4, 4), inits)


def mlp() -> onnx.ModelProto:
    """Gemm, Relu, Dropout, Div by a constant, Gemm, Identity on 6 features."""
    nodes = [H("Gemm", ["x", "A", "AB"], ["h"], transB=1), H("Relu", ["h"], ["r"]), H("Dropout", ["r"], ["d"]),
             H("Div", ["d", "two"], ["q"]), H("Gemm", ["q", "C"], ["o"]), H("Identity", ["o"], ["y"])]
    inits = {"A": _weights(8, 6), "AB": _weights(8), "two": np.array([2.0], np.float32), "C": _weights(8, 3)}
    return _model("mlp", nodes, (6,), inits)


def small_models() -> dict[str, onnx.ModelProto]:
    """The generated models, by name."""
    return {build.__name__: build() for build in (lenet, residual, folded_reshape, mlp)}


def bundled(name: str) -> bytes:
    """A bundled model's file: ``mlp``, ``cnn`` or ``resnet``."""
    return MODELS.joinpath(f"mnist_{name}.onnx").read_bytes()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``snnconv`` outside the source tree, so the installed package (with snnconv.targets) is imported."""
    return subprocess.run([sys.executable, "-m", "snnconv.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir(), check=False)
