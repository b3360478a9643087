"""Float simulator of a converted (spiking) IR graph: the reference for conversion accuracy.

Runs the graph for ``T`` timesteps on a batch, in float32 torch. Semantics per step:

- input: the analog sample as a constant current (``encoding="current"``), or Bernoulli
  spikes with probability ``clip(x, 0, 1)`` (``"rate"``);
- linear layers (conv, dense, pooling, add, concat, flatten, pad, affine): their ANN
  computation applied to this step's input spikes or currents, biases added every step;
- IF layers: ``v += I``; spike where ``v >= theta``; ``v -= theta`` (or ``v = 0``);
- spiking max pooling: the pooled neuron spikes when the largest cumulative spike count
  in its window grows, so its count always equals that largest count;
- output: integrates its input current; prediction = argmax of the integral.

A graph at a chip's precision (after ``quantize``) runs the same way with integer
weights, thresholds and currents; membranes saturate at their ``state_bits`` and every
saturation is counted. Its arithmetic is exact: the quantize pass records the dtype
(float32 when every partial sum stays below 2^24, else float64) that makes it so.

With constant-current input, the layers that see only the input (up to the first IF
layer) are computed once, not every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Graph, Input, Output, Pool

__all__ = ["simulate", "SimulationResult", "Probe"]

Probe = Callable[[str, torch.Tensor, torch.Tensor], None]


@dataclass
class SimulationResult:
    """Outputs at each checkpoint, and every IF neuron's spike count over the whole run."""

    outputs: dict[int, np.ndarray]  # T -> (N, classes): integrated output / T * output scale
    spike_counts: dict[str, np.ndarray]  # IF layer or spiking max pool -> (N, *layer shape) spikes per neuron
    timesteps: int
    saturations: dict[str, int] = field(default_factory=dict)  # layer -> membrane updates clipped to state bits

    def predictions(self, timesteps: int | None = None) -> np.ndarray:
        return self.outputs[timesteps or self.timesteps].argmax(axis=1)

    def spike_rates(self) -> dict[str, float]:
        """Mean spikes per neuron per step, per IF layer."""
        return {name: float(counts.mean()) / self.timesteps for name, counts in self.spike_counts.items()}


def simulate(graph: Graph, x, timesteps: int, checkpoints: Iterable[int] = (), encoding: str | None = None,
             seed: int = 0, until: str | None = None, probe: Probe | None = None,
             device: str = "cpu") -> SimulationResult:
    """Run the spiking ``graph`` on the batch ``x`` for ``timesteps`` steps.

    With ``until``, each step stops after that layer: its spike counts (and those of the
    layers before it) are measured, no outputs are produced. ``probe(name, current, v)``
    sees every IF and output layer's input current and membrane (after integration and
    saturation, before reset; the output's integral) at every step.
    """
    if not graph.fact("spiking"):
        raise BadGraphError(f"graph {graph.name!r} is not spiking; run the spike pass first")
    encoding = encoding or graph.fact("encoding", "current")
    stops = sorted({int(t) for t in checkpoints if 0 < t <= timesteps} | {timesteps})
    batch = ann.as_batch(graph, x).to(device, getattr(torch, graph.fact("dtype", "float32")))
    generator = torch.Generator(device).manual_seed(seed)
    static = _static_layers(graph) if encoding == "current" else set()
    state = _State(graph, batch.shape[0], batch, probe)
    output = graph.output
    outputs, integral = {}, None
    with torch.no_grad():
        constant = _run_static(graph, batch, static)
        for step in range(1, timesteps + 1):
            current = _step(graph, batch, encoding, generator, static, constant, state, until)
            if until is not None:
                continue
            integral = current if integral is None else integral + current
            integral = state.saturate(output.name, output.state_bits, integral)
            if probe is not None:
                probe(output.name, current, integral)
            if step in stops:
                outputs[step] = (integral.double() / step * output.scale).cpu().numpy()
    spike_counts = {name: total.cpu().numpy() for name, total in state.spike_totals.items()}
    return SimulationResult(outputs, spike_counts, timesteps, state.saturations)


