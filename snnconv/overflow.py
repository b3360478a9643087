"""Overflow analysis: the largest synaptic sum and membrane value every layer can reach.

Interval arithmetic over the spiking graph, per neuron. Spike sources (IF layers,
spiking max pools, a rate-coded input) emit 0 or 1 per step (a graded neuron up to its
payload ``P``, ``snnconv.neurons.graded``, a burst neuron up to ``G`` spikes,
``snnconv.neurons.burst``: the population's ``spikes_per_step``; a max pool what its source
emits); a constant-current input
lies in ``input_range``. A linear layer ``y = A x + b`` maps the interval with centre
``m`` and radius ``r`` to centre ``A m + b`` and radius ``|A| r``: the bounds are
attained by some input, so they are tight per layer. Alongside, ``|A| |x| + |b|``
bounds every partial sum met while computing the layer, which is what decides whether
float32 arithmetic is exact (all below 2^24) or float64 is needed (below 2^53).

A population's membrane over ``T`` steps, with per-step input current in ``[lo, hi]``,
is bounded by its neuron model (``snnconv.neurons``; for IF, with threshold ``theta``
and initial value ``v0``:

    upper: max(theta - 1 + hi, v0 + hi + (T - 1) * max(0, hi - P theta))   (subtract reset)
           max(theta - 1, v0) + hi                                       (reset to zero)
    lower: min(0, v0) + T * min(0, lo)

since one spike per step removes at most ``theta`` and nothing below the threshold is
removed), and so is the largest number its step computes (``work``: a leaky neuron's
decay multiplies the membrane by up to 4096 before shifting). The output integrator
stays within ``T * [lo, hi]``. Where a bound leaves the signed ``state_bits`` range the
chip saturates; the analysis says so, and the simulator counts how often it happens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from snnconv import ann, neurons
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Affine, Conv, Dense, Graph, Input, Layer, Output, Pool, Round

__all__ = ["Interval", "current_bounds", "analyze", "payload", "spikes_per_step", "exact_dtype", "LayerBounds",
           "EXACT_FLOAT32", "EXACT_FLOAT64"]

EXACT_FLOAT32 = 2 ** 24
EXACT_FLOAT64 = 2 ** 53


@dataclass
class Interval:
    """Per-neuron bounds of a layer's output in one step, and of any partial sum computing it."""

    lo: torch.Tensor
    hi: torch.Tensor
    magnitude: torch.Tensor


@dataclass
class LayerBounds:
    """A population's worst cases over a run of ``timesteps`` steps (scalars over its neurons)."""

    name: str
    current: tuple[float, float]  # per-step synaptic input, min and max
    partial_sum: float  # largest |partial sum| computing the input
    membrane: tuple[float, float]  # membrane (output: integral) min and max over the run
    state_range: tuple[float, float] | None  # what the chip can hold; None: unbounded
    bits_needed: int  # signed bits that hold every bound above
    work: float = 0.0  # the largest |value| the neuron model's step computes (beyond membrane + input)

    @property
    def may_saturate(self) -> bool:
        if self.state_range is None:
            return False
        return self.membrane[0] < self.state_range[0] or self.membrane[1] > self.state_range[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"may_saturate": self.may_saturate}


def current_bounds(graph: Graph, input_range: tuple[float, float] = (0.0, 1.0)) -> dict[str, Interval]:
    """Every layer's per-step output interval; for IF and output layers, that of their input current."""
    rate = graph.fact("encoding", "current") == "rate"
    bounds: dict[str, Interval] = {}
    for layer in graph:
        if isinstance(layer, Input):
            lo, hi = (0.0, 1.0) if rate else input_range
            bounds[layer.name] = _constant(layer.shape, lo, hi)
        elif isinstance(layer, (IF, Output)):
            bounds[layer.name] = bounds[layer.inputs[0]]
        elif isinstance(layer, Pool) and layer.mode == "max":
            bounds[layer.name] = _constant(layer.shape, 0.0, spikes_per_step(graph, layer.name))
        else:
            bounds[layer.name] = _through(layer, [_spikes_of(graph, src, bounds) for src in layer.inputs])
    return bounds


