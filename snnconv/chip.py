"""The chip model: runs an artifact's program at the chip's precision and measures what the chip would do.

It reads only the artifact (``snnconv.artifact.read``): the program at chip precision and
the core map. The dynamics are the float SNN simulator's (``snnconv.snn``), which with
integer weights, thresholds and currents is exact in the dtype the compiler proved
sufficient (float32 while every partial sum stays below 2^24, else float64), batched over
samples and vectorized over neurons, on CPU or CUDA. Tests hold it to a reference that
executes the per-core synapse tables literally, bit for bit.

Per core, from the same run: spikes emitted, synaptic operations (a spike reaching one
synapse), neuron updates (every compartment, every step), messages to other cores
(a spike of a source neuron to each core holding its targets; within a chip with its
mesh hops, or across chips). Energy and time per inference follow from the target's
per-operation costs (see each target's ``sources`` for where they come from):

    energy = synops * E_synop + updates * E_update + hops * E_hop + chip crossings * E_chip
             + static power * time
    time   = T * (max over cores (synops_core * t_synop + updates_core * t_update)
                  + (mesh rows + mesh columns) * t_hop)

i.e. cores work in parallel and a step ends when the busiest core is done (barrier
synchronization, Loihi-style), plus the longest route across a chip's mesh (an
assumption: routes run in parallel and the step waits for the longest possible one).
Messages across chips cost ``E_chip`` each; their latency is not modeled.

Beside them, ``stats["neurobench"]`` holds the NeuroBench metrics of the run (see
``snnconv.metrics``); the ANN's own cost is added by ``CompiledNetwork.run``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv import ann, geometry, metrics
from snnconv.data import check_labels
from snnconv.errors import BadDataError, SnnconvError
from snnconv.ir import IF, Graph
from snnconv.mapping import Mapping, traffic
from snnconv.snn import CHUNK_ELEMENTS, simulate
from snnconv.targets.target import Target

__all__ = ["RunResult", "run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Predictions and outputs at ``timesteps``; ``stats`` per inference (means over the samples)."""

    predictions: np.ndarray
    outputs: np.ndarray
    timesteps: int
    stats: dict = field(default_factory=dict)
    spike_counts: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int] = field(default_factory=dict)

    def accuracy(self, labels) -> float:
        """The fraction of samples whose prediction is their label (class indices, one per sample)."""
        labels = np.asarray(labels)
        if labels.shape != self.predictions.shape or labels.dtype.kind not in "iu":
            raise BadDataError(f"labels: expected {len(self.predictions)} integer class indices, got {labels.dtype} "
                               f"of shape {labels.shape}")
        check_labels(labels, self.outputs.shape[1], "labels")
        return float((self.predictions == labels).mean())


