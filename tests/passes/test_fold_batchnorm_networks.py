"""Small PyTorch networks with the per-channel affine structures of pretrained models compile and spike like the ANN.

Each network starts with a spiking stem (conv -> ReLU) so that the structure under test
sits between neuron populations, not in the host-computed input layer. Weights and
BatchNorm statistics are random (seeded); the check is agreement of the chip model's
predictions at T = 32 with the float ANN's on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import snnconv

torch = pytest.importorskip("torch")
nn = torch.nn


def _bn(channels: int) -> nn.BatchNorm2d:
    """A BatchNorm with positive scales and nontrivial shifts, as trained ones have."""
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_(0, 0.5)
        bn.running_mean.normal_(0, 0.5)
        bn.running_var.uniform_(0.5, 2)
    return bn


class _Net(nn.Module):
    """stem conv -> ReLU -> ``body`` -> flatten -> dense, on 1 x 8 x 8 inputs."""

    def __init__(self, features: int):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(features, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.body(torch.relu(self.stem(x))), 1))


class BnAfterReluBeforePool(_Net):
    """conv -> ReLU -> BN -> max/avg pool -> conv -> ReLU (BN after the activation)."""

    def __init__(self, pool: nn.Module):
        super().__init__(4 * 4 * 4)
        self.bn, self.pool, self.conv = _bn(4), pool, nn.Conv2d(4, 4, 3, padding=1)

    def body(self, x):
        return torch.relu(self.conv(self.pool(self.bn(x))))


class PreActivationAdd(_Net):
    """ResNet-v2 order after the sum: (conv a + conv b) -> BN -> ReLU -> conv -> ReLU."""

    def __init__(self):
        super().__init__(4 * 8 * 8)
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.bn, self.conv = _bn(4), nn.Conv2d(4, 4, 3, padding=1)

    def body(self, x):
        return torch.relu(self.conv(torch.relu(self.bn(self.a(x) + self.b(x)))))


class PreActivationConcat(_Net):
    """DenseNet order after the concat: concat(conv a, conv b) -> BN -> ReLU -> conv -> ReLU."""

    def __init__(self):
        super().__init__(4 * 8 * 8)
        self.a, self.b = nn.Conv2d(4, 3, 3, padding=1), nn.Conv2d(4, 2, 3, padding=1)
        self.bn, self.conv = _bn(5), nn.Conv2d(5, 4, 3, padding=1)

    def body(self, x):
        return torch.relu(self.conv(torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))))


class DepthwiseSeparable(_Net):
    """MobileNet order: depthwise conv -> BN -> ReLU -> pointwise conv -> BN -> ReLU -> avg pool."""

    def __init__(self):
        super().__init__(8 * 4 * 4)
        self.dw, self.bn1 = nn.Conv2d(4, 4, 3, padding=1, groups=4), _bn(4)
        self.pw, self.bn2 = nn.Conv2d(4, 8, 1), _bn(8)

    def body(self, x):
        x = torch.relu(self.bn2(self.pw(torch.relu(self.bn1(self.dw(x))))))
        return nn.functional.avg_pool2d(x, 2)


class PreActivationResNet(_Net):
    """ResNet-v2 stage: x1 = x0 + f1(x0), x2 = x1 + f2(x1), f = conv(ReLU(BN(.))), head BN -> ReLU."""

    def __init__(self):
        super().__init__(4 * 8 * 8)
        self.bn1, self.c1 = _bn(4), nn.Conv2d(4, 4, 3, padding=1)
        self.bn2, self.c2 = _bn(4), nn.Conv2d(4, 4, 3, padding=1)
        self.bn3 = _bn(4)

    def body(self, x0):
        x1 = x0 + self.c1(torch.relu(self.bn1(x0)))
        x2 = x1 + self.c2(torch.relu(self.bn2(x1)))
        return torch.relu(self.bn3(x2))


class DenseBlock(_Net):
    """DenseNet block: x1 = concat(x0, f1(x0)), x2 = concat(x1, f2(x1)), head BN -> ReLU -> avg pool."""

    def __init__(self):
        super().__init__(8 * 4 * 4)
        self.bn1, self.c1 = _bn(4), nn.Conv2d(4, 2, 3, padding=1)
        self.bn2, self.c2 = _bn(6), nn.Conv2d(6, 2, 3, padding=1)
        self.bn3 = _bn(8)

    def body(self, x0):
        x1 = torch.cat([x0, self.c1(torch.relu(self.bn1(x0)))], 1)
        x2 = torch.cat([x1, self.c2(torch.relu(self.bn2(x1)))], 1)
        return nn.functional.avg_pool2d(torch.relu(self.bn3(x2)), 2)


class DenseTransition(_Net):
    """DenseNet transition into the next block: conv -> 2x2 avg pool -> (concat with f(pool), BN -> ReLU -> conv):
    the pool is read by the block's concat and by its first BatchNorm, which folds back through the pool."""

    def __init__(self):
        super().__init__(6 * 4 * 4)
        self.transition, self.bn1, self.c1 = nn.Conv2d(4, 4, 1), _bn(4), nn.Conv2d(4, 2, 3, padding=1)
        self.bn2 = _bn(6)

    def body(self, x):
        x0 = nn.functional.avg_pool2d(self.transition(x), 2)
        x1 = torch.cat([x0, self.c1(torch.relu(self.bn1(x0)))], 1)
        return torch.relu(self.bn2(x1))


