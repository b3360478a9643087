"""Energy and latency of a streamed recurrent program, per item and per sequence, from its run's spike counts.

The same cost model as the feed-forward chip model (``snnconv.chip.statistics``), applied
to the recurrent core map of ``snnconv.recurrent.partition``:

    synaptic ops = hidden spikes x (H recurrent synapses + C output synapses) per spike
    neuron updates = (H x compartments + C) per step, K steps per item, L items
    hops = per spike of a neuron on core i, the mesh distance to every core it routes to
           (its own core: none; another chip: one crossing instead)
    energy = synops E_synop + updates E_update + hops E_hop + crossings E_chip + static power x time
    time per step = max over cores (synops_core t_synop + updates_core t_update) + (mesh rows + columns) t_hop

with per-core work averaged over the steps (cores run in parallel, a step ends when the
busiest is done). One item takes ``K`` steps, one sequence ``L K``. Not counted: the host's
write of each item's input currents and its read of the output integrals (off-chip I/O),
as the feed-forward model does not count its input currents either.
"""

from __future__ import annotations

import numpy as np

from snnconv.mapping import places
from snnconv.recurrent import RecurrentProgram, SequenceResult
from snnconv.targets.target import Target

__all__ = ["statistics"]


def statistics(program: RecurrentProgram, target: Target, result: SequenceResult) -> dict:
    """Mean figures for one sequence of ``result`` (spikes, synaptic ops, updates, hops, energy split, latency),
    with ``per_item`` latency and energy (a sequence's divided by its items)."""
    if result.neuron_spikes is None:
        raise ValueError("statistics needs SequenceResult.neuron_spikes (from snnconv.recurrent.run)")
    steps = program.items * program.steps_per_item
    spikes = result.neuron_spikes.mean(axis=0)  # (H,) per sequence
    cores = program.cores
    synops, updates = np.zeros(len(cores)), np.zeros(len(cores))
    received = _received(program, spikes)
    for i, core in enumerate(cores):
        width = core.neurons[1] - core.neurons[0]
        synops[i] = received[i] * width
        updates[i] = width * (program.compartments if core.population == "hidden" else 1) * steps
    hops, across = _messages(program, target, spikes)
    costs = target.costs
    step_ns = float(np.max(synops / steps * costs.synop_ns + updates / steps * costs.neuron_update_ns, initial=0.0))
    time_ns = steps * (step_ns + sum(target.chip.mesh) * costs.spike_hop_ns)
    chips = max(_chip_of(len(cores) - 1, target) + 1, 1)
    split_pj = {"synaptic": synops.sum() * costs.synop_pj, "neuron_update": updates.sum() * costs.neuron_update_pj,
                "routing": hops * costs.spike_hop_pj + across * costs.chip_hop_pj,
                "static": costs.static_mw * chips * time_ns}  # mW * ns = pJ
    dynamic_pj = split_pj["synaptic"] + split_pj["neuron_update"] + split_pj["routing"]
    energy_uj = (dynamic_pj + split_pj["static"]) / 1e6
    return {"steps_per_item": program.steps_per_item, "items": program.items, "timesteps": steps,
            "cores": len(cores), "chips": chips, "spikes": float(spikes.sum()), "synaptic_ops": float(synops.sum()),
            "neuron_updates": float(updates.sum()), "hops": float(hops), "messages_across_chips": float(across),
            "energy_uj": energy_uj, "dynamic_energy_uj": dynamic_pj / 1e6,
            "energy_split_uj": {part: float(pj) / 1e6 for part, pj in split_pj.items()},
            "latency_us": time_ns / 1e3,
            "per_item": {"latency_us": time_ns / 1e3 / program.items, "energy_uj": energy_uj / program.items}}


def _received(program: RecurrentProgram, spikes: np.ndarray) -> np.ndarray:
    """Per core, the spikes it receives per sequence: those of every hidden core that routes to it (its own
    layer through the recurrent synapses, the layer below through the feed-forward ones; the top layer's at
    the output cores)."""
    received = np.zeros(len(program.cores))
    for core in program.cores:
        if core.population == "hidden":
            received[list(core.routes)] += float(spikes[core.neurons[0]:core.neurons[1]].sum())
    return received


def _chip_of(index: int, target: Target) -> int:
    return index // target.chip.cores


def _messages(program: RecurrentProgram, target: Target, spikes: np.ndarray) -> tuple[float, float]:
    """Hop-weighted messages within chips and crossings between chips: each hidden neuron's spikes go once to
    every core in its core's routes (cores placed in index order, ``snnconv.mapping.places`` on each chip)."""
    spots = places(target.chip.mesh, target.chip.cores)
    hops = across = 0.0
    for core in program.cores:
        sent = float(spikes[core.neurons[0]:core.neurons[1]].sum()) if core.population == "hidden" else 0.0
        for destination in core.routes:
            if _chip_of(destination, target) != _chip_of(core.index, target):
                across += sent
                continue
            (r0, c0), (r1, c1) = (spots[i % target.chip.cores] for i in (core.index, destination))
            hops += sent * (abs(r0 - r1) + abs(c0 - c1))
    return hops, across
