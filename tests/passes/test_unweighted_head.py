"""SqueezeNet-style heads: the last ReLU reaches the output through pooling only (no weights).

Its scales cannot be absorbed by a later layer, so normalize gives every population that
reaches the output without weights one scale for all its channels (and all of them one
together); the output's single scale then holds. Checked on a small torch net whose class
conv is fitted (ridge regression on random features of real digits, no training loop),
compiled for loihi and run on the chip model, and on onnx's light_squeezenet.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import ann
from snnconv.passes.canonicalize import Canonicalize
from snnconv.passes.fold_batchnorm import FoldBatchNorm
from snnconv.passes.normalize import Normalize

torch = pytest.importorskip("torch")
nn = torch.nn


class SqueezeLike(nn.Module):
    """conv/2 -> ReLU -> max pool -> fire module (squeeze 1x1, expand 1x1 | 3x3, concat) -> max pool ->
    1x1 conv to the classes -> ReLU -> global average pool -> softmax."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.squeeze = nn.Conv2d(16, 8, 1)
        self.e1, self.e3 = nn.Conv2d(8, 16, 1), nn.Conv2d(8, 16, 3, padding=1)
        self.classes = nn.Conv2d(32, 10, 1)

    def features(self, x):
        s = torch.relu(self.squeeze(torch.max_pool2d(torch.relu(self.stem(x)), 2)))
        return torch.max_pool2d(torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], 1), 2)

    def scores(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.classes(self.features(x))), 1), 1)

    def forward(self, x):
        return torch.softmax(self.scores(x), 1)


def _digits(name: str):
    with np.load(resources.files("snnconv.models").joinpath(name), allow_pickle=False) as data:
        return data["x"], data["y"]


@pytest.fixture(scope="module")
def squeeze_like():
    """The net with its class conv fitted to one-hot targets (+1, so the class ReLU is mostly active)."""
    torch.manual_seed(0)
    model = SqueezeLike().eval()
    x, y = _digits("mnist_calib.npz")
    with torch.no_grad():
        pooled = model.features(torch.from_numpy(x)).mean((2, 3)).numpy().astype(np.float64)
        a = np.c_[pooled, np.ones(len(pooled))]
        w = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ (2 * np.eye(10)[y] + 1))
        model.classes.weight.copy_(torch.from_numpy(w[:-1].T.astype(np.float32))[:, :, None, None])
        model.classes.bias.copy_(torch.from_numpy(w[-1].astype(np.float32)))
    return model


def test_head_population_gets_one_scale_and_outputs_are_unchanged(squeeze_like):
    x, _ = _digits("mnist_calib.npz")
    graph = snnconv.load_torch(squeeze_like, torch.zeros(1, 1, 28, 28))
    for step in (Canonicalize(), FoldBatchNorm()):
        graph = step.run(graph).graph
    result = Normalize(x[:64], per_channel=True).run(graph)
    normalized = result.graph.validate()
    assert len(result.notes["per_tensor_head"]) == 1
    expected = ann.evaluate(graph, x[:32], graph.output.inputs[0])
    actual = ann.evaluate(normalized, x[:32], normalized.output.inputs[0]) * normalized.output.scale
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_squeezenet_like_head_agrees_with_the_ann_on_the_chip_model(squeeze_like):
    calibration, _ = _digits("mnist_calib.npz")
    x, _ = _digits("mnist_test.npz")
    x = x[::5]
    net = snnconv.compile(squeeze_like, "loihi", calibration[:64], example=torch.zeros(1, 1, 28, 28), timesteps=32)
    assert net.notes["spike"]["max_pools_through_concat"]
    result = net.run(x, 32)
    with torch.no_grad():
        scores = squeeze_like.scores(torch.from_numpy(x)).numpy()
    top2 = np.sort(scores, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.05 * np.ptp(scores)  # a random-feature classifier has close calls
    agree = result.predictions == scores.argmax(1)
    relative = np.abs(result.outputs - scores).mean() / np.abs(scores).mean()
    assert relative < 0.05
    assert clear.sum() > 30
    assert agree[clear].mean() >= 0.95
    assert agree.mean() >= 0.75


def test_light_squeezenet_compiles():
    onnx = pytest.importorskip("onnx")
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    if not os.path.exists(path):
        pytest.skip("onnx's backend test data is not installed")
    calibration = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    # 350 M multiply-accumulates per image: few timesteps and no tuning keep this a compile check
    net = snnconv.compile(path, "loihi", calibration, timesteps=4, tune="off", chips=64)
    assert net.notes["normalize"]["per_tensor_head"]
    assert net.notes["spike"]["max_pools_through_concat"]  # SqueezeNet pools its fire modules' concats
