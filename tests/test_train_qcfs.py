"""The QCFS training script's parts (models/train_qcfs.py): the plain VGG's weights load as onnxruntime runs them,
and the synaptic-operation penalty is the fan-out-weighted count of QCFS levels sent."""

from __future__ import annotations

from importlib import resources

import numpy as np
import onnx
import pytest
import torch
from helpers import onnxruntime_output
from torch import nn

from snnconv.training import QCFS

MODELS = resources.files("snnconv.models")


@pytest.fixture(scope="module")
def script():
    from snnconv.models import train_qcfs

    return train_qcfs


def test_the_fine_tune_starts_from_the_plain_vgg_as_onnxruntime_runs_it(script):
    x = np.load(MODELS.joinpath("fashion_test.npz"))["x"][:64]
    path = MODELS.joinpath("fashion_vgg.onnx")
    model = script.relu_weights(script.VGG().eval(), path)
    with torch.no_grad():
        mine = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mine, onnxruntime_output(onnx.load(str(path)), x), rtol=0, atol=1e-4)


def test_the_synaptic_penalty_counts_levels_sent_times_fan_out(script):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), QCFS(4, ceiling=1.0), nn.Conv2d(2, 3, 3, padding=1),
                          QCFS(4, ceiling=2.0), nn.Flatten(), nn.Linear(3 * 5 * 5, 7))
    assert list(script.fan_outs(model).values()) == [3 * 9, 7]
    x = torch.randn(6, 1, 5, 5)
    cost = script.SynapticCost(model, macs=100.0, weight=0.5)
    model.train()
    model(x)
    penalty = float(cost.pop().detach())
    model.eval()
    with torch.no_grad():  # oracle: each neuron's QCFS level (0..L), summed per sample, times its fan-out
        first = torch.clamp(torch.floor(model[0](x) * 4 / 1.0 + 0.5), 0, 4)
        second = torch.clamp(torch.floor(model[2](model[1](model[0](x))) * 4 / 2.0 + 0.5), 0, 4)
        expected = 0.5 * (27 * first.flatten(1).sum(1).mean() + 7 * second.flatten(1).sum(1).mean()) / 100.0
    assert penalty == pytest.approx(float(expected), rel=1e-5)
    assert float(cost.pop()) == 0.0  # evaluation (the oracle's calls) is not trained on, and what was taken is gone
    assert float(cost.pop()) == 0.0  # evaluation is not trained on
    assert not script.SynapticCost(model, 100.0, 0.0).hooks
