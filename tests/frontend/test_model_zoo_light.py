"""Model-zoo networks from onnx's backend test data (``light``: the real architectures with
random weights), read as a user who downloads them would.

Every file is listed below with what becomes of it: it imports, computes what onnxruntime
computes and compiles for loihi; or it imports and its compilation is refused in a pass
with the layers named; or it is refused on import at a named node with why. A file that a
new onnx release adds fails ``test_every_file_is_listed`` until it is looked at.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import TOLERANCE, onnxruntime_output

import snnconv
from snnconv.errors import DoesNotFitError, UnsupportedOpError
from snnconv.passes.canonicalize import Canonicalize
from snnconv.passes.fold_batchnorm import FoldBatchNorm
from snnconv.pipeline import convert
from snnconv.targets import get

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LARGE = os.environ.get("SNNCONV_LARGE_MODELS") == "1"

# Files that compile for loihi: the loihi chips each needs (cores of 128) at T = 4.
COMPILES = {"light_squeezenet": 64, "light_resnet50": 332}
# Too large to compile in the test suite: minutes on two cores. With the chips each needs, each compiles to an
# artifact that loads (benchmarks/compile_zoo.py: ResNet-50 50 s; VGG-19 10 minutes and 10 GB; DenseNet-121 18
# minutes and 16 GB).
SLOW = {"light_resnet50", "light_vgg19", "light_densenet121"}
# Files that import (onnxruntime agrees) but whose compilation a pass refuses: the layers named, and why.
REFUSED_IN_A_PASS = {
    # a 3x3 average pool with padding that counts real elements only (border windows divide by 4 or 6, not 9),
    # read by a 1x1 conv: the division varies by position, the conv's kernel is shared by all positions
    "light_inception_v2": r"layer 'n72' \(if\) receives spikes through average pool 'n65', whose windows at the "
                          r"borders count fewer elements .* then through n66, .* export the pool with "
                          r"count_include_pad=1",
    # 143 M weights: its dense layers' fan-in of 25,088 and 4,096 fill 243,203 cores
    "light_vgg19": r"the network needs 243,203 cores = 1901 chips of loihi \(128 cores each\) but 32 are available",
    # partitioned and placed, but on 2,084 chips: its lowered graph's cost. Each BN-ReLU reading a concat holds its
    # own copy of the convs before it (10.8 G of its 13.5 G synapses are copies), and readers whose tiles fill their
    # input axons leave a producer's core few output axons. With chips=2084 it compiles to an artifact that loads.
    "light_densenet121": r"the network needs 266,702 cores = 2084 chips of loihi \(128 cores each\) but 32 are "
                         r"available",
}
# Files refused on import: the node, its op, and the start of why.
REFUSED_ON_IMPORT = {
    "light_bvlc_alexnet": ("n2", "LRN", "LRN divides each value by a power of a sum over neighbouring channels"),
    "light_inception_v1": ("n3", "LRN", "LRN divides each value by a power of a sum over neighbouring channels"),
    "light_zfnet512": ("n2", "LRN", "LRN divides each value by a power of a sum over neighbouring channels"),
    "light_shufflenet": ("n7", "Reshape", r"reshape of a sample \[112, 56, 56\] to \[4, 28, 56, 56\].*channel shuffle"),
}
# Files whose BatchNorms fold exactly: DenseNet-121's transition conv -> 2x2 average pool -> BatchNorm folds back
# through the pool, into a copy of the conv for every BatchNorm of the next block that reads it (1,372 layers after
# folding, from 670).
LOWERS = {"light_densenet121"}
IMPORTS = sorted({*COMPILES, *REFUSED_IN_A_PASS, *LOWERS})

pytestmark = pytest.mark.skipif(not LIGHT.is_dir(), reason="onnx's backend test data is not installed")


def test_every_file_is_listed():
    assert {path.stem for path in LIGHT.glob("*.onnx")} == {*IMPORTS, *REFUSED_ON_IMPORT}


@pytest.mark.parametrize("name", IMPORTS)
def test_files_whose_ops_convert_import_and_match_onnxruntime(name):
    model = onnx.load(LIGHT / f"{name}.onnx")
    graph = snnconv.load_onnx(model).validate()
    assert graph.output.shape[0] == 1000  # ImageNet's classes
    x = np.random.default_rng(0).standard_normal((1, *graph.input.shape)).astype(np.float32)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x), onnxruntime_output(model, x), rtol=0, atol=TOLERANCE)


def test_squeezenet_head_softmax_over_pooled_class_scores():
    """SqueezeNet ends Conv -> Relu -> GlobalAveragePool -> Softmax over [N, 1000, 1, 1]."""
    graph = snnconv.load_onnx(LIGHT / "light_squeezenet.onnx")
    assert graph.output.activation == "softmax" and graph.output.shape == (1000, 1, 1)


@pytest.mark.parametrize("name", sorted(COMPILES))
def test_files_whose_ops_convert_compile_for_loihi(name):
    if name in SLOW and not LARGE:
        pytest.skip(f"{name} takes minutes to compile on two cores; set SNNCONV_LARGE_MODELS=1 to run it")
    graph = snnconv.load_onnx(LIGHT / f"{name}.onnx")
    calibration = np.random.default_rng(0).random((2, *graph.input.shape), dtype=np.float32)
    # few timesteps and no tuning keep this a compile check (SqueezeNet: 350 M multiply-accumulates per image)
    net = snnconv.compile(LIGHT / f"{name}.onnx", "loihi", calibration, timesteps=4, tune="off",
                          chips=COMPILES[name])
    assert net.graph.fact("quantized") == "loihi"


@pytest.mark.parametrize("name", sorted(REFUSED_IN_A_PASS))
def test_files_a_pass_refuses_name_the_layers_on_one_line(name):
    """Without calibration data nothing is tuned or simulated: the refusal comes in seconds (VGG-19: minutes)."""
    if name in SLOW and not LARGE:
        pytest.skip(f"{name} takes minutes to compile on two cores; set SNNCONV_LARGE_MODELS=1 to run it")
    with pytest.raises((UnsupportedOpError, DoesNotFitError), match=REFUSED_IN_A_PASS[name]) as info:
        snnconv.compile(LIGHT / f"{name}.onnx", "loihi", uncalibrated=True, timesteps=4, tune="off")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(LOWERS))
def test_every_batchnorm_folds_exactly(name):
    """The class scores (before the Softmax) of the folded network equal the imported one's."""
    graph = snnconv.load_onnx(LIGHT / f"{name}.onnx")
    result = FoldBatchNorm().run(Canonicalize().run(graph).graph)
    assert result.notes["kept_affine"] == []
    x = np.random.default_rng(0).random((1, *graph.input.shape), dtype=np.float32)
    scores = graph.output.inputs[0]
    expected = snnconv.ann.evaluate(graph, x, layer=scores)
    np.testing.assert_allclose(snnconv.ann.evaluate(result.graph, x, layer=scores), expected, rtol=0,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name", sorted(LOWERS))
def test_lowers_to_synapses_and_quantizes_for_loihi(name):
    if name in SLOW and not LARGE:
        pytest.skip(f"{name} takes minutes to lower on two cores; set SNNCONV_LARGE_MODELS=1 to run it")
    conversion = convert(snnconv.load_onnx(LIGHT / f"{name}.onnx"), None, target=get("loihi"), timesteps=4,
                         tune="off")
    assert conversion.graph.fact("quantized") == "loihi"


@pytest.mark.parametrize("name", sorted(REFUSED_ON_IMPORT))
def test_files_with_an_op_that_does_not_convert_are_refused_at_that_node(name):
    node, op, why = REFUSED_ON_IMPORT[name]
    with pytest.raises(UnsupportedOpError, match=rf"^node '{node}' \({op}, opset 9\): {why}") as info:
        snnconv.load_onnx(LIGHT / f"{name}.onnx")
    assert "\n" not in str(info.value)
