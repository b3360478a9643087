"""Partition's ``spread``: the same program on more cores, checked against the fewest-core compile as the oracle."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
from mapping_checker import check

import snnconv
from snnconv import targets
from snnconv.passes.partition import Partition
from snnconv.pipeline import convert

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))


@functools.cache
def compiled(spread: bool) -> snnconv.CompiledNetwork:
    return snnconv.compile(str(MODELS.joinpath("mnist_cnn.onnx")), "loihi2", CALIB_X, timesteps=1, neuron="graded",
                           payload_bits=4, spread=spread)


def test_spread_runs_the_same_program_bit_for_bit_on_one_chip_with_every_synapse_placed_once():
    packed, spread = compiled(False), compiled(True)
    loihi2 = targets.get("loihi2")
    assert check(spread.graph, loihi2)["synapses"] == check(packed.graph, loihi2)["synapses"]
    x = TEST["x"][:64]
    a, b = packed.run(x, 1), spread.run(x, 1)
    np.testing.assert_array_equal(b.outputs, a.outputs)
    assert b.stats["synaptic_ops"] == a.stats["synaptic_ops"]
    assert b.stats["chips"] == 1 and a.stats["cores"] < b.stats["cores"] <= loihi2.chip.cores
    assert spread.options["spread"] and not packed.options["spread"]


def test_spread_lowers_the_busiest_core_and_so_latency_and_static_energy():
    """What spreading is for (``snnconv.chip``: a step lasts as long as its busiest core)."""
    x = TEST["x"][:64]
    a, b = compiled(False).run(x, 1).stats, compiled(True).run(x, 1).stats
    assert max(b["per_core"]["synaptic_ops"]) < max(a["per_core"]["synaptic_ops"])
    assert b["latency_us"] < a["latency_us"]
    assert b["energy_split_uj"]["static"] < a["energy_split_uj"]["static"]


def test_without_rates_the_fullest_core_holds_less_synapse_memory():
    loihi = targets.get("loihi")
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx"))), CALIB_X, target=loihi).graph
    packed = Partition(loihi).run(graph).graph.fact("mapping").cores
    result = Partition(loihi, spread=True).run(graph)
    cores = result.graph.fact("mapping").cores
    assert len(packed) < len(cores) <= loihi.chip.cores
    assert max(c.resources.memory_bits for c in cores) < max(c.resources.memory_bits for c in packed)
    assert result.notes["spread_memory_bits"] is not None


def test_a_network_that_fills_a_chip_keeps_the_fewest_core_layout():
    import dataclasses

    loihi = targets.get("loihi")
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx"))), CALIB_X, target=loihi).graph
    packed = Partition(loihi).run(graph)
    full = dataclasses.replace(loihi, chip=dataclasses.replace(loihi.chip, cores=len(
        packed.graph.fact("mapping").cores)))
    spread = Partition(full, spread=True).run(graph)
    assert spread.graph.fact("mapping").cores == packed.graph.fact("mapping").cores
    assert spread.notes["spread_memory_bits"] is None


def test_a_tiles_expected_load_is_what_the_chip_model_counts_for_its_core():
    """``_tile_load`` with the messages each neuron actually sent gives each core's synaptic operations as the
    chip model counts them (``snnconv.chip``), core by core."""
    from snnconv import geometry
    from snnconv.passes.partition import _tile_load

    net = compiled(True)
    result = net.run(TEST["x"][:64], 1)
    incoming = geometry.projections(net.graph)
    sent = {name: np.asarray(counts) for name, counts in result.message_counts.items()}
    expected = [sum(_tile_load(tile, incoming.get(tile.population, []), sent) for tile in core.tiles)
                for core in net.graph.fact("mapping").cores]
    np.testing.assert_allclose(expected, result.stats["per_core"]["synaptic_ops"], rtol=1e-9, atol=1e-6)
