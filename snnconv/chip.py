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
mesh hops, or across chips). A graded spike (``snnconv.neurons.graded``) is one message
whatever its payload: for graded populations "spikes" are messages (the steps a neuron
sent a nonzero payload, ``RunResult.message_counts``), and synaptic operations and
routing are messages x fan-out; ``stats["spike_payload"]`` then gives the payloads'
sum (the spike count of rate coding). For binary spikes messages are spikes. Energy and
time per inference follow from the target's per-operation costs (see each target's ``sources`` for where they come from):

    energy = synops * E_synop + updates * E_update + hops * E_hop + chip crossings * E_chip
             + static power * time
    time   = T * (max over cores (synops_core * t_synop + updates_core * t_update)
                  + (mesh rows + mesh columns) * t_hop)

i.e. cores work in parallel and a step ends when the busiest core is done (barrier
synchronization, Loihi-style), plus the longest route across a chip's mesh (an
assumption: routes run in parallel and the step waits for the longest possible one).
Messages across chips cost ``E_chip`` each; their latency is not modeled.
``stats["energy_split_uj"]`` gives the four terms apart: synaptic, neuron_update, routing
(hops and chip crossings) and static.

Beside them, ``stats["neurobench"]`` holds the NeuroBench metrics of the run (see
``snnconv.metrics``); the ANN's own cost is added by ``CompiledNetwork.run``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv import ann, data, geometry, metrics, neurons
from snnconv.errors import SnnconvError
from snnconv.ir import IF, Graph
from snnconv.mapping import Mapping, weighted_traffic
from snnconv.snn import CHUNK_ELEMENTS, simulate, threads_for
from snnconv.targets.target import Target

__all__ = ["RunResult", "run"]

BLOCK_ELEMENTS = 1 << 22  # per-position sums held at once while counting synaptic operations (32 MB)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Predictions and outputs at ``timesteps``; ``stats`` per inference (means over the samples)."""

    predictions: np.ndarray
    outputs: np.ndarray
    timesteps: int
    statistics: Callable[[], dict] = field(default=dict, repr=False, compare=False)  # what ``stats`` reads
    spike_counts: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int] = field(default_factory=dict)
    message_counts: dict[str, np.ndarray] = field(default_factory=dict)  # mean per neuron: steps it sent a message

    @functools.cached_property
    def stats(self) -> dict:
        """Per-core activity, energy, latency and NeuroBench metrics, computed on first read: a caller that
        wants only the predictions (a training loop, a batch-1 service) does not pay for the cost model,
        about a fifth of a batch-1 run of the bundled CNN."""
        return self.statistics()

    def accuracy(self, labels) -> float:
        """The fraction of samples whose prediction is their label (class indices, one per sample)."""
        return data.accuracy(self.outputs, labels)


def run(graph: Graph, target: Target, x: np.ndarray, timesteps: int, batch_size: int = 256,
        device: str = "cpu", progress=None, executor: str = "local", ray_address: str | None = None) -> RunResult:
    """Simulate ``x`` (N, *input shape) in batches; statistics averaged per sample.

    ``executor="ray"`` runs the batches as tasks on a Ray cluster (``snnconv.distributed``;
    ``ray_address``: a running one, else one started here): the same result, to the byte.
    """
    if str(device).startswith("cuda") and not torch.cuda.is_available() and executor == "local":
        raise SnnconvError(f"device {device!r}: torch sees no CUDA GPU here; run on device 'cpu'")
    batch_size = ann.samples_per_batch(graph, CHUNK_ELEMENTS, batch_size)  # a chunk of one step must fit
    work = functools.partial(batch_totals, timesteps=timesteps)
    with threads_for(graph, min(batch_size, len(x)), device):
        if executor == "ray":
            from snnconv.distributed import map_batches

            totals = map_batches(graph, x, batch_size, work, device, ray_address, progress)
        else:
            totals = [work(graph, x[start:start + batch_size], device) for start in _starts(x, batch_size, progress)]
        return _merged(graph, target, totals, len(x), timesteps)


@dataclass
class BatchTotals:
    """What one batch contributes to a run: its outputs, and its counts summed over its samples."""

    outputs: np.ndarray
    counts: dict[str, np.ndarray]
    messages: dict[str, np.ndarray]
    saturations: dict[str, int]
    input_macs: float


