"""The report's synapse and memory figures where several paths join one pair of neurons: a 3x3 conv after a 2x
nearest upsample reaches one source through up to four taps, an overlapping sum pool (3x3 windows, stride 2)
before a conv through several windows. The chip's table holds one synapse per joined pair (the taps' weights
summed), so the report counts pairs, not paths.

Oracle: the independent mapping checker (``mapping_checker``), which pushes one-hot spikes of every source
through the program with all weights one and counts, per core, the pairs joined and their memory rows by the
target's rule; it shares no code with ``snnconv.geometry`` or ``snnconv.limits``.
"""

from __future__ import annotations

import numpy as np
import pytest
from mapping_checker import check, connectivity

import snnconv
from snnconv import targets
from snnconv.report import PartitionReport

torch = pytest.importorskip("torch")
nn = torch.nn
PER_SYNAPSE = [name for name in targets.names() if targets.get(name).core.synapse_cost == "per_synapse"]


class ManyPaths(nn.Module):
    """conv -> ReLU (8x8) -> nearest x2 -> 3x3 conv -> ReLU (16x16) -> 3x3/2 average pool -> 3x3 conv -> ReLU ->
    flatten -> dense."""

    def __init__(self):
        super().__init__()
        self.stem, self.smooth = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.after_pool, self.head = nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4 * 7 * 7, 10)

    def forward(self, x):
        up = nn.functional.interpolate(torch.relu(self.stem(x)), scale_factor=2, mode="nearest")
        pooled = nn.functional.avg_pool2d(torch.relu(self.smooth(up)), 3, stride=2)
        return self.head(torch.flatten(torch.relu(self.after_pool(pooled)), 1))


@pytest.fixture(scope="module")
def compiled():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 8, 8)
    return {name: snnconv.compile(ManyPaths().eval(), name, x.numpy(), example=x[:1], timesteps=8, tune="off")
            for name in PER_SYNAPSE}


@pytest.mark.parametrize("target", PER_SYNAPSE)
def test_synapses_and_memory_count_joined_pairs_by_brute_force(compiled, target):
    graph = compiled[target].graph
    paths = sum(int(counts.sum()) for counts in connectivity(graph).values())
    brute = check(graph, targets.get(target))
    assert brute["synapses"] < paths  # the oracle: these nets do reach sources through several paths
    report = PartitionReport.from_graph(graph, targets.get(target)).to_dict()
    assert report["totals"]["synapses"] == brute["synapses"]
    mapping = graph.fact("mapping")
    assert [core.resources.synapses for core in mapping.cores] == [brute["per_core"][core.index]["synapses"]
                                                                    for core in mapping.cores]
    assert [core.resources.memory_bits for core in mapping.cores] == [brute["per_core"][core.index]["memory_bits"]
                                                                  for core in mapping.cores]
    by_layer = {row["layer"]: row["synapses"] for row in report["layers"]}
    assert sum(by_layer.values()) == brute["synapses"]
