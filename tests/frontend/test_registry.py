"""The op registry covers every opset from 9 to the newest the installed onnx knows."""

from __future__ import annotations

import onnx
import pytest

from snnconv.frontend import registry

NEWEST = onnx.defs.onnx_opset_version()


@pytest.mark.parametrize("op", registry.supported_ops())
def test_every_supported_op_converts_at_every_opset(op):
    """A new onnx release that revises an op makes this fail until the converter is reviewed."""
    needed = {onnx.defs.get_schema(op, max_inclusive_version=v).since_version for v in range(9, NEWEST + 1)}
    assert needed <= set(registry.registered_versions(op)), f"{op}: missing schema versions"


def test_the_required_ops_are_supported():
    required = {"Conv", "Gemm", "MatMul", "Add", "Sum", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip",
                "AveragePool", "GlobalAveragePool", "ReduceMean", "MaxPool", "Flatten", "Reshape", "Concat", "Pad",
                "Dropout", "Identity", "Softmax", "LogSoftmax"}
    assert required <= set(registry.supported_ops())


def test_registering_twice_is_an_error():
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.converter("Relu", 14)(lambda node, ctx: None)
