"""The op registry covers every opset from 9 to the newest the installed onnx knows."""

from __future__ import annotations

import onnx
import pytest

from snnconv.frontend import registry

NEWEST = onnx.defs.onnx_opset_version()


def _since(op: str, opset: int) -> int | None:
    """The version of ``op`` a model at ``opset`` uses; None where the op is newer (QuantizeLinear: opset 10)."""
    try:
        return onnx.defs.get_schema(op, max_inclusive_version=opset).since_version
    except onnx.defs.SchemaError:
        return None


@pytest.mark.parametrize("op", registry.supported_ops())
def test_every_supported_op_converts_at_every_opset(op):
    """A new onnx release that revises an op makes this fail until the converter is reviewed."""
    needed = {_since(op, v) for v in range(9, NEWEST + 1)} - {None}
    assert needed <= set(registry.registered_versions(op)), f"{op}: missing schema versions"


def test_the_required_ops_are_supported():
    required = {"Conv", "Gemm", "MatMul", "Add", "Sum", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip",
                "AveragePool", "GlobalAveragePool", "ReduceMean", "MaxPool", "Flatten", "Reshape", "Concat", "Pad",
                "Dropout", "Identity", "Softmax", "LogSoftmax"}
    assert required <= set(registry.supported_ops())


def test_registering_twice_is_an_error():
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.converter("Relu", 14)(lambda node, ctx: None)
