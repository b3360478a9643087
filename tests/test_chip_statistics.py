"""The chip model's per-core statistics against a literal count over the synapse tables.

``snnconv.chip.statistics`` computes synaptic operations and messages from Kronecker
factors, once per network (``Graph.derived``). Here they are counted neuron by neuron
from the connectivity the mapping checker measures by pushing one-hot spikes through
the program (``mapping_checker.connectivity``):

- synaptic operations of a core: for every tile on it and every source neuron its input
  group reads, the neuron's spike count times its synapses into the tile;
- messages: every (sender tile, reader tile) pair carries, per step, the per-channel
  rate of each source neuron of the sender that the reader reads, and every input
  group's tile one partial sum per neuron to the tile holding the neuron; weighted by the
  mesh hops between their cores on one chip, or counted once across chips.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mapping_checker import _box_indices, connectivity, group_rows
from test_chip import TEST, mapped

from snnconv import chip, targets

CASES = [("mlp", "loihi"), ("cnn", "loihi"), ("resnet", "speck"), ("cnn", "spinnaker2")]


def literal(graph, counts: dict[str, np.ndarray], timesteps: int) -> tuple[np.ndarray, float, float]:
    mapping = graph.fact("mapping")
    links = connectivity(graph)
    synops = np.zeros(len(mapping.cores))
    hops = across = 0.0
    senders = [(tile, core) for core in mapping.cores for tile in core.tiles if tile.group == 0]
    for core in mapping.cores:
        for tile in core.tiles:
            neurons = _box_indices(graph[tile.population].shape, tile.box)
            for (source, target), synapses in links.items():
                if target != tile.population or source not in counts:
                    continue
                rows = group_rows(graph, tile, source, synapses.shape[0])
                reached = synapses[np.ix_(rows, neurons)]
                synops[core.index] += counts[source].reshape(-1)[rows] @ (reached > 0).sum(axis=1)  # one synapse a pair
                rate = _channel_rates(graph, source, counts[source])[rows]
                read = reached.any(axis=1)
                for sender, sender_core in senders:
                    if sender.population == source:
                        held = np.isin(rows, _box_indices(graph[source].shape, sender.box))
                        hops, across = _add(hops, across, float(rate[read & held].sum()), sender_core, core)
            for soma, soma_core in senders:  # an input group's partial sums go to the neuron's own tile
                if tile.group > 0 and soma.population == tile.population:
                    shared = np.intersect1d(neurons, _box_indices(graph[tile.population].shape, soma.box)).size
                    hops, across = _add(hops, across, float(shared), core, soma_core)
    return synops, hops, across


def _add(hops: float, across: float, messages: float, sender, reader) -> tuple[float, float]:
    if sender.chip != reader.chip:
        return hops, across + messages
    distance = abs(sender.position[0] - reader.position[0]) + abs(sender.position[1] - reader.position[1])
    return hops + messages * distance, across


def _channel_rates(graph, name: str, count: np.ndarray) -> np.ndarray:
    """Each neuron's channel's mean count (the traffic model's per-channel rate), per neuron."""
    shape = graph[name].shape
    box = tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)
    per_channel = count.reshape(box).mean(axis=(1, 2))
    return np.repeat(per_channel, box[1] * box[2])


@pytest.mark.parametrize("model, target", CASES)
def test_per_core_synaptic_operations_and_messages_equal_a_literal_count(model, target):
    graph = mapped(model, target)
    timesteps = 12
    counts = chip.run(graph, targets.get(target), TEST["x"][:8], timesteps).spike_counts
    stats = chip.statistics(graph, targets.get(target), counts, timesteps)
    synops, hops, across = literal(graph, counts, timesteps)
    np.testing.assert_allclose(stats["per_core"]["synaptic_ops"], synops, rtol=1e-6)  # counts are float32 means
    assert stats["hops"] == pytest.approx(hops, rel=1e-6, abs=1e-9)
    assert stats["messages_across_chips"] == pytest.approx(across, rel=1e-6, abs=1e-9)
    if target == "spinnaker2":
        assert graph.fact("mapping").chips > 1 and across > 0  # the case that crosses chips


def test_statistics_of_a_second_run_reuse_the_first_runs_plans():
    graph = mapped("mlp", "loihi")
    counts = chip.run(graph, targets.get("loihi"), TEST["x"][:4], 8).spike_counts
    chip.statistics(graph, targets.get("loihi"), counts, 8)
    plans = graph.derived("synaptic op plans", lambda: None)
    chip.statistics(graph, targets.get("loihi"), counts, 8)
    assert plans is not None and graph.derived("synaptic op plans", lambda: None) is plans


def test_a_runs_statistics_are_computed_when_first_read_and_once(monkeypatch):
    """``run`` returns predictions without the cost model; ``stats`` computes it on first read (the same figures
    as from the run's message counts) and keeps it."""
    graph, loihi = mapped("cnn", "loihi"), targets.get("loihi")
    calls = []
    real = chip.statistics
    monkeypatch.setattr(chip, "statistics", lambda *args: calls.append(args) or real(*args))
    result = chip.run(graph, loihi, TEST["x"][:3], 8)
    assert calls == []
    assert result.stats["synaptic_ops"] == real(graph, loihi, result.message_counts, 8)["synaptic_ops"]
    assert result.stats is result.stats and len(calls) == 1


def _per_core_operations(factors, counts, cores) -> np.ndarray:
    """The oracle: each tile's operations as one contraction, summed into its core."""
    synops = np.zeros(cores.max() + 1)
    np.add.at(synops, cores, np.einsum("tc,ty,tx,cyx->t", *factors, counts))
    return synops


@pytest.mark.parametrize("distinct, block, way", [
    (None, 3 * 30 * 20, "blocks"),  # every tile's factors its own, too many to multiply out: blocks of three tiles
    (3, 1 << 22, "grid"),  # tiles share three channel ranges, row and column bands: the distinct ones contracted
    (None, 1 << 22, "matrix"),  # few cores, every factor its own: the per-core matrix is the cheapest
])
def test_synaptic_operations_every_way_equal_one_contraction(monkeypatch, distinct, block, way):
    """Counting in blocks (bounded memory for networks of thousands of tiles), over the distinct factors, or
    with a per-core matrix changes nothing."""
    rng = np.random.default_rng(0)
    pick = (lambda n: rng.integers(0, distinct, 50)) if distinct else (lambda n: np.arange(50))
    factors = tuple(rng.random((50, n))[pick(n)] for n in (8, 30, 20))
    counts, cores = rng.random((8, 30, 20)), rng.integers(0, 4 if way == "matrix" else 20, 50)
    monkeypatch.setattr(chip, "BLOCK_ELEMENTS", block)
    plan = chip._SynapticOpPlan(cores, *(torch.from_numpy(f) for f in factors))
    assert ("matrix" if plan.per_core is not None else "grid" if plan.factored else "blocks") == way
    synops = np.zeros(cores.max() + 1)
    plan.add_to(synops, counts)
    np.testing.assert_allclose(synops, _per_core_operations(factors, counts, cores), rtol=1e-12)