"""The whole-model cases of onnx's own backend test data (``pytorch-converted``).

Each supported case must import and match both onnxruntime and the expected output stored
with the case; each unsupported case must be refused with ``UnsupportedOpError`` naming
the node, for the reason listed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import onnxruntime_output
from onnx import numpy_helper

import snnconv
from snnconv.errors import UnsupportedOpError

CASES = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"

# Cases snnconv refuses, and why. Everything else in the folder must convert exactly.
UNSUPPORTED = {
    "1-D pooling exported as Unsqueeze at axis 3 (snnconv holds 1-D data as (C, 1, L), not (C, L, 1))": [
        "test_AvgPool1d", "test_AvgPool1d_stride",
    ],
    "3-D spatial ops (the IR is 2-D)": [
        "test_AvgPool3d", "test_AvgPool3d_stride", "test_AvgPool3d_stride1_pad0_gpu_input", "test_Conv3d",
        "test_Conv3d_dilated", "test_Conv3d_dilated_strided", "test_Conv3d_groups", "test_Conv3d_no_bias",
        "test_Conv3d_stride", "test_Conv3d_stride_padding", "test_MaxPool3d", "test_MaxPool3d_stride",
        "test_MaxPool3d_stride_padding",
    ],
    "not ReLU-like: no integrate-and-fire equivalent": [
        "test_ELU", "test_GLU", "test_GLU_dim", "test_LeakyReLU", "test_LeakyReLU_with_negval", "test_PReLU_1d",
        "test_PReLU_1d_multiparam", "test_PReLU_2d", "test_PReLU_2d_multiparam", "test_PReLU_3d",
        "test_PReLU_3d_multiparam", "test_SELU", "test_Softplus", "test_Softsign",
        "test_PoissonNLLLLoss_no_reduce", "test_Softmin",
    ],
    "padding with a non-zero constant (a spiking layer's padding is silence, zero)": ["test_ConstantPad2d"],
    "ops with no spiking equivalent (transposed conv, lookups, reflection/replication padding)": [
        "test_ConvTranspose2d", "test_ConvTranspose2d_no_bias", "test_Embedding", "test_Embedding_sparse",
        "test_PixelShuffle", "test_ReflectionPad2d", "test_ReplicationPad2d",
    ],
    "softmax over an inner axis (only over the class scores converts)": [
        "test_log_softmax_dim3", "test_softmax_functional_dim3",
    ],
}
REASON = {case: reason for reason, cases in UNSUPPORTED.items() for case in cases}


def _case(name: str) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    folder = CASES / name
    model = onnx.load(folder / "model.onnx")
    data = folder / "test_data_set_0"
    x = numpy_helper.to_array(onnx.load_tensor(data / "input_0.pb"))
    y = numpy_helper.to_array(onnx.load_tensor(data / "output_0.pb"))
    return model, x, y


ALL_CASES = sorted(p.name for p in CASES.iterdir() if (p / "model.onnx").exists())


def test_the_case_list_is_complete():
    """A new onnx release with new cases must be looked at, not silently skipped."""
    assert set(REASON) <= set(ALL_CASES)


@pytest.mark.parametrize("name", [c for c in ALL_CASES if c not in REASON])
def test_supported_case_matches_onnxruntime(name):
    """1-D cases (Conv1d, MaxPool1d) take their data as (N, C, 1, L) and give (N, C, 1, L'): compared reshaped."""
    model, x, expected = _case(name)
    graph = snnconv.load_onnx(model).validate()
    actual = snnconv.ann.evaluate(graph, x.reshape(len(x), *graph.input.shape))
    assert actual.size == expected.size
    for reference in (onnxruntime_output(model, x), expected):
        np.testing.assert_allclose(actual.reshape(reference.shape), reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(REASON))
def test_unsupported_case_is_refused_by_name(name):
    model, _, _ = _case(name)
    with pytest.raises(UnsupportedOpError) as refused:
        snnconv.load_onnx(model)
    assert "node " in str(refused.value), f"{name} ({REASON[name]}): {refused.value}"