def batch_totals(graph: Graph, x: np.ndarray, device: str, timesteps: int) -> BatchTotals:
    """Simulate one batch and sum what the run's statistics need (a module-level function: Ray ships it)."""
    result = simulate(graph, x, timesteps, device=device)
    counts = {name: c.sum(axis=0) for name, c in result.spike_counts.items()}
    messages = {name: counts[name] if c is result.spike_counts.get(name) else c.sum(axis=0)  # binary: the same
                for name, c in result.message_counts.items()}
    return BatchTotals(result.outputs[timesteps], counts, messages, dict(result.saturations),
                       metrics.effective_macs(graph, x))


def _starts(x: np.ndarray, batch_size: int, progress):
    """The batches' first samples, reporting each batch done to ``progress``."""
    for start in range(0, len(x), batch_size):
        yield start
        if progress is not None:
            progress(min(len(x), start + batch_size))


def _merged(graph: Graph, target: Target, totals: list[BatchTotals], samples: int, timesteps: int) -> RunResult:
    """The run's result from its batches' totals, added in batch order (the same sums wherever batches ran)."""
    counts, messages, saturations, input_macs = {}, {}, {}, 0.0
    for batch in totals:
        input_macs += batch.input_macs
        for name, c in batch.counts.items():
            counts[name] = counts.get(name, 0) + c
        for name, c in batch.messages.items():
            messages[name] = messages.get(name, 0) + c
        for name, n in batch.saturations.items():
            saturations[name] = saturations.get(name, 0) + n
    if saturations:
        log.warning("membranes saturated at the chip's state bits %s times (%s); the chip clips them the same way",
                    f"{sum(saturations.values()):,}", ", ".join(sorted(saturations)))
    mean_counts = {name: c / samples for name, c in counts.items()}
    mean_messages = {name: c / samples for name, c in messages.items()}
    output = np.concatenate([batch.outputs for batch in totals])

    def run_statistics() -> dict:
        with threads_for(graph, 1):  # small products: one thread, as during the run
            # what costs energy and traffic is a message (a binary spike, or a graded spike whatever its payload)
            stats = statistics(graph, target, mean_messages, timesteps) if graph.fact("mapping") else {}
            if stats and any(isinstance(layer, IF) and neurons.of(layer).spikes_per_step > 1 for layer in graph):
                stats["spike_payload"] = float(sum(c.sum() for c in mean_counts.values()))
            stats["neurobench"] = metrics.neurobench(graph, target, mean_messages, timesteps, input_macs / samples)
            stats["saturations"] = saturations
            return stats

    return RunResult(output.argmax(axis=1), output, timesteps, run_statistics, mean_counts, saturations,
                     mean_messages)


def statistics(graph: Graph, target: Target, counts: dict[str, np.ndarray], timesteps: int) -> dict:
    """Per-core activity for one inference from per-neuron message counts (binary spikes: spike counts; graded
    spikes: the steps with a nonzero payload), and energy and time."""
    mapping: Mapping = graph.fact("mapping")
    n_cores = len(mapping.cores)
    spikes, synops = np.zeros(n_cores), np.zeros(n_cores)
    updates = graph.derived("neuron updates per step", lambda: _updates_per_step(graph, mapping)) * timesteps
    for source, plan in graph.derived("synaptic op plans", lambda: _synaptic_op_plans(graph, mapping)).items():
        if source in counts:
            plan.add_to(synops, _box_of(counts[source], graph[source].shape))
    for name, cores in graph.derived("spike cores", lambda: _spike_cores(graph, mapping)).items():
        if name in counts:
            spikes += np.bincount(cores, np.asarray(counts[name], np.float64).reshape(-1), n_cores + 1)[:n_cores]
    hops, across = _messages(graph, mapping, counts)
    costs = target.costs
    step_time = float(np.max(synops / timesteps * costs.synop_ns + updates / timesteps * costs.neuron_update_ns,
                             initial=0.0))
    time_ns = timesteps * (step_time + sum(target.chip.mesh) * costs.spike_hop_ns)
    split_pj = {"synaptic": synops.sum() * costs.synop_pj, "neuron_update": updates.sum() * costs.neuron_update_pj,
                "routing": hops * costs.spike_hop_pj + across * costs.chip_hop_pj,
                "static": costs.static_mw * max(mapping.chips, 1) * time_ns}  # mW * ns = pJ
    dynamic_pj = split_pj["synaptic"] + split_pj["neuron_update"] + split_pj["routing"]
    static_pj = split_pj["static"]
    return {"timesteps": timesteps, "cores": n_cores, "chips": mapping.chips,
            "spikes": float(spikes.sum()), "synaptic_ops": float(synops.sum()), "neuron_updates": float(updates.sum()),
            "hops": float(hops), "messages_across_chips": float(across),
            "energy_uj": float(dynamic_pj + static_pj) / 1e6, "dynamic_energy_uj": float(dynamic_pj) / 1e6,
            "energy_split_uj": {part: float(pj) / 1e6 for part, pj in split_pj.items()},
            "latency_us": float(time_ns) / 1e3,
            "per_core": {"spikes": spikes.tolist(), "synaptic_ops": synops.tolist(),
                         "neuron_updates": updates.tolist()}}