class LinearBottleneck(_Net):
    """MobileNet-v2's projection without ReLU, read by the next block's expansion: 1x1 conv -> BN -> 1x1 conv ->
    BN -> ReLU6 (the two 1x1 convs compose into one)."""

    def __init__(self):
        super().__init__(8 * 8 * 8)
        self.project, self.bn1 = nn.Conv2d(4, 2, 1), _bn(2)
        self.expand, self.bn2 = nn.Conv2d(2, 8, 1), _bn(8)

    def body(self, x):
        return nn.functional.relu6(self.bn2(self.expand(self.bn1(self.project(x)))))


class InvertedResiduals(_Net):
    """MobileNet-v2's residual stream: y1 = x0 + project1(h1(x0)), y2 = y1 + project2(h2(y1)), each h an
    expansion 1x1 conv -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU6, each projection a 1x1 conv -> BN without
    ReLU; then 1x1 conv -> BN -> ReLU6. Every 1x1 conv reading the stream is distributed over its sums and
    composed with the projections in it."""

    def __init__(self):
        super().__init__(8 * 8 * 8)
        self.blocks = nn.ModuleList(nn.ModuleList([nn.Conv2d(4, 8, 1), _bn(8), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                                   _bn(8), nn.Conv2d(8, 4, 1), _bn(4)]) for _ in range(2))
        self.last, self.bn = nn.Conv2d(4, 8, 1), _bn(8)

    def body(self, x):
        for expand, bn1, depthwise, bn2, project, bn3 in self.blocks:
            h = nn.functional.relu6(bn2(depthwise(nn.functional.relu6(bn1(expand(x))))))
            x = x + bn3(project(h))
        return nn.functional.relu6(self.bn(self.last(x)))


NETWORKS = {
    "bn_relu_maxpool": lambda: BnAfterReluBeforePool(nn.MaxPool2d(2)),
    "bn_relu_avgpool": lambda: BnAfterReluBeforePool(nn.AvgPool2d(2)),
    "preact_add": PreActivationAdd,
    "preact_concat": PreActivationConcat,
    "depthwise_separable": DepthwiseSeparable,
    "resnet_v2_stage": PreActivationResNet,
    "dense_block": DenseBlock,
    "dense_transition": DenseTransition,
    "linear_bottleneck": LinearBottleneck,
    "inverted_residuals": InvertedResiduals,
}


@pytest.mark.parametrize("name", NETWORKS)
def test_network_compiles_with_no_affine_left_and_agrees_with_the_ann(name):
    torch.manual_seed(0)
    module = NETWORKS[name]().eval()
    x = torch.rand(64, 1, 8, 8)
    net = snnconv.compile(module, "loihi", x.numpy(), example=x[:1], timesteps=32, tune="off")
    assert net.notes["fold_batchnorm"]["kept_affine"] == []
    with torch.no_grad():
        expected = module(x).argmax(1).numpy()
    agreement = float(np.mean(net.run(x.numpy(), timesteps=32).predictions == expected))
    assert agreement >= 0.9, agreement
