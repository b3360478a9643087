"""Quantize: weights, biases and thresholds to the target's integer formats.

After conversion every IF population has threshold 1 and float weights. Scaling a
population's threshold, incoming weights and biases by one factor ``theta`` leaves its
spikes unchanged, so the pass picks, per population, the integer threshold ``theta``
and the integer weights ``w_q = m * 2^e ~ theta * w`` that lose least:

- mantissas ``m = clip(round(theta * w / 2^e), -M, M)``, ``M = 2^(weight_bits-1) - 1``,
  with ``e`` the smallest exponent in the target's range for which the largest weight of
  the synapse group (an output channel, or a whole layer) fits; targets without shared
  exponents have ``e = 0``, and there ``theta`` also sets how many large weights clip;
- biases ``b_q = round(theta * b)`` in the target's bias format (mantissa and exponent);
- ``theta`` among the representable thresholds (powers of two, without shared exponents
  also ``M / (r * max|w|)`` for clip ratios ``r`` in 0.5..1, and for weights on an integer
  grid, the ``theta`` that keeps the grid's integers; see below) minimizing the squared
  weight and bias error (plus ``1 / (12 theta^2)`` per neuron for rounding a host
  current), and among those within 1% of the least error (or 0.1% RMS of the weights
  and currents more) one that keeps an integer grid if any, else the smallest: the
  quantizer's integers, or the most headroom below the state range, and float32
  exactness where the precision allows it; subject to the overflow analysis: the threshold plus the
  largest one-step input must fit the membrane, partial sums must stay within the state
  range, and the output integrator must hold ``timesteps`` steps of a normalized logit
  (normalization scales the logits to about 1 at most; the worst case, ``T`` times the
  largest possible step, would leave targets with small state no precision at all, so
  it is reported by the overflow analysis and saturates as the chip would). If no
  candidate meets every bound, the least-error one is kept and the possible saturation
  is reported.

Integer grids (QDQ models). A QDQ model's weights arrive as ``q * s`` (the importer folds
each DequantizeLinear of constant integers; per-layer normalization and BatchNorm folding
scale them by positive factors, which keeps the grid): each output channel ``o`` holds
integers ``q[o]`` times one step ``c_o`` (one ``c`` for a per-tensor scale, one per channel
for a per-channel one). ``_row_grids`` finds them from the float weights: ``c_o`` is the
channel's smallest magnitude divided by the least ``k`` that makes the quotients integers
to 1e-3. Channel ``o``'s chip weights are ``round(theta c_o q[o] / 2^e_o) * 2^e_o``, so they
are ``q[o]`` times one factor exactly where ``theta c_o`` is (to within
``1 / (2 max|q[o]|)``) a power of two that the channel's exponent reaches (targets with an
exponent per channel), or one the layer shares (an exponent per layer, or none: there
``q[o]`` times it must also fit the mantissa). The threshold is one per population, so
that holds for every channel at once only where the channels' steps are powers of two
apart: always for a per-tensor scale, and for per-channel scales that are powers of two
(fixed-point quantizers). Those thresholds, ``theta`` near ``2^j / c`` of the channel with
the largest weight, are candidates, each verified on the mantissas themselves.

Where the steps are not powers of two apart (onnxruntime's per-channel scales,
``max|W_o| / 127``), no single threshold keeps them, and the pass rounds them as float
weights: channel ``o`` becomes ``round(q[o] r_o)``, ``r_o = theta c_o / 2^e_o`` in (1/2, 1],
up to one bit of the channel's integers lost where the quantizer used the whole mantissa.
Keeping them would need a threshold per channel, which no target here has. For graphs
with weights on a grid (or with the ``fake_quant`` fact of a QDQ model) the graph fact
``integer_weights`` records, per conv or dense layer: ``grid`` (``per tensor``, ``per
channel`` or None), ``kept``, ``relative_rms`` (the chip's weights against the
quantizer's, ``||w_q / theta - w|| / ||w||``; where kept, the gain error of the threshold's
rounding alone) and ``reason``; host layers keep their float weights.

Layers the host computes from a constant-current input stay float; their result is
scaled by the reading population's ``theta`` and written as an integer bias (``Round``).
The output's scale is divided by its ``theta``, so outputs stay comparable. Per layer,
the relative RMS error of weights and biases and the worst-case bounds are recorded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from snnconv import overflow
from snnconv.errors import BadGraphError, UnsupportedOpError
from snnconv.geometry import host_computed, is_integrator, is_routing, is_weighted
from snnconv.ir import Affine, Conv, Dense, Graph, Layer, Output, Round
from snnconv.ir.rewrite import PassResult
from snnconv.targets.target import Precision, Target

__all__ = ["Quantize", "quantize_bias"]

CLIP_RATIOS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)
NEAR_OPTIMAL = 0.01  # among thresholds within 1% of the least error, the smallest: most headroom
NEGLIGIBLE = 1e-6  # ... or within this squared error per unit of squared weight (0.1% RMS)
GRID_TOLERANCE = 1e-3  # how far from an integer w / c may be for w = q * c in float32 (127 * 2^-24 << 1e-3)
FACT = "integer_weights"


class Quantize:
    """Options: ``target``; ``timesteps`` the output integrator must hold; ``input_range`` of the data."""

    name = "quantize"

    def __init__(self, target: Target, timesteps: int = 32, input_range: tuple[float, float] | None = None):
        if timesteps < 1:
            raise ValueError(f"timesteps must be positive, got {timesteps}")
        self.target = target
        self.timesteps = timesteps
        self.input_range = input_range

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("lowered"):
            raise BadGraphError(f"graph {graph.name!r} is not lowered to synapses; run lower_to_synapses first")
        if graph.fact("quantized"):
            raise BadGraphError(f"graph {graph.name!r} is already quantized (for {graph.fact('quantized')})")
        precision = self.target.precision
        input_range = self.input_range or graph.fact("input_range", (0.0, 1.0))
        if precision.is_float:
            notes = {"target": self.target.name, "precision": "float"}
            return PassResult(graph.rebuilt(graph.layers, quantized=self.target.name), False, notes)
        host = host_computed(graph)
        float_bounds = overflow.current_bounds(graph, input_range)
        replaced: dict[str, Layer] = {}
        inserted: list[Layer] = []
        encodings: dict[tuple[str, str], str] = {}  # (host layer, reader) -> the bias encoding the reader reads
        layer_notes: dict[str, dict] = {}
        for population, members in _populations(graph, host).items():
            plan = _choose_threshold(graph[population], members, float_bounds, precision, self.timesteps)
            layer_notes[population] = plan.notes
            replaced[population] = _quantized_population(graph[population], plan.theta, precision)
            for layer in members.weighted:
                replaced[layer.name] = _quantized_weights(layer, plan.theta, precision)
            for src, reader in members.host_edges:
                encoding = _bias_encoding(graph[src], reader, plan.theta, precision)
                inserted += encoding
                encodings[src, reader] = encoding[-1].name
        layers = [replaced.get(layer.name, layer) for layer in graph] + inserted
        layers = _rewire_host_edges(layers, encodings)
        facts = {"quantized": self.target.name}
        kept = _integer_weights(graph, host, layer_notes, precision)
        if kept is not None:
            facts[FACT] = kept
        quantized = graph.rebuilt(layers, **facts)
        bounds = overflow.analyze(quantized, self.timesteps, input_range)
        dtype = overflow.exact_dtype(bounds)
        for b in bounds:
            layer_notes[b.name]["bounds"] = b.to_dict()
        notes = {"target": self.target.name, "dtype": dtype, "timesteps": self.timesteps, "layers": layer_notes,
                 "may_saturate": [b.name for b in bounds if b.may_saturate]}
        return PassResult(quantized.rebuilt(quantized.layers, dtype=dtype), True, notes)


@dataclass
class _Members:
    """What feeds one population: its weighted layers and the host-computed edges into it."""

    weighted: list[Layer]
    host_edges: list[tuple[str, str]]  # (host layer, its non-host reader)


@dataclass
class _Plan:
    theta: int
    notes: dict


def _populations(graph: Graph, host: set[str]) -> dict[str, _Members]:
    """Each population with the weighted layers and host edges whose output reaches it through routing only."""
    members = {layer.name: _Members([], []) for layer in graph if is_integrator(layer)}
    for layer in graph:
        if layer.name in host:
            for reader in graph.consumers(layer.name):
                if reader.name not in host:
                    members[_population_of(graph, reader.name)].host_edges.append((layer.name, reader.name))
        elif is_weighted(layer):
            members[_population_of(graph, layer.name)].weighted.append(layer)
    return members


def _population_of(graph: Graph, name: str) -> str:
    """The one population a layer's output reaches through routing layers (a population: itself)."""
    if is_integrator(graph[name]):
        return name
    reached, frontier = set(), [name]
    while frontier:
        current = graph[frontier.pop()]
        if is_integrator(current) and current.name != name:
            reached.add(current.name)
        elif current.name == name or is_routing(current):
            frontier += [reader.name for reader in graph.consumers(current.name)]
    if len(reached) != 1:
        raise UnsupportedOpError(f"layer {name!r} feeds {len(reached)} neuron populations ({sorted(reached)}); "
                                 f"a synapse map must end in exactly one: duplicate the layer per reader")
    return reached.pop()


