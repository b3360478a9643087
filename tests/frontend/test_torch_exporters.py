"""One torch architecture, two exporters: the IR read from torch's legacy (TorchScript)
export and from its dynamo (``torch.export``) export computes the same function, equal to
the module's own output (max abs 1e-4), at the example's batch size and at others.

Each module is exported once per exporter (the dynamo exporter takes seconds) and shared
by the tests below.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from helpers import TOLERANCE
from torch import nn
from torch.nn import functional as F

import snnconv
from snnconv.ann import activations

EXPORTERS = ("legacy", "dynamo")
EXAMPLE_BATCH = 2
OTHER_BATCHES = (1, 5)


def _randomize_batchnorms(module: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial affine parameters and running statistics for every BatchNorm."""
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                c = bn.num_features
                bn.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                bn.bias.copy_(torch.randn(c, generator=generator) * 0.2)
                bn.running_mean.copy_(torch.randn(c, generator=generator) * 0.3)
                bn.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 12), nn.ReLU(),
                                 nn.Dropout(0.2), nn.Linear(12, 4))

    def forward(self, x):
        return self.net(x)


class BatchNormAvgPoolCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            # count_include_pad=True (torch's default); the last ceil_mode window overhangs the padding
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 3 * 3, 5))

    def forward(self, x):
        return self.classifier(self.features(x))


class Block(nn.Module):
    """A ResNet basic block; a strided one has a 1x1 conv shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        self.blocks = nn.Sequential(Block(6, 6, 1), Block(6, 8, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class DepthwiseReLU6(nn.Module):
    """A MobileNetV2-style inverted residual: expand, depthwise, linear projection."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(4, 12, 1, bias=False), nn.BatchNorm2d(12), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False), nn.BatchNorm2d(12),
                                       nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(12, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.fc = nn.Linear(4, 3)
        nn.init.normal_(self.stem[0].weight, std=1.5)  # large enough that ReLU6's cap matters

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.fc(x.mean(dim=(2, 3)))


class ViewFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 10)
        self.fc2 = nn.Linear(10, 6)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = x.view(x.size(0), -1)
        return F.softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


class ReshapeFlattens(nn.Module):
    """The other ways torch code flattens: ``view(-1, C*H*W)`` and ``reshape(x.shape[0], -1)``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.fc1 = nn.Linear(3 * 4 * 4, 8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.conv(x)).view(-1, 3 * 4 * 4)
        return self.fc2(F.relu(self.fc1(x)).reshape(x.shape[0], -1))


class SqueezeNetHead(nn.Module):
    """SqueezeNet's head: class scores from a 1x1 conv, a global average pool, a softmax over the
    [N, C, 1, 1] map, then a flatten."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Conv2d(6, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(F.softmax(self.classifier(self.features(x)), dim=1), 1)


ARCHITECTURES = {
    "mlp_dropout": (MLP, (10,)),
    "cnn_batchnorm_avgpool": (BatchNormAvgPoolCNN, (3, 8, 8)),
    "residual_maxpool_adaptive": (ResidualCNN, (3, 10, 10)),
    "depthwise_relu6": (DepthwiseReLU6, (3, 8, 8)),
    "view_flatten_softmax": (ViewFlatten, (1, 10, 10)),
    "view_minus_one_reshape_size": (ReshapeFlattens, (2, 6, 6)),
    "squeezenet_gap_softmax_flatten": (SqueezeNetHead, (3, 8, 8)),
}


def _inputs(sample_shape, batch: int, seed: int) -> torch.Tensor:
    return torch.randn((batch, *sample_shape), generator=torch.Generator().manual_seed(seed))


@functools.cache
def _exported(name: str):
    """(module in eval mode, sample shape, {exporter: graph}) for one architecture."""
    cls, sample_shape = ARCHITECTURES[name]
    torch.manual_seed(sorted(ARCHITECTURES).index(name))
    module = cls()
    _randomize_batchnorms(module, torch.Generator().manual_seed(100))
    module.eval()
    example = _inputs(sample_shape, EXAMPLE_BATCH, seed=0)
    graphs = {exporter: snnconv.load_torch(module, example, exporter=exporter).validate() for exporter in EXPORTERS}
    assert not module.training
    return module, sample_shape, graphs


