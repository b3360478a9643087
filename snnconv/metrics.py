"""The NeuroBench metrics of a chip run, by NeuroBench's names, so users can compare with published results.

Definitions follow the neurobench package (``neurobench/metrics``; Yik et al., "The
neurobench framework for benchmarking neuromorphic computing algorithms and systems",
Nature Communications 2025), applied to the network as the chip runs it (weights at
chip precision, spikes from the chip model), per inference (mean over the samples):

- **synaptic operations**, counted in the weighted layers only, bias excluded:
  ``effective_macs``: for each layer that reads the analog input (computed once per
  sample on the host under constant-current input, not every timestep),
  ``sum over outputs of [W != 0] * [x != 0]``;
  ``effective_acs``: for each synapse map between neuron populations (dense, conv, the
  scales of residual and pooling paths, the windows of spiking max pools),
  ``sum over timesteps and synapses of [w != 0] * spike``. Spikes are 0/1, so this is
  ``sum over source neurons of spike count * synapses with a nonzero weight`` and
  follows from the per-neuron counts by pushing them through the layers with each weight
  replaced by ``[w != 0]``; a synapse reached along two routes (overlapping pool windows)
  counts twice, as the chip processes it twice. It is at most the chip's
  ``synaptic_ops``, which counts zero weights too.
  ``dense``: the same with every input and every weight one: the host layers'
  multiply-accumulates once (taps on zero padding excluded, as NeuroBench's all-ones
  input leaves them) plus ``T * synapses``.
- **activation_sparsity**: zero activations over all activations, over the IF neurons
  and all timesteps: ``1 - spikes / (IF neurons * T)``. The output layer integrates
  without spiking and is left out; spiking max pools are routing and are left out.
- **connection_sparsity**: zero weights over all weights of the dense and conv layers.
- **footprint_bytes**: the parameters as stored: at the target's precision, each weight
  (affine scales included) at ``weight_bits``, each bias (affine shifts included) at
  ``bias_bits``, each per-neuron initial membrane at ``state_bits``, each layer's
  threshold at ``threshold_bits``; host-computed layers and float targets at 32 bits.
  Shared weight exponents and synapse-table overhead (row headers, the synapse copies of
  a convolution on a per-synapse chip) are not counted: the partition report gives the
  synapse memory used.

With rate-coded input the input's spikes are not counted, as in the chip's own statistics.
A graded spike (``snnconv.neurons.graded``: an integer payload) is one nonzero activation
reaching each synapse once, whatever its payload: the chip model passes message counts
(steps with a nonzero payload) as ``counts``, so effective ACs and activation sparsity
count messages (for binary spikes, messages are the spikes).
"""

from __future__ import annotations

import dataclasses
import math

import networkx as nx
import numpy as np
import torch

from snnconv import ann, geometry
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Affine, Conv, Dense, Graph, Input, Layer, Pool, Round
from snnconv.targets.target import Target

__all__ = ["effective_macs", "neurobench"]

_FLOAT_BITS = 32
_PRECISION_BITS = {"weight": "weight_bits", "scale": "weight_bits", "bias": "bias_bits", "shift": "bias_bits",
                   "v_init": "state_bits"}


def neurobench(graph: Graph, target: Target, counts: dict[str, np.ndarray], timesteps: int,
               input_macs: float) -> dict:
    """The metrics for one inference from mean spike ``counts`` per neuron and mean ``effective_macs``.

    What depends only on the network (dense operations, connection sparsity, footprint) is
    computed once per graph (``Graph.derived``).
    """
    host = geometry.host_computed(graph)
    return {"synaptic_operations": {"effective_macs": float(input_macs),
                                    "effective_acs": _synaptic_ops(graph, host, counts),
                                    "dense": graph.derived(("dense ops", timesteps),
                                                           lambda: _dense_ops(graph, host, timesteps))},
            "activation_sparsity": _activation_sparsity(graph, counts, timesteps),
            "connection_sparsity": graph.derived("connection sparsity", lambda: _connection_sparsity(graph)),
            "footprint_bytes": graph.derived(("footprint", target.precision),
                                             lambda: _footprint_bytes(graph, target, host))}


