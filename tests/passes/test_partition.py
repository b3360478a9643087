"""Partition and place: the independent checker passes on every bundled model for every target."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest
from mapping_checker import check

import snnconv
from snnconv import targets
from snnconv.errors import DoesNotFitError
from snnconv.passes.partition import Partition
from snnconv.passes.place import Place
from snnconv.pipeline import convert
from snnconv.report import PartitionReport

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


@functools.cache
def placed(model: str, target: str, encoding: str = "current") -> snnconv.Graph:
    chip = targets.get(target)
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X, target=chip,
                    encoding=encoding).graph
    return Place(chip, chips=64).run(Partition(chip).run(graph).graph).graph


@pytest.mark.parametrize("target", targets.names())
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_every_core_is_within_limits_and_every_synapse_is_placed_once(model, target):
    graph = placed(model, target)
    totals = check(graph, targets.get(target))
    report = PartitionReport.from_graph(graph, targets.get(target)).to_dict()
    assert report["totals"]["synapses"] == totals["synapses"]
    assert report["totals"]["cores"] == totals["cores"]


def test_rate_coded_input_has_its_own_synapses_placed():
    graph = placed("cnn", "loihi", "rate")
    assert check(graph, targets.get("loihi"))["synapses"] > check(placed("cnn", "loihi"), targets.get("loihi"))[
        "synapses"]


def test_a_layer_whose_one_neuron_exceeds_a_core_is_refused_with_its_needs():
    import dataclasses

    loihi = targets.get("loihi")
    tiny = dataclasses.replace(loihi, core=dataclasses.replace(loihi.core, input_axons=100, accumulate=False))
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx"))), CALIB_X, target=tiny).graph
    with pytest.raises(DoesNotFitError, match=r"layer '/6/Relu' \(if, 1 synapse maps\).*input axons \(400\) exceeded max \(100\).*"
                                              r"accumulates across cores"):
        Partition(tiny).run(graph)


def test_too_few_chips_is_refused_with_the_chips_needed_and_the_largest_layers():
    graph = Partition(targets.get("loihi")).run(placed("resnet", "loihi")).graph
    small = targets.get("loihi")
    import dataclasses

    one_core_chips = dataclasses.replace(small, chip=dataclasses.replace(small.chip, cores=16))
    with pytest.raises(DoesNotFitError, match=r"needs \d+ cores = \d chips of loihi \(16 cores each\) but 2 are "
                                              r"available \(largest layers: node_relu: \d+ cores"):
        Place(one_core_chips, chips=2).run(graph)


def test_report_renders_every_layer_and_the_chip_count():
    graph = placed("resnet", "loihi")
    report = PartitionReport.from_graph(graph, targets.get("loihi"))
    text = report.render()
    assert all(row["layer"] in text for row in report.layers)
    assert f"on {report.totals['chips']} chip(s)" in text
    assert report.to_dict()["totals"]["neuron_util"] == pytest.approx(
        np.mean([c.resources.neurons / 1024 for c in graph.fact("mapping").cores]))


def _speck_graph(*layers, size: int = 64) -> snnconv.Graph:
    """A small torch network on ``size`` x ``size`` inputs, converted and quantized for speck."""
    import torch

    torch.manual_seed(0)
    graph = snnconv.load_torch(torch.nn.Sequential(*layers), torch.zeros(1, 1, size, size), exporter="legacy")
    x = np.random.default_rng(0).random((8, 1, size, size)).astype(np.float32)
    return convert(graph, x, target=targets.get("speck")).graph


def _conv(channels_in: int, channels_out: int) -> list:
    import torch

    return [torch.nn.Conv2d(channels_in, channels_out, 3, padding=1), torch.nn.ReLU()]


def test_speck_puts_each_layer_on_a_core_that_holds_it():
    """Speck's cores differ: 64K neurons on cores 0-2, 32K on 3-4, 16K on the others. The fourth layer here has
    34,560 neurons; sized for the largest core and seated in order, it landed on core 3 (32K)."""
    import torch

    speck = targets.get("speck")
    graph = _speck_graph(*_conv(1, 1), *_conv(1, 1), *_conv(1, 1), *_conv(1, 15), torch.nn.AvgPool2d(4),
                         torch.nn.Flatten(), torch.nn.Linear(15 * 12 * 12, 10), size=48)
    placed_graph = Place(speck).run(Partition(speck).run(graph).graph).graph
    check(placed_graph, speck)
    cores = placed_graph.fact("mapping").cores
    big = max(cores, key=lambda core: core.resources.neurons)
    assert big.resources.neurons == 15 * 48 * 48 and big.position in [(0, 0), (0, 1), (0, 2)]


def test_speck_refuses_a_core_that_sends_to_more_than_two_cores():
    """163,840 neurons take three of speck's 64K cores; the layer before them would send to all three."""
    import torch

    speck = targets.get("speck")
    graph = _speck_graph(*_conv(1, 2), *_conv(2, 40), torch.nn.AvgPool2d(8), torch.nn.Flatten(),
                         torch.nn.Linear(40 * 8 * 8, 10))
    with pytest.raises(DoesNotFitError, match=r"the cores of speck cannot route this network: core 0 \('[^']+'\): "
                                              r"destination cores \(3\) exceeded max \(2\); give the layers"):
        Partition(speck).run(graph)


