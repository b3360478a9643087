"""Float simulator of a converted (spiking) IR graph: the reference for conversion accuracy.

Runs the graph for ``T`` timesteps on a batch, in float32 torch. Semantics per step:

- input: the analog sample as a constant current (``encoding="current"``), or Bernoulli
  spikes with probability ``clip(x, 0, 1)`` (``"rate"``);
- linear layers (conv, dense, pooling, add, concat, flatten, pad, affine): their ANN
  computation applied to this step's input spikes or currents, biases added every step;
- spiking populations: their neuron model's step (``snnconv.neurons``: for IF,
  ``v += I``; spike where ``v >= theta``; ``v -= theta`` or ``v = 0``; a graded neuron
  sends up to ``P`` spikes in one step, and its messages, the steps with a nonzero
  payload, are counted beside its spikes: ``SimulationResult.message_counts``);
- spiking max pooling: the pooled neuron spikes when the largest cumulative spike count
  in its window grows, so its count always equals that largest count;
- output: integrates its input current; prediction = argmax of the integral.

A graph at a chip's precision (after ``quantize``) runs the same way with integer
weights, thresholds and currents; membranes saturate at their ``state_bits`` and every
saturation is counted. Its arithmetic is exact: the quantize pass records the dtype
(float32 when every partial sum stays below 2^24, else float64) that makes it so.

Speed: the network is feed-forward, so a layer's input for a whole run of steps is known
before the layer runs. Time is cut into chunks of ``k`` steps (as many as fit
``CHUNK_ELEMENTS`` per layer tensor) and every linear layer processes its chunk at once,
as one batch of ``k x N`` samples; only the IF membranes step through time, in place.
With constant-current input, the layers that see only the input (up to the first IF
layer) are computed once, not every step.

``sweep`` runs the same steps layer-major instead: each spiking layer through the whole
run before the next starts, so an IF layer's input current can be corrected after its own
spikes were seen (``passes/correct_bias``) at the cost of one simulation, not one per layer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from snnconv import ann, neurons, overflow
from snnconv.errors import BadDataError, BadGraphError
from snnconv.ir import IF, Graph, Input, Layer, Output, Pool

__all__ = ["CHUNK_ELEMENTS", "SWEEP_BYTES", "Correction", "Probe", "SimulationResult", "simulate", "sweep",
           "sweep_samples"]

Probe = Callable[[str, torch.Tensor, torch.Tensor], None]
Correction = Callable[[str, np.ndarray], "np.ndarray | None"]

CHUNK_ELEMENTS = 1 << 24  # largest tensor a chunk may hold: steps x samples x neurons of one layer
SWEEP_BYTES = 1 << 29  # default bound on the spike trains a sweep keeps: 512 MB of bools
# below this many neuron values per step (samples x neurons), a CPU run uses one thread: its steps are tiny tensor
# operations, and waking a second thread for each cost more than it saved (the bundled MNIST nets up to batch 16,
# 2 cores: 1.1 vs 1.4 ms per MLP sample, 7.3 vs 8.2 ms per CNN sample at T = 32)
SERIAL_ELEMENTS = 1 << 20


@dataclass
class SimulationResult:
    """Outputs at each checkpoint, and every IF neuron's spike count over the whole run."""

    outputs: dict[int, np.ndarray]  # T -> (N, classes): integrated output / T * output scale
    spike_counts: dict[str, np.ndarray]  # IF layer or spiking max pool -> (N, *layer shape) spikes per neuron
    timesteps: int
    saturations: dict[str, int] = field(default_factory=dict)  # layer -> membrane updates clipped to state bits
    # the same layers -> (N, *layer shape) messages per neuron: steps with a nonzero payload (graded spikes send
    # up to P spikes in one message); for binary spikes the spike counts themselves
    message_counts: dict[str, np.ndarray] = field(default_factory=dict)

    def predictions(self, timesteps: int | None = None) -> np.ndarray:
        return self.outputs[timesteps or self.timesteps].argmax(axis=1)

    def spike_rates(self) -> dict[str, float]:
        """Mean spikes per neuron per step, per IF layer."""
        return {name: float(counts.mean()) / self.timesteps for name, counts in self.spike_counts.items()}