class _State:
    """Membranes of IF layers, cumulative counts and pooled maxima of spiking max pools, saturations."""

    def __init__(self, graph: Graph, batch: int, like: torch.Tensor, probe: Probe | None = None):
        self.v = {layer.name: _initial_membrane(layer, like).expand(batch, *layer.shape)
                  for layer in graph if isinstance(layer, IF)}
        self.spike_totals = {name: torch.zeros_like(v) for name, v in self.v.items()}
        self.counts: dict[str, torch.Tensor] = {}
        self.pooled: dict[str, torch.Tensor] = {}
        self.saturations: dict[str, int] = {}
        self.probe = probe

    def saturate(self, name: str, bits: int | None, v: torch.Tensor) -> torch.Tensor:
        """``v`` clipped to the signed ``bits`` range (None: unbounded), counting what was clipped."""
        if bits is None:
            return v
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        clipped = int(((v < low) | (v > high)).sum())
        if clipped:
            self.saturations[name] = self.saturations.get(name, 0) + clipped
            v = v.clamp(low, high)
        return v


def _initial_membrane(layer: IF, like: torch.Tensor) -> torch.Tensor:
    """``v_init * threshold``, rounded to an integer for a layer at a chip's precision."""
    v = torch.tensor(np.asarray(layer.v_init, np.float64) * layer.threshold)
    return (torch.round(v) if layer.state_bits is not None else v).to(like.device, like.dtype)


def _static_layers(graph: Graph) -> set[str]:
    """Layers whose value is the same every step under constant-current input."""
    static = {graph.input.name}
    for layer in graph:
        if not isinstance(layer, (IF, Output, Input)) and all(src in static for src in layer.inputs):
            static.add(layer.name)
    return static


def _run_static(graph: Graph, batch: torch.Tensor, static: set[str]) -> dict[str, torch.Tensor]:
    values = {graph.input.name: batch}
    for layer in graph:
        if layer.name in static and not isinstance(layer, Input):
            values[layer.name] = ann.apply_layer(layer, [values[src] for src in layer.inputs])
    return values


def _step(graph: Graph, batch, encoding, generator, static, constant, state: _State,
          until: str | None = None) -> torch.Tensor | None:
    """One timestep; returns the output layer's input current (None when stopped at ``until``)."""
    values = dict(constant)
    if encoding == "rate":
        values[graph.input.name] = torch.bernoulli(batch.clamp(0, 1), generator=generator)
    for layer in graph:
        if layer.name in static or isinstance(layer, Input):
            continue
        inputs = [values[src] for src in layer.inputs]
        if isinstance(layer, IF):
            values[layer.name] = _fire(layer, inputs[0], state)
        elif isinstance(layer, Pool) and layer.mode == "max":
            values[layer.name] = _spiking_max_pool(layer, inputs[0], state)
        elif isinstance(layer, Output):
            return inputs[0]
        else:
            values[layer.name] = ann.apply_layer(layer, inputs)
        if layer.name == until:
            return None
    raise BadGraphError(f"graph {graph.name!r} has no output layer")


def _fire(layer: IF, current: torch.Tensor, state: _State) -> torch.Tensor:
    v = state.saturate(layer.name, layer.state_bits, state.v[layer.name] + current)
    if state.probe is not None:
        state.probe(layer.name, current, v)
    spikes = (v >= layer.threshold).to(current.dtype)
    state.v[layer.name] = v - spikes * layer.threshold if layer.reset == "subtract" else v * (1 - spikes)
    state.spike_totals[layer.name] += spikes
    return spikes


def _spiking_max_pool(layer: Pool, spikes: torch.Tensor, state: _State) -> torch.Tensor:
    """Spike when the window's largest cumulative count grows (it grows by at most 1 per step)."""
    counts = state.counts.get(layer.name, torch.zeros_like(spikes)) + spikes
    state.counts[layer.name] = counts
    pooled = ann.apply_layer(layer, [counts])
    previous = state.pooled.get(layer.name, torch.zeros_like(pooled))
    state.pooled[layer.name] = pooled
    spikes = pooled - previous
    state.spike_totals[layer.name] = state.spike_totals.get(layer.name, 0) + spikes
    return spikes
