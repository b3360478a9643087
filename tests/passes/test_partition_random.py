"""Property test: random convertible networks, partitioned for every target shrunk to small cores.

Shrinking the cores (64 compartments, 96 input axons, a synapse memory for a few hundred
synapses; ``random_networks.small_cores``) makes small networks exercise what big ones
meet on real cores: channel and spatial tiling with halos, input groups that accumulate,
cores shared between layers. Speck's cores stay unlike one another (``shrunk``). The
independent checker must accept every partition, or partitioning must refuse with
DoesNotFitError naming a layer.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from mapping_checker import check
from random_networks import networks, small_cores

from snnconv import targets
from snnconv.errors import DoesNotFitError
from snnconv.passes.partition import Partition
from snnconv.passes.place import Place
from snnconv.pipeline import convert

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("target", targets.names())
@SETTINGS
@given(case=networks())
def test_random_networks_partition_within_limits_for_every_target(target, case):
    graph, calibration = case
    chip = shrunk(target)
    quantized = convert(graph, calibration, target=chip).graph
    try:
        partitioned = Partition(chip).run(quantized).graph
    except DoesNotFitError as error:
        event("refused")
        assert "layer '" in str(error) and "needs more than a core has" in str(error)
        return
    event("partitioned")
    placed = Place(chip, chips=10_000).run(partitioned).graph
    check(placed, chip)


def shrunk(target: str):
    """``small_cores(target)``; Speck's shrunk as its own cores differ: a 1,024th of their neurons (64 to 16) and a
    32nd of their kernel memories (512 to 2,048 weights). Without its fan-out limit: cores this small split every
    layer over many cores, which two destinations per core cannot route (test_partition tests that refusal)."""
    chip = small_cores(target)
    if target != "speck":
        return chip
    speck = targets.get("speck").core
    core = dataclasses.replace(chip.core, neurons=tuple(n // 1024 for n in speck.neurons), fan_out=math.inf,
                               synapse_memory_bits=tuple(bits // 32 for bits in speck.synapse_memory_bits))
    return dataclasses.replace(chip, core=core)