def run(graph: Graph, target: Target, x: np.ndarray, timesteps: int, batch_size: int = 256,
        device: str = "cpu", progress=None) -> RunResult:
    """Simulate ``x`` (N, *input shape) in batches; statistics averaged per sample."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SnnconvError(f"device {device!r}: torch sees no CUDA GPU here; run on device 'cpu'")
    outputs, counts, saturations, input_macs = [], {}, {}, 0.0
    batch_size = ann.samples_per_batch(graph, CHUNK_ELEMENTS, batch_size)  # a chunk of one step must fit
    for start in range(0, len(x), batch_size):
        result = simulate(graph, x[start:start + batch_size], timesteps, device=device)
        input_macs += metrics.effective_macs(graph, x[start:start + batch_size])
        outputs.append(result.outputs[timesteps])
        for name, c in result.spike_counts.items():
            counts[name] = counts.get(name, 0) + c.sum(axis=0)
        for name, n in result.saturations.items():
            saturations[name] = saturations.get(name, 0) + n
        if progress is not None:
            progress(min(len(x), start + batch_size))
    if saturations:
        log.warning("membranes saturated at the chip's state bits %s times (%s); the chip clips them the same way",
                    f"{sum(saturations.values()):,}", ", ".join(sorted(saturations)))
    samples = len(x)
    mean_counts = {name: c / samples for name, c in counts.items()}
    output = np.concatenate(outputs)
    stats = statistics(graph, target, mean_counts, timesteps) if graph.fact("mapping") else {}
    stats["neurobench"] = metrics.neurobench(graph, target, mean_counts, timesteps, input_macs / samples)
    stats["saturations"] = saturations
    return RunResult(output.argmax(axis=1), output, timesteps, stats, mean_counts, saturations)


def statistics(graph: Graph, target: Target, counts: dict[str, np.ndarray], timesteps: int) -> dict:
    """Per-core activity for one inference from per-neuron spike counts, and energy and time."""
    mapping: Mapping = graph.fact("mapping")
    n_cores = len(mapping.cores)
    spikes, synops, updates = np.zeros(n_cores), np.zeros(n_cores), np.zeros(n_cores)
    incoming = geometry.projections(graph)
    for core in mapping.cores:
        for tile in core.tiles:
            layer = graph[tile.population]
            (c0, c1), (r0, r1), (x0, x1) = tile.box
            compartments = layer.compartments if isinstance(layer, IF) and tile.group == 0 else 1
            updates[core.index] += tile.size * compartments * timesteps
            if tile.group == 0 and tile.population in counts:
                spikes[core.index] += _box_of(counts[tile.population], layer.shape)[c0:c1, r0:r1, x0:x1].sum()
            for index, p in enumerate(incoming[tile.population]):
                if p.source in counts:
                    synops[core.index] += _synaptic_ops(p, tile, index, counts[p.source], graph)
    hops, across = _messages(graph, mapping, counts)
    costs = target.costs
    step_time = float(np.max(synops / timesteps * costs.synop_ns + updates / timesteps * costs.neuron_update_ns,
                             initial=0.0))
    time_ns = timesteps * (step_time + sum(target.chip.mesh) * costs.spike_hop_ns)
    dynamic_pj = synops.sum() * costs.synop_pj + updates.sum() * costs.neuron_update_pj \
        + hops * costs.spike_hop_pj + across * costs.chip_hop_pj
    static_pj = costs.static_mw * max(mapping.chips, 1) * time_ns  # mW * ns = pJ
    return {"timesteps": timesteps, "cores": n_cores, "chips": mapping.chips,
            "spikes": float(spikes.sum()), "synaptic_ops": float(synops.sum()), "neuron_updates": float(updates.sum()),
            "hops": float(hops), "messages_across_chips": float(across),
            "energy_uj": float(dynamic_pj + static_pj) / 1e6, "dynamic_energy_uj": float(dynamic_pj) / 1e6,
            "latency_us": float(time_ns) / 1e3,
            "per_core": {"spikes": spikes.tolist(), "synaptic_ops": synops.tolist(),
                         "neuron_updates": updates.tolist()}}


def _box_of(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    box = tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)
    return np.asarray(values).reshape(box)


def _synaptic_ops(p: geometry.Projection, tile, index: int, source_counts: np.ndarray, graph: Graph) -> float:
    """Spikes of each source neuron times the synapses it has into this tile (Kronecker factors)."""
    (c0, c1), (r0, r1), (x0, x1) = tile.box
    per_channel = p.channels[c0:c1].sum(axis=0).astype(np.float64)
    if tile.groups > 1:
        _, lo, hi = tile.inputs[index]
        keep = np.zeros_like(per_channel)
        keep[lo:hi] = 1
        per_channel *= keep
    per_row, per_col = p.rows[r0:r1].sum(axis=0), p.cols[x0:x1].sum(axis=0)
    counts = _box_of(source_counts, graph[p.source].shape)
    return float(np.einsum("c,y,x,cyx->", per_channel, per_row, per_col, counts))


def _messages(graph: Graph, mapping: Mapping, counts: dict[str, np.ndarray]) -> tuple[float, float]:
    """Hop-weighted messages on chip and messages across chips, at the measured per-channel rates (a core's
    messages to itself take no hop)."""
    rates = {name: _box_of(c, graph[name].shape).mean(axis=(1, 2)) for name, c in counts.items()}
    edges = traffic(graph, mapping.cores, rates)
    if not len(edges):
        return 0.0, 0.0
    chip = np.array([c.chip for c in mapping.cores])
    position = np.array([c.position for c in mapping.cores])
    src, dst, messages = edges[:, 0].astype(int), edges[:, 1].astype(int), edges[:, 2]
    across = chip[src] != chip[dst]
    hops = np.abs(position[src] - position[dst]).sum(axis=1)
    return float((messages[~across] * hops[~across]).sum()), float(messages[across].sum())