def _torch_output(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return module(x).numpy()


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_exporters_give_the_same_network(name):
    module, sample_shape, graphs = _exported(name)
    legacy, dynamo = graphs["legacy"], graphs["dynamo"]
    assert legacy.input.shape == dynamo.input.shape == sample_shape
    assert legacy.output.shape == dynamo.output.shape
    assert legacy.output.activation == dynamo.output.activation
    for batch in (EXAMPLE_BATCH, *OTHER_BATCHES):
        x = _inputs(sample_shape, batch, seed=batch).numpy()
        from_legacy, from_dynamo = snnconv.ann.evaluate(legacy, x), snnconv.ann.evaluate(dynamo, x)
        assert from_legacy.shape == from_dynamo.shape == (batch, *legacy.output.shape)
        np.testing.assert_allclose(from_legacy, from_dynamo, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("batch", [EXAMPLE_BATCH, *OTHER_BATCHES])
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_graph_matches_the_torch_module(name, exporter, batch):
    """At the example's batch size and at others: the batch axis is exported as dynamic."""
    module, sample_shape, graphs = _exported(name)
    x = _inputs(sample_shape, batch, seed=10 + batch)
    expected = _torch_output(module, x)
    actual = snnconv.ann.evaluate(graphs[exporter], x.numpy())
    assert actual.shape == expected.shape == (batch, *graphs[exporter].output.shape)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE)


def test_softmax_and_relu6_survive_both_exporters():
    """The structure both exporters must yield: ReLU6 as a capped ReLU, softmax on the output."""
    _, sample_shape, graphs = _exported("depthwise_relu6")
    x = _inputs(sample_shape, 5, seed=5).numpy()
    for exporter in EXPORTERS:
        relus = [layer for layer in graphs[exporter] if layer.kind == "relu"]
        assert relus and all(layer.max_value == 6.0 for layer in relus), exporter
        outputs = activations(graphs[exporter], x, [layer.name for layer in relus])
        assert max(float(a.max()) for a in outputs.values()) == 6.0, "the test input never reaches the cap"
        assert _exported("view_flatten_softmax")[2][exporter].output.activation == "softmax", exporter
        assert _exported("mlp_dropout")[2][exporter].output.activation is None, exporter
        assert _exported("squeezenet_gap_softmax_flatten")[2][exporter].output.activation == "softmax", exporter


class CeilModeLastWindowInPadding(nn.Module):
    """MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5x5 gives 3x3 in torch: the fourth window
    would start in the end padding and is dropped (ONNX's rule from opset 22 on; onnxruntime's
    at every opset). Both exporters write opset 20, whose shape inference still counts 4."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)
        self.fc = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2, stride=2, padding=1, ceil_mode=True)
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_ceil_mode_pool_whose_last_window_would_start_in_the_padding(exporter):
    torch.manual_seed(0)
    module = CeilModeLastWindowInPadding().eval()
    graph = snnconv.load_torch(module, _inputs((2, 5, 5), EXAMPLE_BATCH, seed=0), exporter=exporter)
    x = _inputs((2, 5, 5), 3, seed=1)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x.numpy()), _torch_output(module, x), rtol=0, atol=TOLERANCE)


def test_a_numpy_example_is_taken_as_a_tensor_and_a_float64_one_is_refused_in_one_line():
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 3))
    graph = snnconv.load_torch(module, np.zeros((1, 12), np.float32))
    assert graph.input.shape == (12,)
    for example in (np.zeros((1, 12)), torch.zeros(1, 12, dtype=torch.float64)):
        with pytest.raises(snnconv.errors.BadModelError, match=r"dtype .*float64.*pass a float32 example"):
            snnconv.load_torch(module, example)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_an_example_the_module_does_not_take_is_refused_in_one_line_with_the_module_s_own_error(exporter, capfd):
    """An example without its batch axis: the exporters' pages of report (with terminal colours, and the dynamo
    exporter's log lines on stderr) become one line holding the module's own error."""
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with pytest.raises(snnconv.errors.BadModelError, match=r"failed on an example of shape \(1, 8, 8\): .*pass an "
                                                           r"example batch the module takes") as info:
        snnconv.load_torch(module, torch.zeros(1, 8, 8), exporter=exporter)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    assert capfd.readouterr().err == ""