def _choose_threshold(population: Layer, members: _Members, bounds: dict[str, overflow.Interval],
                      precision: Precision, timesteps: int) -> _Plan:
    """The threshold with the least weight and bias error among those every bound allows."""
    interval = bounds[population.name]
    hi = float(interval.hi.max())
    magnitude = float(interval.magnitude.max())
    low = float(interval.lo.min())
    host_peak = max((max(-float(bounds[src].lo.min()), float(bounds[src].hi.max()))
                     for src, _ in members.host_edges), default=0.0)
    state_max = 2.0 ** (precision.state_bits - 1) - 1
    bias_max = (2 ** (precision.bias_bits - 1) - 1) * 2.0 ** precision.bias_exponent[1]
    neurons_fed_by_host = math.prod(population.shape) if members.host_edges else 0
    trials = []
    grid = _grid_thresholds(members.weighted, precision)
    for theta in _candidate_thresholds(members.weighted, precision) + sorted(grid):
        peak = max(timesteps, hi, -low) if isinstance(population, Output) else 1 + hi
        fits = theta * peak <= state_max and theta * magnitude < state_max and theta * host_peak <= bias_max
        error, details = _error(members.weighted, theta, precision)
        error += neurons_fed_by_host / (12.0 * theta ** 2)  # rounding a current to an integer: variance 1/12
        trials.append((not fits, error, theta, details))
    if not trials:
        raise BadGraphError(f"layer {population.name!r}: no threshold of the target's format is representable")
    unfit, least, _, _ = min(trials, key=lambda trial: trial[:2])
    scale = sum(float((_weights(w) ** 2).sum() + (_biases(w) ** 2).sum()) for w in members.weighted)
    tolerance = max(least * (1 + NEAR_OPTIMAL), least + NEGLIGIBLE * (scale + neurons_fed_by_host))
    near = [trial for trial in trials if trial[0] == unfit and trial[1] <= tolerance]
    unfit, error, theta, details = min(near, key=lambda trial: (trial[2] not in grid, trial[2]))  # keeping first
    notes = {"threshold": theta, "weight_error": details, "fits_state": not unfit, "integer_grid": theta in grid}
    return _Plan(theta, notes)


