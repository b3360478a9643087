"""Layers of a torch module compiled through the API are named after its module paths, with both exporters.

The dynamo exporter records module scopes in node metadata (``pkg.torch.onnx.name_scopes``),
the legacy exporter in node names (``/layer1/layer1.0/conv1/Conv``); ``torch_export`` names
the nodes after them, so reports say ``features.3`` and ``layer1.0.conv1``, not
``node_conv2d_1``. ONNX files keep their nodes' names.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest
import torch
from onnx import helper
from torch import nn

import snnconv
from snnconv.frontend.torch_export import module_names

EXPORTERS = ("legacy", "dynamo")


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn1(self.conv1(x)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.layer1 = nn.Sequential(Block(4))
        self.classifier = nn.Sequential(nn.Linear(4 * 4 * 4, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.layer1(self.features(x)), 1))


EXAMPLE = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
FLATTEN = {"legacy": "flatten", "dynamo": "reshape"}  # torch.flatten in forward: the op each exporter writes


@functools.cache
def graph(exporter: str) -> snnconv.Graph:
    torch.manual_seed(0)
    return snnconv.load_torch(Net().eval(), EXAMPLE, exporter=exporter)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_layers_take_the_module_paths(exporter):
    names = [layer.name for layer in graph(exporter)]
    bn = [] if exporter == "dynamo" else ["layer1.0.bn1"]  # dynamo's optimizer fuses it into the conv
    assert names == ["input", "features.0", "features.1", "features.2", "features.3", "features.4", "layer1.0.conv1",
                     *bn, "layer1.0.add", "layer1.0.relu", FLATTEN[exporter], "classifier.0", "output"]


def test_the_api_reports_module_paths():
    torch.manual_seed(0)
    module = Net().eval()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    net = snnconv.compile(module, "loihi", x, example=x[:2], timesteps=8, tune="off")
    layers = {row["layer"] for row in net.report.to_dict()["layers"]}
    assert layers == {"features.1", "features.2", "features.4", "layer1.0.relu", "output"}  # the populations
    assert "features.1" in net.report.render()


def node(op, name="", scopes=None, inputs=(), rule=None):
    proto = helper.make_node(op, list(inputs), ["out"], name=name)
    if scopes is not None:
        proto.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=repr(scopes))
    if rule is not None:
        proto.metadata_props.add(key="pkg.onnxscript.rewriter.rule_name", value=rule)
    return proto


def test_module_names_rules():
    nodes = [
        node("Identity", "Identity_0"),  # nothing recorded: kept
        node("Conv", "/features/features.0/Conv"),  # legacy, qualified scopes
        node("Conv", "/layer1/layer1.0/conv1/Conv"),  # legacy, a relative last scope
        node("Unsqueeze", "node_unsqueeze", ["", "pool", "unsqueeze"]),  # a module emitting several nodes:
        node("ReduceMean", "node_mean", ["", "pool", "mean"]),  # the op that computes takes its path
        node("Squeeze", "node_squeeze", ["", "pool", "squeeze"]),
        node("Add", "node_add_3", ["", "layer1", "layer1.0", "add_3"]),  # in a module with submodules
        node("Reshape", "node_Reshape_9", ["", "view"]),  # in the root's forward
        node("Conv", "node_Conv_4", ["", "layer1", "layer1.0", "layer1.0.bn1", "bn"],
             ["x", "layer1.0.conv2.weight"], "FuseBatchNormIntoConv"),  # fused by the exporter's optimizer
        node("Relu", "", ["", "act", "relu"]), node("Relu", "", ["", "act", "relu_1"]),  # a module called twice
        node("Relu", "bad", "not a list"),
    ]
    assert module_names(nodes) == [
        "Identity_0", "features.0", "layer1.0.conv1", "pool.unsqueeze", "pool", "pool.squeeze", "layer1.0.add",
        "reshape", "layer1.0.conv2", "act", "act_2", "bad"]


def test_onnx_files_keep_their_names():
    """An ONNX file exported by dynamo has the metadata, but only torch modules compiled through the API are renamed."""
    path = resources.files("snnconv.models").joinpath("mnist_resnet.onnx")
    names = [layer.name for layer in snnconv.load_onnx(str(path))]
    assert any(name.startswith("node_") for name in names), names


def test_renamed_export_still_matches_torch():
    torch.manual_seed(0)
    module = Net().eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        expected = module(x).numpy()
    for exporter in EXPORTERS:
        result = snnconv.ann.evaluate(snnconv.load_torch(module, EXAMPLE, exporter=exporter), x.numpy())
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4)
