"""The bundled depthwise-separable (MobileNet-style) net, compiled for loihi at T = 32, is within
1 point of its ANN on the 1,000 bundled test digits (chip model at loihi precision).

models/train_mobilenet.py trains it: 3x3 conv stem, three depthwise 3x3 + BN + ReLU /
pointwise 1x1 + BN + ReLU blocks (two with stride 2), global average pooling, linear.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

import snnconv

MODELS = resources.files("snnconv.models")


def _load(name: str):
    with np.load(MODELS.joinpath(name), allow_pickle=False) as data:
        return data["x"], data["y"]


def test_mobilenet_within_one_point_of_the_ann_at_32_timesteps():
    calibration, _ = _load("mnist_calib.npz")
    x, y = _load("mnist_test.npz")
    path = str(MODELS.joinpath("mnist_mobilenet.onnx"))
    ann_accuracy = float((snnconv.ann.evaluate(snnconv.load_onnx(path), x).argmax(1) == y).mean())
    net = snnconv.compile(path, "loihi", calibration, timesteps=32)
    snn_accuracy = net.run(x, 32).accuracy(y)
    assert ann_accuracy > 0.95
    assert snn_accuracy >= ann_accuracy - 0.01, (snn_accuracy, ann_accuracy)