def _candidate_thresholds(weighted: list[Layer], precision: Precision) -> list[int]:
    """Powers of two in the threshold format; without shared exponents also ``M / (r * max|w|)``."""
    step = 2 ** precision.threshold_shift
    largest = (2 ** precision.threshold_bits - 1) * step
    powers = [2 ** k for k in range(precision.threshold_shift, precision.threshold_shift + precision.threshold_bits)]
    peak = max((float(np.abs(_weights(layer)).max()) for layer in weighted), default=0.0)
    if precision.weight_exponent[1] > precision.weight_exponent[0] or peak == 0:
        return powers
    ideal = [precision.weight_max / (ratio * peak) for ratio in CLIP_RATIOS]
    return sorted({int(min(max(round(t / step), 1) * step, largest)) for t in ideal} | set(powers))


def _grid_thresholds(weighted: list[Layer], precision: Precision) -> set[int]:
    """Per layer whose weights are ``q[o] * c_o`` (integers ``q``), the smallest representable ``theta`` near
    ``2^j / c`` (``c`` of the channel with the largest weight) whose chip weights are every channel's integers
    times one factor: the quantizer's integers kept."""
    step = 2 ** precision.threshold_shift
    largest = (2 ** precision.threshold_bits - 1) * step
    widest = precision.weight_max * 2 ** precision.weight_exponent[1]
    found = set()
    for layer in weighted:
        grid = _row_grids(_weights(layer), precision.weight_max, isinstance(layer, Affine))
        if grid is None:
            continue
        steps, q = grid
        reference = int(np.argmax(np.abs(q).max(axis=1) * steps))
        c, peak = float(steps[reference]), float(np.abs(q[reference]).max())
        j = 0
        while peak * 2 ** j <= widest:
            theta = max(round(2 ** j / c / step), 1) * step
            if theta > largest:
                break
            if _keeps(layer, theta, precision, q):
                found.add(int(theta))
                break
            j += 1
    return found