def _dense_ops(graph: Graph, host: frozenset[str], timesteps: int) -> float:
    """The operations if every input were nonzero and every neuron spiked at every step."""
    every_step = {layer.name: np.full(layer.shape, float(timesteps)) for layer in geometry.populations(graph)}
    return _dense_macs(graph, host) + _synaptic_ops(graph, host, every_step, True)


def effective_macs(graph: Graph, x) -> float:
    """NeuroBench's effective MACs of the host-computed layers on the batch ``x``, summed over its samples."""
    weighted, needed = graph.derived("host weighted layers", lambda: _host_weighted(graph))
    values = {graph.input.name: ann.as_batch(graph, x)}
    total = 0.0
    with torch.no_grad():
        for layer in graph:
            if layer.name in weighted:
                nonzero = (values[layer.inputs[0]] != 0).to(torch.float32)
                total += float((nonzero * _reads(graph, layer)).sum(dtype=torch.float64))
            if layer.name in needed and not isinstance(layer, Input):
                values[layer.name] = ann.apply_layer(layer, [values[src] for src in layer.inputs])
    return total


def _reads(graph: Graph, layer: Layer) -> torch.Tensor:
    """How many nonzero weights of the conv/dense ``layer`` read each element of its input (padding and
    stride included): the layer's effective MACs on an input are ``sum(nonzero(input) * reads)``, an
    elementwise product per call instead of a convolution. Computed once, as the gradient of the binary
    layer's output sum (it is linear, so the gradient is exactly that count)."""
    def compute() -> torch.Tensor:
        ones = torch.ones((1, *graph.input_shapes(layer)[0]), requires_grad=True)
        with torch.enable_grad():
            ann.apply_layer(_binary(graph, layer), [ones]).sum().backward()
        return ones.grad[0]

    return graph.derived(("reads", layer.name), compute)


def _host_weighted(graph: Graph) -> tuple[list[str], set[str]]:
    """The host-computed conv and dense layers, and every layer they read from."""
    host = geometry.host_computed(graph)
    weighted = [layer.name for layer in graph if layer.name in host and isinstance(layer, (Conv, Dense))]
    dag = graph.to_networkx()
    return weighted, set().union(*(nx.ancestors(dag, name) for name in weighted))


def _dense_macs(graph: Graph, host: set[str]) -> float:
    """All multiply-accumulates of the host-computed weighted layers: every input and weight nonzero."""
    total = 0.0
    with torch.no_grad():
        for layer in graph:
            if layer.name in host and isinstance(layer, (Conv, Dense)):
                ones = torch.ones((1, *graph.input_shapes(layer)[0]), dtype=torch.float64)
                total += float(ann.apply_layer(_binary(graph, layer, ones=True), [ones]).sum())
    return total


def _synaptic_ops(graph: Graph, host: set[str], counts: dict[str, np.ndarray], ones: bool = False) -> float:
    """Spike counts pushed through the synapse maps with weights ``[w != 0]`` (or all one): the ACs they cause.

    Every population's value is its own spike count (not a function of its input), so each
    population's input is the sum, over its incoming synapse maps, of spikes times synapses.
    Host-computed layers carry no spikes: they arrive as biases. That sum is linear in the
    counts: each population's synapses out per neuron (``_fan_outs``, once per graph) turn
    a call into one dot product per population.
    """
    fan_outs = graph.derived(("fan-outs", ones), lambda: _fan_outs(graph, host, ones))
    return float(sum(float(fan_out @ torch.from_numpy(np.asarray(counts[name], np.float64)).reshape(-1))
                     for name, fan_out in fan_outs.items() if name in counts))