def _box_of(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(values).reshape(_box(shape))


def _box(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A population's (channels, rows, columns): a flat one is channels only."""
    return tuple(shape) if len(shape) == 3 else (math.prod(shape), 1, 1)


def _spike_cores(graph: Graph, mapping: Mapping) -> dict[str, np.ndarray]:
    """Per population, the core that sends each neuron's spikes (its group-0 tile's), flat in the neurons' order;
    ``len(mapping.cores)`` for a neuron no tile holds."""
    owners: dict[str, np.ndarray] = {}
    for core in mapping.cores:
        for tile in core.tiles:
            if tile.group == 0:
                box = owners.setdefault(tile.population, np.full(geometry.population_box_shape(graph[tile.population]),
                                                                 len(mapping.cores)))
                (c0, c1), (r0, r1), (x0, x1) = tile.box
                box[c0:c1, r0:r1, x0:x1] = core.index
    return {name: box.reshape(-1) for name, box in owners.items()}


def _updates_per_step(graph: Graph, mapping: Mapping) -> np.ndarray:
    """Compartments each core updates every step (a neuron's group-0 tile holds all of its compartments)."""
    updates = np.zeros(len(mapping.cores))
    for core in mapping.cores:
        for tile in core.tiles:
            layer = graph[tile.population]
            updates[core.index] += tile.size * (layer.compartments if isinstance(layer, IF) and tile.group == 0 else 1)
    return updates


@dataclass
class _SynapticOpPlan:
    """The synapses every source neuron has into each tile reading it, as Kronecker factors stacked per tile.

    A tile's synaptic operations are ``sum over (c, y, x) of channels[c] rows[y] cols[x]
    counts[c, y, x]``. The tiles of a layer share few channel ranges, row bands and column
    bands, so the counts are contracted with the distinct factors only, one axis at a time
    (``grid``), and each tile picks its entry; where that grid would be larger than
    ``BLOCK_ELEMENTS``, blocks of tiles contract their own factors. A small source whose
    per-core matrix is cheaper than the grid uses the matrix: one matrix-vector product.
    The products run in torch, on the simulator's threads: numpy's BLAS keeps threads of
    its own spinning after each call, which on a small machine slowed the next batch's
    simulation twofold.
    """

    cores: np.ndarray  # (tiles,) the core of each tile
    channels: torch.Tensor  # (tiles, source C), float64
    rows: torch.Tensor  # (tiles, source H)
    cols: torch.Tensor  # (tiles, source W)

    def __post_init__(self) -> None:
        self.used, owner = np.unique(self.cores, return_inverse=True)
        self.owner = torch.from_numpy(owner.reshape(-1))
        self.distinct = [torch.unique(f, dim=0, return_inverse=True) for f in (self.channels, self.rows, self.cols)]
        (kc, c), (kr, h), (kx, w) = (tuple(distinct.shape) for distinct, _ in self.distinct)
        grid_cost = kc * c * h * w + kc * kr * h * w + kc * kr * kx * w
        matrix_cost = len(self.used) * c * h * w
        self.factored = kc * max(h * w, kr * w, kr * kx) <= BLOCK_ELEMENTS
        self.per_core = None
        if matrix_cost <= BLOCK_ELEMENTS and (matrix_cost <= grid_cost or not self.factored):
            matrix = torch.einsum("tc,ty,tx->tcyx", self.channels, self.rows, self.cols).reshape(len(self.cores), -1)
            self.per_core = torch.zeros((len(self.used), matrix.shape[1]), dtype=matrix.dtype).index_add_(
                0, self.owner, matrix)

    def add_to(self, synops: np.ndarray, counts: np.ndarray) -> None:
        """Add the operations that ``counts`` (C, H, W) spikes of the source cause to each core's ``synops``."""
        counts = torch.from_numpy(np.asarray(counts, np.float64))
        if self.per_core is not None:
            synops[self.used] += (self.per_core @ counts.reshape(-1)).numpy()
            return
        per_core = torch.zeros(len(self.used), dtype=counts.dtype).index_add_(0, self.owner, self.operations(counts))
        synops[self.used] += per_core.numpy()

    def operations(self, counts: torch.Tensor) -> torch.Tensor:
        """Each tile's operations for ``counts`` (C, H, W)."""
        c, h, w = counts.shape
        if self.factored:
            (channels, channel_of), (rows, row_of), (cols, col_of) = self.distinct
            grid = (channels @ counts.reshape(c, h * w)).reshape(-1, h, w)  # (kc, H, W)
            grid = rows @ grid  # (kc, kr, W)
            return (grid @ cols.T)[channel_of, row_of, col_of]  # (kc, kr, kx), one entry per tile
        flat, step = counts.reshape(c, h * w), max(1, BLOCK_ELEMENTS // (h * w))
        blocks = [torch.einsum("tyx,ty,tx->t", (self.channels[i:i + step] @ flat).reshape(-1, h, w),
                               self.rows[i:i + step], self.cols[i:i + step]) for i in range(0, len(self.cores), step)]
        return torch.cat(blocks)


def _synaptic_op_plans(graph: Graph, mapping: Mapping) -> dict[str, _SynapticOpPlan]:
    incoming = geometry.projections(graph)
    factors: dict[str, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for core in mapping.cores:
        for tile in core.tiles:
            (c0, c1), (r0, r1), (x0, x1) = tile.box
            for index, p in enumerate(incoming[tile.population]):
                per_channel = p.channels[c0:c1].sum(axis=0).astype(np.float64)
                if tile.groups > 1:  # this input group reads one range of the source's channels
                    _, lo, hi = tile.inputs[index]
                    per_channel[:lo], per_channel[hi:] = 0, 0
                factors.setdefault(p.source, []).append(
                    (core.index, per_channel, p.rows[r0:r1].sum(axis=0), p.cols[x0:x1].sum(axis=0)))
    return {source: _SynapticOpPlan(np.array([f[0] for f in rows]),
                                    *(torch.from_numpy(np.stack([f[i] for f in rows]).astype(np.float64))
                                      for i in (1, 2, 3)))
            for source, rows in factors.items()}


def _messages(graph: Graph, mapping: Mapping, counts: dict[str, np.ndarray]) -> tuple[float, float]:
    """Hop-weighted messages on chip and messages across chips, at the measured per-channel rates (a core's
    messages to itself take no hop; a population without counts fires every step)."""
    per_channel, constants = graph.derived("message plans", lambda: _message_plans(graph, mapping))
    total = constants.copy()
    for name, weights in per_channel.items():
        if name in counts:
            total += weights @ np.asarray(counts[name], np.float64).reshape(len(weights.T), -1).sum(axis=1)
        else:  # one message per channel and unit rate
            total += weights.sum(axis=1) * math.prod(_box(graph[name].shape)[1:])
    return float(total[0]), float(total[1])


def _message_plans(graph: Graph, mapping: Mapping) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``weighted_traffic`` for hops within a chip and for crossings between chips: per population a (2, channels)
    matrix, the traffic per spike of a channel (a channel's weight over its neurons: traffic follows its mean
    rate), and the two rate-independent constants."""
    chip = np.array([c.chip for c in mapping.cores])
    position = np.array([c.position for c in mapping.cores])

    def hops(src, dst):
        return np.where(chip[src] == chip[dst], np.abs(position[src] - position[dst]).sum(axis=-1), 0)

    def crossings(src, dst):
        return (chip[src] != chip[dst]).astype(np.float64)

    (hop_vectors, hop_constant), (cross_vectors, cross_constant) = (weighted_traffic(graph, mapping.cores, weight)
                                                                    for weight in (hops, crossings))
    per_channel = {}
    for name in hop_vectors.keys() | cross_vectors.keys():
        channels, height, width = _box(graph[name].shape)
        per_channel[name] = np.stack([np.broadcast_to(vectors.get(name, 0.0), (channels,)) / (height * width)
                                      for vectors in (hop_vectors, cross_vectors)])
    return per_channel, np.array([hop_constant, cross_constant])