def _row_grids(weights: np.ndarray, weight_max: int, one_row: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """``(c, q)`` where each output channel's weights are ``q[o] * c[o]`` for integers ``|q| <= weight_max`` (to
    float32 precision; ``one_row``: the whole tensor is one channel); else None. ``c[o]`` is the channel's smallest
    magnitude divided by the least ``k`` that makes every quotient an integer; ``k`` can be at most
    ``weight_max / spread`` (spread: the channel's largest magnitude over its smallest), so float weights, whose
    spread is wide, end after a few ``k``."""
    rows = np.asarray(weights).reshape(1 if one_row or np.ndim(weights) == 0 else np.shape(weights)[0], -1)
    magnitudes = np.abs(rows)
    low = np.where(magnitudes > 0, magnitudes, np.inf).min(axis=1)
    live = np.flatnonzero(np.isfinite(low))
    if not live.size:
        return None
    limit = np.floor((weight_max + 0.5) * low[live] / magnitudes.max(axis=1)[live])  # the largest k per channel
    steps = np.ones(len(rows))
    divisor = 1
    while live.size:
        if limit.min() < divisor:  # a channel no k makes a grid of: float weights
            return None
        c = low[live].astype(np.float64) / divisor
        quotient = magnitudes[live].astype(np.float64) / c[:, None]
        fits = np.abs(quotient - np.round(quotient)).max(axis=1) <= GRID_TOLERANCE
        steps[live[fits]] = c[fits]
        live, limit = live[~fits], limit[~fits]
        divisor += 1
    return steps, np.round(rows.astype(np.float64) / steps[:, None])


def _integer_grid(weights: np.ndarray, weight_max: int) -> tuple[float, int] | None:
    """``(c, max|q|)`` where the whole tensor is ``q * c`` for integers ``0 < |q| <= weight_max``; else None."""
    grid = _row_grids(weights, weight_max, one_row=True)
    return None if grid is None else (float(grid[0][0]), int(np.abs(grid[1]).max()))


def _keeps(layer: Layer, theta: int, precision: Precision, q: np.ndarray) -> bool:
    """Whether ``layer``'s chip weights at ``theta`` are each channel's integers ``q[o]`` times one factor."""
    chip = _weight_mantissas(layer, theta, precision).reshape(q.shape)
    rows = np.arange(len(q))
    largest = np.argmax(np.abs(q), axis=1)
    pivot = q[rows, largest]
    factor = np.where(pivot != 0, chip[rows, largest] / np.where(pivot != 0, pivot, 1), 1.0)  # zero channels: 1
    return bool((factor > 0).all() and np.array_equal(chip, q * factor[:, None]))


def _integer_weights(graph: Graph, host: set[str], layer_notes: dict, precision: Precision) -> dict | None:
    """The ``integer_weights`` fact: per conv or dense layer, whether its grid's integers were kept (None where no
    layer is on a grid and the graph is no QDQ model). Host layers keep their float weights: exact."""
    records, any_grid = {}, False
    for layer in graph:
        if layer.name in host and isinstance(layer, (Conv, Dense)):
            grid = _row_grids(layer.weight, precision.weight_max)
            records[layer.name] = {"grid": _kind(grid), "kept": True, "relative_rms": 0.0,
                                   "reason": "on the host: its float weights, as imported (its current is rounded)"}
    for population, notes in layer_notes.items():
        for name, errors in notes["weight_error"].items():
            layer = graph[name]
            if not isinstance(layer, (Conv, Dense)):
                continue
            grid = _row_grids(layer.weight, precision.weight_max)
            any_grid = any_grid or grid is not None
            records[name] = _record(layer, grid, notes["threshold"], errors["weights"], precision)
    return records if any_grid or graph.fact("fake_quant") else None


def _kind(grid) -> str | None:
    if grid is None:
        return None
    steps, q = grid
    live = steps[np.abs(q).max(axis=1) > 0]
    return "per tensor" if np.allclose(live, live.max(), rtol=1e-6) else "per channel"


def _record(layer: Layer, grid, theta: int, error: float, precision: Precision) -> dict:
    if grid is None:
        return {"grid": None, "kept": False, "relative_rms": error,
                "reason": "not on an integer grid when quantized (float weights, or rescaled per input channel)"}
    kind = _kind(grid)
    if _keeps(layer, theta, precision, grid[1]):
        return {"grid": kind, "kept": True, "relative_rms": error, "reason": "kept: each channel's integers times one "
                "power of two" if precision.weight_exponent[1] > 0 else "kept: the integers times one factor"}
    candidates = _grid_thresholds([layer], precision)
    reason = (f"re-rounded: the threshold {min(candidates)} that keeps them was not chosen (another layer of the "
              f"population, less error, or the state range chose {theta})" if candidates else
              "re-rounded: the channels' steps are not powers of two apart, and one threshold serves the population"
              if kind == "per channel" else "re-rounded: no threshold of the target's format keeps them")
    return {"grid": kind, "kept": False, "relative_rms": error, "reason": reason}


def _weights(layer: Layer) -> np.ndarray:
    return layer.scale if isinstance(layer, Affine) else layer.weight


def _biases(layer: Layer) -> np.ndarray:
    return layer.shift if isinstance(layer, Affine) else layer.bias


def _error(weighted: list[Layer], theta: int, precision: Precision) -> tuple[float, dict]:
    """Total squared error (in threshold units), and per layer the relative RMS errors."""
    total, details = 0.0, {}
    for layer in weighted:
        w, b = _weights(layer).astype(np.float64), _biases(layer).astype(np.float64)
        w_q = _weight_mantissas(layer, theta, precision) / theta
        b_q = quantize_bias(b * theta, precision) / theta
        sq_w, sq_b = float(((w - w_q) ** 2).sum()), float(((b - b_q) ** 2).sum())
        total += sq_w + sq_b
        details[layer.name] = {"weights": _relative(sq_w, w), "biases": _relative(sq_b, b)}
    return total, details


def _relative(squared_error: float, reference: np.ndarray) -> float:
    norm = float((reference ** 2).sum())
    return math.sqrt(squared_error / norm) if norm else 0.0


def _weight_mantissas(layer: Layer, theta: int, precision: Precision) -> np.ndarray:
    """``m * 2^e`` for ``theta * w``, one exponent per synapse group (output channel or layer)."""
    scaled = _weights(layer).astype(np.float64) * theta
    groups = scaled.reshape(scaled.shape[0], -1) if precision.exponent_group == "channel" and scaled.ndim \
        and scaled.size > 1 else scaled.reshape(1, -1)
    peak = np.abs(groups).max(axis=1, keepdims=True)
    low, high = precision.weight_exponent
    needed = np.ceil(np.log2(np.maximum(peak, 1e-300) / (precision.weight_max + 0.5)))
    step = 2.0 ** np.clip(needed, low, high)
    mantissa = np.clip(np.round(groups / step), -precision.weight_max, precision.weight_max)
    return (mantissa * step).reshape(scaled.shape)


def quantize_bias(value: np.ndarray, precision: Precision) -> np.ndarray:
    """Nearest ``m * 2^e`` in the bias format, one exponent per neuron (saturating)."""
    largest = 2 ** (precision.bias_bits - 1) - 1
    low, high = precision.bias_exponent
    needed = np.ceil(np.log2(np.maximum(np.abs(value), 1e-300) / (largest + 0.5)))
    step = 2.0 ** np.clip(needed, low, high)
    return np.clip(np.round(value / step), -largest, largest) * step


def _quantized_weights(layer: Layer, theta: int, precision: Precision) -> Layer:
    weights = _weight_mantissas(layer, theta, precision)
    biases = quantize_bias(_biases(layer).astype(np.float64) * theta, precision)
    if isinstance(layer, Affine):
        return dataclasses.replace(layer, scale=weights, shift=biases)
    return dataclasses.replace(layer, weight=weights, bias=biases)


def _quantized_population(layer: Layer, theta: int, precision: Precision) -> Layer:
    if isinstance(layer, Output):
        return dataclasses.replace(layer, scale=layer.scale / theta, state_bits=precision.state_bits)
    return dataclasses.replace(layer, threshold=float(theta), state_bits=precision.state_bits)


def _bias_encoding(source: Layer, reader: str, theta: int, precision: Precision) -> list[Layer]:
    """Host side: scale a constant current by ``theta`` and round it into the bias format."""
    base = f"{reader}/bias_from_{source.name}"
    ones = (1,) * len(source.shape)
    scaled = Affine(name=f"{base}/scale", inputs=(source.name,), shape=source.shape,
                    scale=np.full(ones, float(theta)), shift=np.zeros(ones))
    rounded = Round(name=base, inputs=(scaled.name,), shape=source.shape, bits=precision.bias_bits,
                    exponent=precision.bias_exponent)
    return [scaled, rounded]


def _rewire_host_edges(layers: list[Layer], encodings: dict[tuple[str, str], str]) -> list[Layer]:
    """Readers of a host layer read its bias encoding instead."""
    result = []
    for layer in layers:
        inputs = tuple(encodings.get((src, layer.name), src) for src in layer.inputs)
        result.append(dataclasses.replace(layer, inputs=inputs) if inputs != layer.inputs else layer)
    return result


