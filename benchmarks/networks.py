"""Big networks with random weights for the scale benchmarks: MobileNet-v1 and ResNet-18.

MobileNet-v1 (Howard et al. 2017; width multiplier ``width``, 28 conv layers: a 3x3
stem, 13 depthwise + pointwise pairs, then global average pooling and a 1,000-way
dense layer) and ResNet-18 (He et al. 2016: 7x7 stem, max pooling, 4 stages of 2 basic
blocks, 1x1 projection shortcuts where the shape changes). Batch norm everywhere, as
trained networks have it; weights from torch's default initialization with a fixed seed,
BN statistics randomized so folding is not trivial.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["mobilenet_v1", "resnet18", "randomize_batchnorm"]

MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2),
                                                                                                  (1024, 1)]


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


def mobilenet_v1(width: float = 1.0, classes: int = 1000) -> nn.Module:
    def channels(c: int) -> int:
        return max(8, int(c * width))

    layers = _conv_bn(3, channels(32), 3, 2)
    c_in = channels(32)
    for c_out, stride in MOBILENET_BLOCKS:
        layers += _conv_bn(c_in, c_in, 3, stride, groups=c_in) + _conv_bn(c_in, channels(c_out), 1, 1)
        c_in = channels(c_out)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
    return nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def resnet18(width: int = 64, classes: int = 1000) -> nn.Module:
    stages, c_in = [], width
    for i, c_out in enumerate((width, 2 * width, 4 * width, 8 * width)):
        stride = 1 if i == 0 else 2
        stages += [_Basic(c_in, c_out, stride), _Basic(c_out, c_out, 1)]
        c_in = c_out
    return nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c_in, classes))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()
