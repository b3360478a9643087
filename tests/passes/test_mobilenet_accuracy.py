"""The bundled depthwise-separable nets, compiled for loihi at T = 32, are within 1 point of their ANN
(onnxruntime) on the 1,000 bundled test digits (chip model at loihi precision).

models/train_mobilenet.py trains them: MobileNet-v1 style (3x3 conv stem, three depthwise
3x3 + BN + ReLU / pointwise 1x1 + BN + ReLU blocks, two with stride 2, global average
pooling, linear) and, with ``--v2``, MobileNet-v2 style (inverted residuals: expansion 1x1 +
BN + ReLU6, depthwise 3x3 + BN + ReLU6, linear 1x1 projection + BN added to the block's
input, three of five blocks residual).
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import onnx
import pytest
from helpers import onnxruntime_output

import snnconv

MODELS = resources.files("snnconv.models")


def _load(name: str):
    with np.load(MODELS.joinpath(name), allow_pickle=False) as data:
        return data["x"], data["y"]


@pytest.mark.parametrize("model", ["mnist_mobilenet", "mnist_mobilenet_v2"])
def test_mobilenet_within_one_point_of_the_ann_at_32_timesteps(model):
    calibration, _ = _load("mnist_calib.npz")
    x, y = _load("mnist_test.npz")
    path = str(MODELS.joinpath(f"{model}.onnx"))
    ann_accuracy = float((onnxruntime_output(onnx.load(path), x).argmax(1) == y).mean())
    net = snnconv.compile(path, "loihi", calibration, timesteps=32)
    snn_accuracy = net.run(x, 32).accuracy(y)
    assert ann_accuracy > 0.95
    assert snn_accuracy >= ann_accuracy - 0.01, (snn_accuracy, ann_accuracy)