def _fan_outs(graph: Graph, host: set[str], ones: bool) -> dict[str, torch.Tensor]:
    """Per population, the synaptic operations one spike of each of its neurons causes (flat, float64).

    The forward pass of ``_synaptic_ops`` with each population's value a variable: its
    gradient is the fan-out, as every layer between populations is linear (weights ``[w !=
    0]``, no bias, pools as sums; ``Round`` only ever reads the host's constant input).
    """
    values: dict[str, torch.Tensor] = {}
    leaves: dict[str, torch.Tensor] = {}
    total = torch.zeros((), dtype=torch.float64)
    with torch.enable_grad():
        for layer in graph:
            inputs = [values[src] for src in layer.inputs]
            if geometry.is_population(layer):
                arriving = ann.apply_layer(_binary(graph, layer), inputs) if isinstance(layer, Pool) else inputs[0]
                total = total + arriving.sum()
                values[layer.name] = leaves[layer.name] = torch.zeros((1, *layer.shape), dtype=torch.float64,
                                                                      requires_grad=True)
            elif isinstance(layer, Input) or layer.name in host:
                values[layer.name] = torch.zeros((1, *layer.shape), dtype=torch.float64)
            else:
                if isinstance(layer, Round) and any(x.requires_grad for x in inputs):
                    raise BadGraphError(f"layer {layer.name!r}: a Round reads spikes; it writes the host's "
                                        "constant currents as biases and may only read them")
                values[layer.name] = ann.apply_layer(_binary(graph, layer, ones), inputs)
        grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True) if total.requires_grad else ()
    return {name: (torch.zeros(math.prod(leaf.shape), dtype=torch.float64) if grad is None else grad.reshape(-1))
            for (name, leaf), grad in zip(leaves.items(), grads or [None] * len(leaves))}


def _binary(graph: Graph, layer: Layer, ones: bool = False) -> Layer:
    """The layer with weights ``[w != 0]`` (or all one) and no bias: its output counts synaptic operations.

    Pooling windows become sums, so a window's routes are counted, not averaged. One per
    layer of ``graph``, so its tensors are converted once (``ann``'s cache is per layer).
    """
    return graph.derived(("binary", layer.name, ones), lambda: _binary_layer(layer, ones))


def _binary_layer(layer: Layer, ones: bool) -> Layer:
    if isinstance(layer, (Conv, Dense)):
        weight = np.ones_like(layer.weight) if ones else (layer.weight != 0).astype(np.float64)
        return dataclasses.replace(layer, weight=weight, bias=np.zeros_like(layer.bias))
    if isinstance(layer, Affine):
        scale = np.ones_like(layer.scale) if ones else (layer.scale != 0).astype(np.float64)
        return dataclasses.replace(layer, scale=scale, shift=np.zeros_like(layer.shift))
    if isinstance(layer, Pool):
        return dataclasses.replace(layer, mode="sum")
    return layer


def _activation_sparsity(graph: Graph, counts: dict[str, np.ndarray], timesteps: int) -> float:
    neurons = [layer for layer in graph if isinstance(layer, IF)]
    activations = sum(math.prod(layer.shape) for layer in neurons) * timesteps
    spikes = sum(float(np.sum(counts[layer.name])) for layer in neurons if layer.name in counts)
    return 1.0 - spikes / activations if activations else 0.0


def _connection_sparsity(graph: Graph) -> float:
    weights = [layer.weight for layer in graph if isinstance(layer, (Conv, Dense))]
    total = sum(w.size for w in weights)
    return sum(int(np.count_nonzero(w == 0)) for w in weights) / total if total else 0.0


def _footprint_bytes(graph: Graph, target: Target, host: set[str]) -> int:
    """Bytes of the parameters at the bits each is stored with (see the module docstring)."""
    precision = target.precision
    bits = 0
    for layer in graph:
        at_chip = not precision.is_float and layer.name not in host
        for name, array in layer.arrays().items():
            width = getattr(precision, _PRECISION_BITS[name]) if at_chip and name in _PRECISION_BITS else _FLOAT_BITS
            bits += array.size * width
        if isinstance(layer, IF):
            bits += precision.threshold_bits if at_chip else _FLOAT_BITS
    return math.ceil(bits / 8)