def simulate(graph: Graph, x, timesteps: int, checkpoints: Iterable[int] = (), encoding: str | None = None,
             seed: int = 0, probe: Probe | None = None, device: str = "cpu") -> SimulationResult:
    """Run the spiking ``graph`` on the batch ``x`` for ``timesteps`` steps.

    ``probe(name, current, v)`` sees every IF and output layer's input current and
    membrane (after integration and saturation, before reset; the output's integral) at
    every step.
    """
    stops = sorted({int(t) for t in checkpoints if 0 < t <= timesteps} | {timesteps})
    readout = _Readout(graph.output, timesteps)
    outputs, done = {}, 0
    with torch.no_grad(), threads_for(graph, _samples(x), device):
        run = _start(graph, x, timesteps, encoding, seed, probe, device)
        for steps in _chunks(timesteps, run.steps_per_chunk()):
            integrals = run.integrals(run.chunk(steps))
            for stop in (t for t in sorted(set(stops) | readout.marks) if done < t <= done + steps):
                value = readout.read(integrals[stop - done - 1], stop)
                if stop in stops:
                    outputs[stop] = value.cpu().numpy()
            done += steps
    spike_counts = {name: total.cpu().numpy() for name, total in run.spike_totals.items()}
    messages = {name: run.message_totals[name].cpu().numpy() if name in run.message_totals else counts
                for name, counts in spike_counts.items()}
    return SimulationResult(outputs, spike_counts, timesteps, run.saturations, messages)


def sweep(graph: Graph, x, timesteps: int, correction: Correction, encoding: str | None = None,
          seed: int = 0) -> None:
    """Run the spiking ``graph`` on ``x`` layer by layer, letting ``correction`` shift each IF layer's current.

    The steps are ``simulate``'s, in another order: each IF layer (and spiking max pool)
    runs through all ``timesteps`` before the next one starts, and its spike train is
    kept (as bools; graded payloads as bytes) while a later layer still reads it. An IF
    layer runs twice: once to measure its spike counts ``(N, *shape)``, after which
    ``correction(name, counts)`` returns an extra input current (an array that broadcasts
    to the layer's shape, e.g. one value per channel) or None, and once more with that
    current added every step;
    its spikes of the second run are what later layers see. The run stops after the last
    IF layer: no outputs are produced.

    Cost: every layer is computed once per run of the spiking layer it feeds, so about
    twice one ``simulate`` (once where a layer's input fits one chunk), whatever the depth.
    Memory: ``T x N`` bytes per neuron of the spike trains alive at once; ``sweep_samples``
    says how many samples fit a budget.
    """
    with torch.no_grad(), threads_for(graph, _samples(x)):
        run = _start(graph, x, timesteps, encoding, seed, None, "cpu")
        _Sweep(run, timesteps).run_layers(correction)


