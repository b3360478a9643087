"""Property test: random convertible networks, partitioned for every target shrunk to small cores.

Shrinking the cores (64 compartments, 96 input axons, a synapse memory for a few hundred
synapses; ``random_networks.small_cores``) makes small networks exercise what big ones
meet on real cores: channel and spatial tiling with halos, input groups that accumulate,
cores shared between layers. The independent checker must accept every partition, or
partitioning must refuse with DoesNotFitError naming a layer.
"""

from __future__ import annotations

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
    chip = small_cores(target)
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
