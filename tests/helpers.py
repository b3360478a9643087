"""Oracles and builders shared by the tests (on sys.path via pytest's ``pythonpath``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.version_converter

import snnconv

TOLERANCE = 1e-4  # max abs difference, float32, between the IR evaluator and onnxruntime


def calibration_reader(x: np.ndarray, batch: int = 100):
    """``x`` as onnxruntime's quantizer reads calibration data: a ``CalibrationDataReader`` of batches of input
    ``"input"``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": x[start:start + batch]} for start in range(0, len(x), batch)])

        def get_next(self):
            return next(self.batches, None)

    return Batches()


def onnxruntime_output(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The first output of ``model`` on ``x`` computed by onnxruntime (CPU)."""
    import onnxruntime

    if model.opset_import[0].version < 7:  # onnxruntime runs opset 7 and newer only
        pinned = onnx.ModelProto()
        pinned.CopyFrom(model)  # the version converter needs concrete dimensions
        initializers = {t.name for t in model.graph.initializer}
        graph_input = next(i for i in pinned.graph.input if i.name not in initializers)
        for dim, size in zip(graph_input.type.tensor_type.shape.dim, x.shape):
            dim.dim_value = size
        model = onnx.version_converter.convert_version(pinned, 9)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    initializers = {t.name for t in model.graph.initializer}
    name = next(i.name for i in session.get_inputs() if i.name not in initializers)
    return session.run(None, {name: x})[0]


def assert_matches_onnxruntime(model: onnx.ModelProto, x: np.ndarray, tolerance: float = TOLERANCE) -> snnconv.Graph:
    """Import ``model``, validate the IR, and compare its evaluation with onnxruntime's."""
    graph = snnconv.load_onnx(model).validate()
    expected = onnxruntime_output(model, x)
    actual = snnconv.ann.evaluate(graph, x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance)
    return graph


def make_model(nodes, input_shape, initializers=None, opset=13, input_name="x", output_name="y",
               declared_input_shape=None, output_rank=None) -> onnx.ModelProto:
    """A one-input, one-output model from onnx.helper nodes; initializers as name -> array.

    The output is declared with symbolic dims, of the input's rank unless ``output_rank``.
    """
    from onnx import TensorProto, helper, numpy_helper

    declared = declared_input_shape if declared_input_shape is not None else ["N", *input_shape[1:]]
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, declared)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT,
                                       [f"d{i}" for i in range(output_rank or len(input_shape))])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def inception_pool_model(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv -> ReLU -> 3x3 average pool with padding and count_include_pad=0 -> 1x1 conv -> ReLU -> dense, on
    (4, 1, 4, 4): Inception's pool, whose border divisors vary by position, before a conv that no synapse map
    computes together with it."""
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "W1", "b1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              count_include_pad=0),
             helper.make_node("Conv", ["p", "W2", "b2"], ["k"]), helper.make_node("Relu", ["k"], ["s"]),
             helper.make_node("Flatten", ["s"], ["f"]), helper.make_node("Gemm", ["f", "W3", "b3"], ["y"], transB=1)]
    shapes = {"W1": (4, 1, 3, 3), "b1": (4,), "W2": (4, 4, 1, 1), "b2": (4,), "W3": (3, 64), "b3": (3,)}
    return make_model(nodes, (4, 1, 4, 4), {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()})