def sweep_samples(graph: Graph, timesteps: int, samples: int, budget: int = SWEEP_BYTES,
                  encoding: str | None = None) -> int:
    """The most samples (up to ``samples``, at least one) whose spike trains ``sweep`` keeps fit ``budget`` bytes."""
    plan = _SweepPlan(graph, _static_layers(graph) if _encoding(graph, encoding) == "current" else set())
    size = _train_dtype(graph).itemsize
    return max(1, min(samples, budget // (timesteps * size * max(1, plan.peak_neurons()))))


def _start(graph: Graph, x, timesteps: int, encoding: str | None, seed: int, probe: Probe | None,
           device: str) -> _Run:
    """A run of ``graph`` on the batch ``x``: its arithmetic chosen, its constant currents computed."""
    if not graph.fact("spiking"):
        raise BadGraphError(f"graph {graph.name!r} is not spiking; run the spike pass first")
    batch = ann.as_batch(graph, x)
    dtype, checked = _arithmetic(graph, timesteps, batch)
    return _Run(graph, batch.to(device, getattr(torch, graph.fact("dtype", "float32"))), dtype,
                _encoding(graph, encoding), seed, probe, checked)


def threads_for(graph: Graph, samples: int, device: str = "cpu") -> AbstractContextManager:
    """One intra-op thread while a small CPU run lasts (``SERIAL_ELEMENTS``), the caller's setting restored after.

    Torch's thread count is the process's: code running torch in other Python threads at
    the same time sees one thread too while it lasts.
    """
    small = str(device).startswith("cpu") and samples * _step_elements(graph) < SERIAL_ELEMENTS
    return _threads(1) if small else contextlib.nullcontext()


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``count`` while the block runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _step_elements(graph: Graph) -> int:
    """Values per sample and step of the layers a run computes every step (all but the input)."""
    return sum(math.prod(layer.shape) for layer in graph.layers[1:])


def _samples(x) -> int:
    """How many samples ``x`` holds, before it is checked (a bad one is refused by ``ann.as_batch``)."""
    shape = np.shape(x)
    return int(shape[0]) if shape else 1


def _encoding(graph: Graph, encoding: str | None) -> str:
    return encoding or graph.fact("encoding", "current")


def _chunks(timesteps: int, most: int) -> list[int]:
    """``timesteps`` cut into the fewest chunks of at most ``most`` steps, as even as possible."""
    count = math.ceil(timesteps / most)
    return [timesteps // count + (i < timesteps % count) for i in range(count)]


class _Run:
    """The state of one simulation: membranes, max-pool counts, output integral, saturations."""

    def __init__(self, graph: Graph, batch: torch.Tensor, dtype: torch.dtype, encoding: str, seed: int,
                 probe: Probe | None, checked: set[str]):
        self.graph, self.encoding, self.probe, self.checked = graph, encoding, probe, checked
        self.batch = batch.to(dtype)
        self.generator = torch.Generator(batch.device).manual_seed(seed)
        self.v: dict[str, torch.Tensor] = {}  # IF membranes, created when the layer first runs
        self.spike_totals: dict[str, torch.Tensor] = {}
        self.message_totals: dict[str, torch.Tensor] = {}  # only for sources that may send more than 1 per step
        self.payloads = graph.derived("payloads", lambda: {layer.name: overflow.payload(graph, layer.name)
                                                           for layer in graph
                                                           if isinstance(layer, IF) or _is_spiking_pool(layer)})
        self.counts: dict[str, torch.Tensor] = {}
        self.pooled: dict[str, torch.Tensor] = {}
        self.saturations: dict[str, int] = {}
        self.integral: torch.Tensor | None = None
        self.static = graph.derived("static layers", lambda: _static_layers(graph)) if encoding == "current" else set()
        # the host computes input currents in the program's dtype; the chip's integers are exact in ``dtype``
        self.constant = {name: value.to(dtype) for name, value in _run_static(graph, batch, self.static).items()}
        self.readers = graph.derived("readers", lambda: _readers(graph))

    def steps_per_chunk(self) -> int:
        largest = max(math.prod(layer.shape) for layer in self.graph if layer.name not in self.static)
        return max(1, CHUNK_ELEMENTS // (len(self.batch) * largest))

    def chunk(self, steps: int) -> torch.Tensor:
        """Run ``steps`` steps through every layer; the output layer's input currents (steps, N, classes)."""
        values = dict(self.constant)
        if self.encoding == "rate":
            probability = self.batch.clamp(0, 1).expand(steps, *self.batch.shape)
            values[self.graph.input.name] = torch.bernoulli(probability, generator=self.generator)
        left = dict(self.readers)
        for layer in self.graph:
            if layer.name in self.static or isinstance(layer, Input):
                continue
            inputs = [values[src] for src in layer.inputs]
            if isinstance(layer, Output):
                return _over_time(inputs[0], layer.inputs[0] in self.static, steps)
            values[layer.name] = self._layer(layer, inputs, steps)
            for src in layer.inputs:  # free what no later layer reads
                left[src] -= 1
                if left[src] == 0 and src not in self.static:
                    del values[src]
        raise BadGraphError(f"graph {self.graph.name!r} has no output layer")

    def _layer(self, layer: Layer, inputs: list[torch.Tensor], steps: int) -> torch.Tensor:
        if isinstance(layer, IF):
            return self.fire(layer, inputs[0], layer.inputs[0] in self.static, steps)
        if _is_spiking_pool(layer):
            return self.max_pool(layer, inputs[0])
        return self.linear(layer, inputs, steps)

    def linear(self, layer: Layer, inputs: list[torch.Tensor], steps: int) -> torch.Tensor:
        """A stateless layer on a chunk: its ANN computation on ``steps x N`` samples at once."""
        flat = [_over_time(x, src in self.static, steps).flatten(0, 1) for x, src in zip(inputs, layer.inputs)]
        y = ann.apply_layer(layer, flat)
        return y.unflatten(0, (steps, len(self.batch)))

    def forget(self, name: str) -> None:
        """Drop the state of layer ``name`` (membranes, counts, saturations): it starts afresh if run again."""
        for state in (self.v, self.spike_totals, self.message_totals, self.counts, self.pooled, self.saturations):
            state.pop(name, None)

    def fire(self, layer: IF, current: torch.Tensor, constant: bool, steps: int) -> torch.Tensor:
        """Step the membranes through the chunk in place; the spikes (steps, N, ...) as 0/1."""
        if layer.name not in self.v:
            initial = self.graph.derived(("initial membrane", layer.name, self.batch.dtype, self.batch.device),
                                         lambda: _initial_membrane(layer, self.batch))
            self.v[layer.name] = initial.expand(len(self.batch), *layer.shape).clone()
            self.spike_totals[layer.name] = torch.zeros_like(self.v[layer.name])
        v, model = self.v[layer.name], neurons.of(layer)
        spikes = torch.empty((steps, *v.shape), dtype=v.dtype, device=v.device)
        watched = self.probe is not None or layer.name in self.checked  # each step seen, or saturation possible
        if not watched and constant:
            model.run_constant(layer, v, current, spikes)
        elif not watched:
            model.run(layer, v, current.unbind(0), spikes.unbind(0))
        else:
            currents = [current] * steps if constant else current.unbind(0)
            for step_current, out in zip(currents, spikes.unbind(0)):
                model.integrate(layer, v, step_current)
                self._saturate(layer.name, layer.state_bits, v)
                if self.probe is not None:
                    self.probe(layer.name, step_current, v.clone())
                model.fire(layer, v, out)
        self.spike_totals[layer.name] += spikes.sum(0)
        self._count_messages(layer.name, spikes)
        return spikes

    def max_pool(self, layer: Pool, spikes: torch.Tensor) -> torch.Tensor:
        """Spike when the window's largest cumulative count grows (it grows by at most 1 per step)."""
        steps, batch = spikes.shape[:2]
        before = self.counts.get(layer.name, torch.zeros_like(spikes[0]))
        counts = before + spikes.cumsum(0)
        self.counts[layer.name] = counts[-1]
        pooled = ann.apply_layer(layer, [counts.flatten(0, 1)]).unflatten(0, (steps, batch))
        previous = self.pooled.get(layer.name, torch.zeros_like(pooled[0]))
        self.pooled[layer.name] = pooled[-1]
        out = pooled - torch.cat([previous[None], pooled[:-1]])
        self.spike_totals[layer.name] = self.spike_totals.get(layer.name, 0) + out.sum(0)
        self._count_messages(layer.name, out)
        return out

    def _count_messages(self, name: str, spikes: torch.Tensor) -> None:
        """Messages per neuron: steps with a nonzero payload, counted where a step may carry more than one spike."""
        if self.payloads[name] > 1:
            sent = (spikes != 0).sum(0).to(spikes.dtype)
            self.message_totals[name] = self.message_totals.get(name, 0) + sent

    def integrals(self, currents: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """The output integral after each step of a chunk of input ``currents`` (steps, N, ...), indexed by step.

        At a chip's precision, where the integral provably stays within its state bits and
        no probe watches, one running sum gives them all: its values are the integrals
        themselves, integers exact in the run's dtype, so the order of additions cannot
        change them. Otherwise step by step, saturating.
        """
        output = self.graph.output
        if self.probe is None and output.state_bits is not None and output.name not in self.checked:
            start = torch.zeros_like(currents[0]) if self.integral is None else self.integral
            sums = torch.cat([start[None], currents]).cumsum(0)[1:]
            self.integral = sums[-1]
            return sums
        return [self.integrate(current) for current in currents.unbind(0)]

    def integrate(self, current: torch.Tensor) -> torch.Tensor:
        """One step of the output integrator (saturating at its state bits)."""
        output = self.graph.output
        self.integral = current.clone() if self.integral is None else self.integral + current
        self._saturate(output.name, output.state_bits, self.integral)
        if self.probe is not None:
            self.probe(output.name, current, self.integral)
        return self.integral

    def _saturate(self, name: str, bits: int | None, v: torch.Tensor) -> None:
        """Clip ``v`` in place to the signed ``bits`` range (None: unbounded), counting what was clipped."""
        if bits is None or name not in self.checked:
            return
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        smallest, largest = torch.aminmax(v)
        if float(smallest) < low or float(largest) > high:
            self.saturations[name] = self.saturations.get(name, 0) + int(((v < low) | (v > high)).sum())
            v.clamp_(low, high)


class _Readout:
    """The host's reading of the output integral: its mean per step, leaving out the ``burn_in`` first steps
    (``Output.burn_in``) of a run longer than that."""

    def __init__(self, output: Output, timesteps: int):
        self.scale, self.burn_in = output.scale, output.burn_in or 0
        self.marks = {self.burn_in} if 0 < self.burn_in < timesteps else set()  # where the integral is read first
        self.skipped: torch.Tensor | None = None

    def read(self, integral: torch.Tensor, stop: int) -> torch.Tensor:
        """The output after step ``stop`` (float64), from the integral then; steps are read in order."""
        integral = integral.double()
        if stop == self.burn_in and self.marks:
            self.skipped = integral.clone()
        if self.skipped is not None and stop > self.burn_in:
            return (integral - self.skipped) / (stop - self.burn_in) * self.scale
        return integral / stop * self.scale


def _is_spiking_pool(layer: Layer) -> bool:
    """Max pooling in a spiking graph pools spike counts: like an IF layer, it has state across steps."""
    return isinstance(layer, Pool) and layer.mode == "max"


class _SweepPlan:
    """What a sweep runs in turn, what it computes for each, and what it keeps until when.

    ``order``: the layers with state across steps (IF layers, spiking max pools), up to
    the last IF layer; each runs through all steps before the next. ``segments``: for
    each, the stateless layers its input is computed from, back to kept spike trains or
    constant currents, in graph order. ``freed_after[i]``: the spike trains no layer after
    ``order[i]`` reads (a rate-coded input's train is kept from the start).
    """

    def __init__(self, graph: Graph, static: set[str]):
        stateful = [layer for layer in graph
                    if layer.name not in static and (isinstance(layer, IF) or _is_spiking_pool(layer))]
        last_if = max((i for i, layer in enumerate(stateful) if isinstance(layer, IF)), default=-1)
        self.order = stateful[: last_if + 1]
        self.sizes = {layer.name: math.prod(layer.shape) for layer in self.order}
        self.initial = [] if graph.input.name in static else [graph.input.name]
        self.sizes.update({name: math.prod(graph.input.shape) for name in self.initial})
        position = {layer.name: i for i, layer in enumerate(graph)}
        self.segments: dict[str, list[Layer]] = {}
        last_reader = {name: 0 for name in self.initial}
        for i, layer in enumerate(self.order):
            needed, sources = _upstream(graph, layer, static | set(self.sizes))
            self.segments[layer.name] = [graph[name] for name in sorted(needed, key=position.__getitem__)]
            last_reader.update({src: i for src in sources if src in self.sizes})
            last_reader.setdefault(layer.name, i)
        self.freed_after: list[list[str]] = [[] for _ in self.order]
        for name, i in last_reader.items():
            self.freed_after[i].append(name)

    def peak_neurons(self) -> int:
        """The most neurons whose spike trains are kept at once (a layer's own while it runs)."""
        kept = sum(self.sizes[name] for name in self.initial)
        peak = kept
        for layer, freed in zip(self.order, self.freed_after):
            kept += self.sizes[layer.name]
            peak = max(peak, kept)
            kept -= sum(self.sizes[name] for name in freed)
        return peak


def _upstream(graph: Graph, layer: Layer, stops: set[str]) -> tuple[set[str], set[str]]:
    """The layers that ``layer``'s inputs are computed from, back to (not through) ``stops``; and the stops reached."""
    needed, reached, pending = set(), set(), list(layer.inputs)
    while pending:
        name = pending.pop()
        if name in stops:
            reached.add(name)
        elif name not in needed:
            needed.add(name)
            pending.extend(graph[name].inputs)
    return needed, reached


class _Sweep:
    """A layer-major run: the layers of a ``_SweepPlan`` in turn, each over all steps; spike trains kept as bools."""

    def __init__(self, run: _Run, timesteps: int):
        self.run, self.timesteps = run, timesteps
        self.plan = _SweepPlan(run.graph, run.static)
        self.chunks = _chunks(timesteps, run.steps_per_chunk())
        self.kept: dict[str, torch.Tensor] = {}
        if self.plan.initial:  # rate coding: the input's spikes for the whole run
            probability = run.batch.clamp(0, 1).expand(timesteps, *run.batch.shape)
            self.kept[run.graph.input.name] = torch.bernoulli(probability, generator=run.generator).to(
                _train_dtype(run.graph))

    def run_layers(self, correction: Correction) -> None:
        for layer, freed in zip(self.plan.order, self.plan.freed_after):
            if isinstance(layer, IF):
                self._fire(layer, correction)
            else:
                self._pool(layer)
            self.run.forget(layer.name)
            for name in freed:
                del self.kept[name]

    def _fire(self, layer: IF, correction: Correction) -> None:
        """Run ``layer`` once to measure its counts, then again with ``correction``'s extra current, kept."""
        run, constant = self.run, layer.inputs[0] in self.run.static
        measuring, keeping = self._passes(layer)
        for current, steps in measuring:
            run.fire(layer, current, constant, steps)
        counts = run.spike_totals[layer.name].cpu().numpy()
        run.forget(layer.name)
        extra = correction(layer.name, counts)
        shift = 0.0 if extra is None else torch.as_tensor(np.asarray(extra), dtype=run.batch.dtype)
        self._keep(layer, keeping, lambda current, steps: run.fire(layer, current + shift, constant, steps))

    def _pool(self, layer: Pool) -> None:
        """Run a spiking max pool over the whole run, kept."""
        self._keep(layer, self._currents(layer), lambda spikes, steps: self.run.max_pool(layer, spikes))

    def _passes(self, layer: Layer) -> tuple[Iterable, Iterable]:
        """``layer``'s input currents for its two runs: computed once when the run is one chunk, else twice."""
        if len(self.chunks) == 1:
            once = list(self._currents(layer))
            return once, once
        return self._currents(layer), self._currents(layer)

    def _keep(self, layer: Layer, currents: Iterable, step: Callable) -> None:
        """Run ``step(current, steps)`` over the chunks of ``currents`` and keep its spikes as ``layer``'s train."""
        train = torch.empty((self.timesteps, len(self.run.batch), *layer.shape), dtype=_train_dtype(self.run.graph))
        start = 0
        for current, steps in currents:
            train[start:start + steps] = step(current, steps)
            start += steps
        self.kept[layer.name] = train

    def _currents(self, layer: Layer) -> Iterator[tuple[torch.Tensor, int]]:
        """``layer``'s input, chunk by chunk: its segment computed from the kept trains. Yields (value, steps)."""
        segment = self.plan.segments[layer.name]
        last_use = {src: j for j, linear in enumerate(segment) for src in linear.inputs}
        start = 0
        for steps in self.chunks:
            values: dict[str, torch.Tensor] = {}
            for j, linear in enumerate(segment):
                values[linear.name] = self.run.linear(
                    linear, [self._value(src, start, steps, values) for src in linear.inputs], steps)
                for src in linear.inputs:  # free what no later layer of the segment reads
                    if last_use[src] == j and src != layer.inputs[0]:
                        values.pop(src, None)
            yield self._value(layer.inputs[0], start, steps, values), steps
            start += steps

    def _value(self, name: str, start: int, steps: int, computed: dict[str, torch.Tensor]) -> torch.Tensor:
        """Layer ``name`` over steps ``start .. start + steps``: a kept train, a constant, or computed in this chunk."""
        if name in self.kept:
            return self.kept[name][start:start + steps].to(self.run.batch.dtype)
        if name in self.run.static:
            return self.run.constant[name]
        return computed[name]


def _arithmetic(graph: Graph, timesteps: int, batch: torch.Tensor) -> tuple[torch.dtype, set[str]]:
    """The dtype exact for this batch, and the layers whose membranes might leave their state bits.

    The overflow analysis bounds every partial sum and membrane for inputs in a range;
    the range taken holds this batch's values and rate-coded spikes (0 and 1) alike. The
    compiler proved its dtype for the calibration range; inputs far outside it may need
    float64. Layers that provably cannot saturate are not checked every step.

    The range is widened to [0, 1] and then out to powers of two, and the answer kept per
    graph, T and range (``Graph.derived``): repeated runs on data like the last pay once.
    """
    dtype = getattr(torch, graph.fact("dtype", "float32"))
    if not any(getattr(layer, "state_bits", None) is not None for layer in graph):
        return dtype, set()
    smallest, largest = (float(v) for v in torch.aminmax(batch))
    if not (math.isfinite(smallest) and math.isfinite(largest)):
        bad = int((~torch.isfinite(batch)).sum())
        raise BadDataError(f"inputs hold {bad:,} values that are NaN or infinite; a chip takes finite currents: "
                           "clean or clip the data as the ANN expects it")
    low, high = _power_of_two(min(smallest, 0.0)), _power_of_two(max(largest, 1.0))
    return graph.derived(("arithmetic", timesteps, low, high),
                         lambda: _exact_arithmetic(graph, timesteps, low, high, dtype))


def _power_of_two(value: float) -> float:
    """``value`` rounded away from zero to a signed power of two (0 stays 0)."""
    if value == 0:
        return value
    return math.copysign(2.0 ** math.ceil(math.log2(abs(value))), value)


def _exact_arithmetic(graph: Graph, timesteps: int, low: float, high: float,
                      dtype: torch.dtype) -> tuple[torch.dtype, set[str]]:
    bounds = overflow.analyze(graph, timesteps, (low, high))
    try:
        exact = getattr(torch, overflow.exact_dtype(bounds))
    except BadGraphError as exc:
        raise BadDataError(f"inputs in [{low:g}, {high:g}] over {timesteps} steps: {exc}; "
                           "scale the inputs as the ANN expects them") from None
    checked = {b.name for b in bounds if b.state_range is not None
               and not (b.state_range[0] <= b.membrane[0] and b.membrane[1] <= b.state_range[1])}
    return (exact if exact == torch.float64 else dtype), checked


def _train_dtype(graph: Graph) -> torch.dtype:
    """What a kept spike train is stored as: bools for binary spikes, the smallest integer holding a graded payload."""
    largest = max((neurons.of(layer).spikes_per_step for layer in graph if isinstance(layer, IF)), default=1)
    return torch.bool if largest <= 1 else torch.uint8 if largest <= 255 else torch.int32


def _over_time(x: torch.Tensor, constant: bool, steps: int) -> torch.Tensor:
    """A value per step, (steps, N, ...): a constant one repeated (as a view)."""
    return x.expand(steps, *x.shape) if constant else x


def _initial_membrane(layer: IF, like: torch.Tensor) -> torch.Tensor:
    """The model's membrane at step 0 (``v_init * threshold``, an integer at a chip's precision)."""
    return torch.tensor(neurons.of(layer).initial(layer)).to(like.device, like.dtype)


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


def _readers(graph: Graph) -> dict[str, int]:
    """How many layers read each layer's value."""
    readers = {layer.name: 0 for layer in graph}
    for layer in graph:
        for src in layer.inputs:
            readers[src] += 1
    return readers
