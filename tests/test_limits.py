"""snnconv.limits: every broken limit named with its reason; compiled maps pass the load check on every target."""

from __future__ import annotations

import dataclasses
import functools
import math
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import limits, mapping, targets
from snnconv.errors import BadArtifactError
from snnconv.limits import Capacity, Limits, Use
from snnconv.mapping import traffic, weighted_traffic
from snnconv.pipeline import convert, to_cores
from snnconv.report import PartitionReport

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]


@functools.cache
def mapped(model: str, target: str) -> snnconv.Graph:
    chip = targets.get(target)
    conversion = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X, target=chip)
    return to_cores(conversion, chip, chips=64).graph


def test_every_broken_limit_is_one_reason_of_one_shape():
    capacity = Capacity(neurons=1024, input_axons=4096, output_axons=4096, memory_bits=1 << 20, populations=8,
                        destinations=2)
    use = Use(neurons=1100, input_axons=4608, output_axons=5000, memory_bits=(1 << 20) + 1, populations=9,
              destinations=3)
    assert limits.violations(use, capacity) == [
        "compartments (1,100) exceeded max (1,024)", "input axons (4,608) exceeded max (4,096)",
        "output axons (5,000) exceeded max (4,096)", "synapse memory bits (1,048,577) exceeded max (1,048,576)",
        "populations (9) exceeded max (8)", "destination cores (3) exceeded max (2)"]
    assert not limits.fits(use, capacity)
    assert limits.violations(Use(), capacity) == [] and limits.fits(Use(), capacity)


def test_no_limit_is_never_exceeded_and_counts_as_no_utilization():
    unlimited = Capacity(*[math.inf] * 6)
    use = Use(10**9, 10**9, 10**9, 10**9, 10**9, 10**9)
    assert limits.fits(use, unlimited) and set(limits.utilization(use, unlimited).values()) == {0.0}


def test_speck_cores_are_told_apart_by_their_place_on_the_mesh():
    speck = Limits.of(targets.get("speck"))
    assert not speck.uniform and len(speck.cores) == 9
    assert speck.places[:4] == ((0, 0), (0, 1), (0, 2), (1, 2))  # the serpentine walk
    assert [kind.neurons for kind in speck.kinds] == [16384, 65536, 32768, 16384]  # the kind most cores hold first
    assert speck.span("neurons") == (16384, 65536) and speck.span("input_axons") == (math.inf, math.inf)


@pytest.mark.parametrize("target", targets.names())
@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_what_the_compiler_maps_passes_the_load_check_within_every_cores_own_capacity(model, target):
    graph, chip = mapped(model, target), targets.get(target)
    limits.check_mapping(graph, graph.fact("mapping"), chip, "net.snn")
    report = PartitionReport.from_graph(graph, chip)
    assert all(0 <= share <= 1 for core in report.core_utilization for share in core.values())


@pytest.mark.parametrize("target", targets.names())
def test_every_input_axon_has_its_output_axon(target):
    """Output axons count, per tile that reads a core's neurons, the neurons it reads, and one per partial sum: summed
    over the cores they are the input axons of every tile (the first layer's input comes from the host) and the
    neurons of every accumulating tile."""
    graph = mapped("cnn", target)
    cores = graph.fact("mapping").cores
    uses = limits.core_uses(cores, traffic(graph, cores, {}))
    partial_sums = sum(tile.size for core in cores for tile in core.tiles if tile.group > 0)
    assert sum(use.output_axons for use in uses) == sum(core.resources.axons for core in cores) + partial_sums


def test_a_map_for_smaller_cores_is_refused_with_every_core_and_limit_it_breaks():
    graph = mapped("cnn", "loihi")
    loihi = targets.get("loihi")
    small = dataclasses.replace(loihi, core=dataclasses.replace(loihi.core, neurons=64, input_axons=32))
    with pytest.raises(BadArtifactError) as error:
        limits.check_mapping(graph, graph.fact("mapping"), small, "net.snn")
    text = str(error.value)
    assert text.startswith("net.snn: core table: core 0: compartments (") and "exceeded max (64)" in text
    assert "input axons (" in text and "exceeded max (32)" in text and "more; the file was altered" in text
    assert "compile the model again for loihi" in text and "\n" not in text


def test_traffic_computed_in_blocks_equals_traffic_computed_at_once(monkeypatch):
    """``mapping.BLOCK`` bounds the dense matrices of the traffic (VGG-19's load took 17 GB at once): one target
    tile per block gives the same rows, and the same weighted sums, as one block for all (the CNN on spinnaker2:
    594 cores, partial sums of input groups among them)."""
    graph = mapped("cnn", "spinnaker2")
    cores = graph.fact("mapping").cores
    assert any(tile.group > 0 for core in cores for tile in core.tiles)
    position = np.array([core.position for core in cores])

    def hops(source, destination):
        return np.abs(position[source] - position[destination]).sum(axis=-1)

    at_once = traffic(graph, cores, {}), weighted_traffic(graph, cores, hops)
    monkeypatch.setattr(mapping, "BLOCK", 1)
    in_blocks = traffic(graph, cores, {}), weighted_traffic(graph, cores, hops)
    np.testing.assert_array_equal(in_blocks[0], at_once[0])
    assert in_blocks[1][1] == at_once[1][1] and in_blocks[1][0].keys() == at_once[1][0].keys()
    for name, per_channel in at_once[1][0].items():
        np.testing.assert_array_equal(in_blocks[1][0][name], per_channel)