def analyze(graph: Graph, timesteps: int, input_range: tuple[float, float] = (0.0, 1.0)) -> list[LayerBounds]:
    """Worst-case current, partial sums and membrane of every population over ``timesteps`` steps."""
    bounds = current_bounds(graph, input_range)
    result = []
    for layer in graph:
        if not isinstance(layer, (IF, Output)):
            continue
        interval = bounds[layer.name]
        lo, hi = float(interval.lo.min()), float(interval.hi.max())
        membrane = _membrane(layer, interval, timesteps)
        bits = layer.state_bits
        state = None if bits is None else (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        largest = max(abs(membrane[0]), abs(membrane[1]), float(interval.magnitude.max()))
        held = largest if state is None else min(largest, -state[0])
        work = neurons.of(layer).work(layer, held) if isinstance(layer, IF) else 0.0
        result.append(LayerBounds(layer.name, (lo, hi), float(interval.magnitude.max()), membrane, state,
                                  int(np.ceil(np.log2(largest + 1))) + 1, work))
    return result


def _membrane(layer: IF | Output, current: Interval, timesteps: int) -> tuple[float, float]:
    if isinstance(layer, Output):
        return float(timesteps * current.lo.clamp(max=0).min()), float(timesteps * current.hi.clamp(min=0).max())
    model = neurons.of(layer)
    v0 = torch.as_tensor(model.initial(layer))
    lower, upper = model.membrane_bounds(layer, current.lo, current.hi, v0, timesteps)
    return float(lower.min()), float(upper.max())


def _constant(shape: tuple[int, ...], lo: float, hi: float) -> Interval:
    full = torch.full((1, *shape), 1.0, dtype=torch.float64)
    return Interval(full * lo, full * hi, full * max(abs(lo), abs(hi)))


def spikes_per_step(graph: Graph, name: str) -> float:
    """The most a spike source sends per neuron and step: its neuron model's ``spikes_per_step`` (1 for binary
    spikes, up to ``P`` for graded ones, ``G`` for bursts); a spiking max pool sends what its source does."""
    model = _source_model(graph, name)
    return 1.0 if model is None else float(model.spikes_per_step)


def payload(graph: Graph, name: str) -> float:
    """The most one message of a spike source carries (``neurons.message_payload``): a graded neuron's payload
    ``P``; 1 for binary spikes and for bursts, whose spikes are messages each. Above 1, the simulator counts
    messages apart from spikes."""
    model = _source_model(graph, name)
    return 1.0 if model is None else float(neurons.message_payload(model))


def _source_model(graph: Graph, name: str):
    """The neuron model whose spikes layer ``name`` sends (through spiking max pools); None for the input."""
    layer = graph[name]
    while isinstance(layer, Pool) and layer.mode == "max":
        layer = graph[layer.inputs[0]]
    return neurons.of(layer) if isinstance(layer, IF) else None


def _spikes_of(graph: Graph, name: str, bounds: dict[str, Interval]) -> Interval:
    """What a layer's readers receive: spikes (0 to the model's spikes per step, 1 for binary) from an IF layer,
    else its output interval."""
    if isinstance(graph[name], IF):
        return _constant(graph[name].shape, 0.0, spikes_per_step(graph, name))
    return bounds[name]


def _through(layer: Layer, ins: list[Interval]) -> Interval:
    """The interval of a layer's output, and the bound on its partial sums."""
    if isinstance(layer, Round):
        lo, hi = (ann.apply_layer(layer, [x]) for x in (ins[0].lo, ins[0].hi))
        return Interval(lo, hi, torch.maximum(lo.abs(), hi.abs()))
    mids = [(x.hi + x.lo) / 2 for x in ins]
    radii = [(x.hi - x.lo) / 2 for x in ins]
    centre = ann.apply_layer(layer, mids)
    absolute = _absolute(layer)
    radius = ann.apply_layer(_absolute(layer, bias=False), radii)
    magnitude = ann.apply_layer(absolute, [x.magnitude for x in ins])
    return Interval(centre - radius, centre + radius, magnitude)


def _absolute(layer: Layer, bias: bool = True) -> Layer:
    """The layer with every weight (and bias, or none) replaced by its absolute value."""
    if isinstance(layer, (Conv, Dense)):
        return dataclasses.replace(layer, weight=np.abs(layer.weight),
                                   bias=np.abs(layer.bias) if bias else np.zeros_like(layer.bias))
    if isinstance(layer, Affine):
        return dataclasses.replace(layer, scale=np.abs(layer.scale),
                                   shift=np.abs(layer.shift) if bias else np.zeros_like(layer.shift))
    return layer


def exact_dtype(bounds: list[LayerBounds]) -> str:
    """float32 when every partial sum, every membrane plus its input and every neuron step's work stays below
    2^24, else float64.

    Membranes saturate at the state range, so that range caps their contribution.
    """
    largest = 0.0
    for b in bounds:
        membrane = max(abs(b.membrane[0]), abs(b.membrane[1]))
        if b.state_range is not None:
            membrane = min(membrane, -b.state_range[0])
        largest = max(largest, membrane + b.partial_sum, b.work)
    if largest >= EXACT_FLOAT64:
        raise BadGraphError(f"partial sums reach {largest:.3g}: beyond exact float64 arithmetic (2^53)")
    return "float32" if largest < EXACT_FLOAT32 else "float64"