@pytest.mark.parametrize("target", ["loihi", "speck"])
def test_measuring_each_distinct_reading_once_gives_the_mapping_of_measuring_every_tile(target, monkeypatch):
    """The tiler measures a box once per distinct reading of its spans (``_Tiler.resources``); the oracle measures
    every box with ``Limits.tile_resources`` itself."""
    from snnconv.passes import partition

    chip = targets.get(target)
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_resnet.onnx"))), CALIB_X, target=chip).graph
    memoized = Partition(chip).run(graph).graph.fact("mapping")
    monkeypatch.setattr(partition._Tiler, "resources",
                        lambda self, box: self.bounds.tile_resources(box, self.projections, self.compartments,
                                                                     self.kernels))
    measured = Partition(chip).run(graph).graph.fact("mapping")
    assert memoized.cores == measured.cores and memoized.tile_shapes == measured.tile_shapes


def _concat_of_three_maps():
    """Three IF layers of 16 channels, 1x1 convs of 9, 1 and 6 channels of them concatenated, then a ReLU: one
    population reading three synapse maps, as DenseNet's BN-ReLU after a concat (its BN folded into the convs)."""
    import torch

    class Concat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sources = torch.nn.ModuleList(torch.nn.Conv2d(1, 16, 3, padding=1) for _ in range(3))
            self.reads = torch.nn.ModuleList(torch.nn.Conv2d(16, n, 1) for n in (9, 1, 6))
            self.head = torch.nn.Conv2d(16, 2, 1)

        def forward(self, x):
            parts = [read(torch.relu(source(x))) for source, read in zip(self.sources, self.reads)]
            return self.head(torch.relu(torch.cat(parts, 1)))

    torch.manual_seed(0)
    return snnconv.load_torch(Concat(), torch.zeros(1, 1, 4, 4), exporter="legacy")


def test_a_channel_range_that_straddles_a_concat_s_synapse_maps_is_tiled_within_the_cores():
    """Cores of 16 compartments (8 loihi neurons) and 32 input axons; each synapse map costs a tile 16 axons per
    position. The first 8 channels read one map, but channels 8-16 read all three (48 axons): sized on the first
    and the fullest ranges only, every grid was dropped at that tile and the layer refused (DenseNet-121's n329)."""
    import dataclasses

    loihi = targets.get("loihi")
    small = dataclasses.replace(loihi, core=dataclasses.replace(loihi.core, neurons=16, input_axons=32))
    x = np.random.default_rng(0).random((8, 1, 4, 4)).astype(np.float32)
    graph = convert(_concat_of_three_maps(), x, target=small).graph
    placed_graph = Place(small).run(Partition(small).run(graph).graph).graph
    totals = check(placed_graph, small)  # every core within its limits, every synapse placed once
    assert PartitionReport.from_graph(placed_graph, small).to_dict()["totals"]["synapses"] == totals["synapses"]


def test_a_flatten_longer_than_an_axis_before_a_dense_layer_is_mapped_on_its_input_box():
    """VGG's 512 x 7 x 7 features flattened for its first dense layer were refused as one axis of 25,088 positions
    (more than ``MAX_AXIS``), though the flatten -> dense pair is mapped on the flatten's input box: here 128 x 6 x
    6 = 4,608 features, fed to 10 neurons through fan-in legalization, checked core by core."""
    import torch

    from snnconv.geometry import MAX_AXIS

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 128, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(128 * 6 * 6, 10))
    assert 128 * 6 * 6 > MAX_AXIS
    loihi = targets.get("loihi")
    x = np.random.default_rng(0).random((8, 1, 6, 6)).astype(np.float32)
    graph = convert(snnconv.load_torch(model, torch.zeros(1, 1, 6, 6), exporter="legacy"), x, target=loihi).graph
    placed_graph = Place(loihi).run(Partition(loihi).run(graph).graph).graph
    totals = check(placed_graph, loihi)
    assert PartitionReport.from_graph(placed_graph, loihi).to_dict()["totals"]["synapses"] == totals["synapses"]
