"""Recurrent networks: a ReLU Elman RNN streamed on a chip, one sequence item at a time.

Supported graph: ``Input (L, F) -> Recurrent (H) -> Dense (C) -> Output`` (what
``torch.nn.RNN(nonlinearity="relu", batch_first=True)`` and a linear head on ``h[-1]``
export), or several recurrent layers stacked (``num_layers > 1``: each but the top gives
every ``h_t`` to the one above; see **Stacked layers**). The general pipeline
(``snnconv.pipeline``) refuses recurrent graphs and points here.

**Streaming.** Item ``t`` of a sequence is presented for ``K = steps_per_item`` steps
(steps ``(t-1)K .. tK-1``). The host writes its input current ``theta (W' x_t + b')`` as
each hidden neuron's bias for those steps (as a constant-current input layer of the
feed-forward pipeline). The hidden population is integrate-and-fire with subtractive
reset. Its membranes start at ``v_init = theta/2`` and are carried from item to item,
**rectified at each item's first step**: ``v <- clip(v, 0, theta)`` (a write at the item
boundary, like the host's bias write). The remainder in ``[0, theta]`` is the part of the
item's integral that did not make a spike; carried, the spike counts over the items are
a sigma-delta code of ``h`` and the rounding error of one window (up to half a spike) is
paid back in the next instead of being fed back through ``U`` and compounded over the
items. Negative charge is what the ANN's ReLU discards, and charge above ``theta`` is the
excess of a rate over 1 (the ANN's ``h`` above ``lambda_h``), dropped as normalization
clips it. Measured on the bundled RNN's 1,000 test sequences at K = 128
(``benchmarks/results/recurrent.md``): ANN 88.9%; float SNN restarting at ``theta/2`` per
item 84.5% (loihi 84.1% against 87.4% on every third sequence), the same with the
recurrent current spread evenly over each window 87.1% (= the ANN with ``h`` rounded to
``1/K`` per item: spike timing within a window cost 2.6 points, rounding 1.6, clipping at rate 1 0.2), the
rectified carry 88.4% float and 88.3% on loihi, loihi2 and spinnaker2. Its own spikes
come back through the recurrent synapses ``U`` **with a delay of K steps**: at step ``k``
of item ``t`` the recurrent current is ``U s[(t-1)K + k - K]``, the spike of the same step
of the previous item (zero for the first item, ``h_0 = 0``). Over item ``t``'s window the
recurrent input thus sums to ``U count_{t-1}``, so the window's rate ``r_t = count_t / K``
follows ``r_t ~ clip(W' x_t + b' + U r_{t-1}, 0, 1)``: the ANN's ``h_t / lambda_h`` with
``h_{t-1}`` what the recurrent synapses carry (Diehl et al. 2016 convert a ReLU Elman RNN
for TrueNorth this way: one ANN step per window of ticks). A delay of one step instead
would let a window's own spikes feed back within it, and the rate would settle at the
fixed point of ``h = relu(W x_t + U h + b)``, not the ANN's ``h_t``. The chip needs a
synaptic delay of K (Loihi's synapses have a delay field; on the chip model it is a ring
buffer of K spike vectors).

**Stacked layers** (``h^l_t = relu(W_l h^{l-1}_t + U_l h^l_{t-1} + b_l)``, ``l >= 2``).
Layer ``l``'s window for item ``t`` is the same K steps as layer ``l-1``'s: at step ``k``
it reads the spikes layer ``l-1`` fired at that very step through ``W_l`` (no delay, as
the feed-forward pipeline's layers and this head read theirs), its own spikes of step
``k - K`` through ``U_l``, and a constant host-written bias ``b_l'``. Over the window its
input thus sums to ``W_l' count^{l-1}_t + U_l count^l_{t-1} + K b_l'``, so with the
rectified carry its rate follows ``r^l_t ~ clip(W_l' r^{l-1}_t + U_l r^l_{t-1} + b_l', 0, 1)``:
the ANN's ``h^l_t / lambda_l`` once ``r^{l-1}_t`` is ``h^{l-1}_t / lambda_{l-1}``, by
induction on ``l`` (and on ``t`` through ``U_l``). Normalization per layer:
``W_l' = W_l lambda_{l-1} / lambda_l``, ``b_l' = b_l / lambda_l``, ``U_l`` unchanged, each
``lambda_l`` the ``percentile`` of layer ``l``'s ``h_t`` on the calibration sequences; the
head reads the top layer with ``V lambda_top``. Reading layer ``l-1`` a window later (delay
K) would also keep the rates, but would put ``L + depth - 1`` windows between a
sequence's first item and its output and need a second delay line per layer; without it
the output stays at the last item's window, and since no layer reads one above it in the
same step, each window can be computed layer after layer. The cost is that within a
window layer ``l`` sees layer ``l-1``'s spikes in the order they come (few early in the
window): the charge that arrives late is carried into the next window by the rectified
carry, so it shifts a little of ``h^l_t`` to ``t+1``. Each layer has its own threshold
and weight exponent (one for its feed-forward and recurrent synapses, which share its
cores), chosen as the first layer's from its largest weight. Measured on the bundled
two-layer RNN (``benchmarks/results/recurrent_stacked.md``, 1,000 test sequences, K = 128):
ANN 92.5%, float SNN 91.6%, spinnaker2 91.7%, loihi and loihi2 90.9% (their 8-bit
weights; either layer left unquantized gives 91.6-91.7% on loihi).

**Output.** A non-spiking integrator reads the hidden spikes through ``V`` (and its bias
``c`` every step). The host reads its membrane at the end of each item's window and resets
it: ``logits_t = integral_t / (K theta_out) * output_scale``, per item; the final output is
the last item's (the ANN's ``V h_L + c``).

**Normalization** from calibration sequences: ``lambda_h`` is the ``percentile`` of every
hidden value ``h_t`` (all items, all neurons). With ``h' = h / lambda_h``:
``h'_t = relu((lambda_x / lambda_h) W x_t + (lambda_h / lambda_h) U h'_{t-1} + b / lambda_h)``,
``lambda_x = 1`` (the input is an analog current): input weights and bias divided by
``lambda_h``, recurrent weights unchanged; the head reads ``h'`` with ``V lambda_h``.

**Quantization** (``Target.precision``): the recurrent weights are ``m * 2^e`` with
``|m| <= 2^(weight_bits-1) - 1`` and one exponent ``e``; the threshold
``theta = wmax 2^e / max|U|`` rounded down to a multiple of ``2^threshold_shift`` (the
largest ``e`` whose ``theta`` fits the threshold bits and ``2^(state_bits-1) / HEADROOM``).
Host currents are rounded to the bias format (``m * 2^e``, the smallest fitting ``e``,
saturating), as the ``Round`` layer does. The head gets its own scale ``theta_out``, the
largest whose window integral provably stays within the state bits. Membranes saturate at
the state bits in both simulators alike (``bounds`` says where they might).

**Exactness.** ``run`` computes in float64 torch; every sum it forms is an integer below
``bounds(...).largest_sum < 2^53`` (checked at compile time), so it is exact, and
``tests/recurrent_reference.py`` (int64, literal per-core tables and a delay ring buffer)
equals it bit for bit.

Energy and latency per item and per sequence: ``snnconv.recurrent_cost``; ``snnconv bench``
shows a sequence model through ``snnconv.benchmark_sequence``, ``eval`` through
``snnconv.recurrent_eval``. ``snnconv.compile`` / ``snnconv.load`` give a
``snnconv.recurrent_network.RecurrentNetwork`` (run, report, the ``.snn`` artifact's
``recurrent`` section, NIR export). Not done: the general chip model (``snnconv.chip``)
does not run it; a head other than one Dense.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from snnconv.errors import BadDataError, DoesNotFitError, UnsupportedOpError
from snnconv.ir import Dense, Graph, Input, Output, Recurrent
from snnconv.recurrent_program import CoreUse, RecurrentProgram, SequenceResult, StackedLayer
from snnconv.targets import get as get_target
from snnconv.targets.target import Target

__all__ = ["DEFAULT_STEPS_PER_ITEM", "Bounds", "CoreUse", "RecurrentProgram", "SequenceResult", "StackedLayer",
           "bounds", "compile", "membrane_range", "parts", "run", "stack"]

DEFAULT_STEPS_PER_ITEM = 128  # bundled RNN, 1,000 test sequences: 88.3% vs the ANN's 88.9% on each target; 64: 86.7%
# (loihi), 256: 89.2% (benchmarks/results/recurrent.md)
DEFAULT_PERCENTILE = 99.0  # hidden values grow along the sequence: 99.99 left early items under 1 spike per window
HEADROOM = 256  # the threshold stays below 2^(state_bits-1) / HEADROOM: room for negative membranes


@dataclass(frozen=True)
class Bounds:
    """Worst cases over any input: per-step currents, and the largest magnitude any sum of ``run`` reaches."""

    hidden_current: tuple[float, float]  # host bias + recurrent input, one step
    output_window: float  # |integral| of one item's window, unsaturated
    largest_sum: float  # the largest |value| run forms: must stay below 2^53 to be exact in float64
    may_saturate: bool  # whether a hidden membrane might reach its state bits


def stack(graph: Graph) -> tuple[Input, list[Recurrent], Dense, Output]:
    """The graph's input, its recurrent layers bottom to top (each but the top giving every ``h_t``), head, output."""
    layers = list(graph)
    cells = layers[1:-2]
    kinds = [type(layer) for layer in layers]
    if (len(layers) < 4 or kinds[0] is not Input or kinds[-2:] != [Dense, Output]
            or not all(isinstance(cell, Recurrent) for cell in cells)
            or [cell.sequence for cell in cells] != [True] * (len(cells) - 1) + [False]
            or any(layer.inputs != (below.name,) for below, layer in itertools.pairwise(layers[:-1]))):
        found = " -> ".join(layer.kind for layer in layers)
        raise UnsupportedOpError(f"recurrent graph {graph.name!r} is {found}; snnconv streams input -> recurrent "
                                 "(one or more stacked ReLU RNN layers) -> dense -> output (a linear head on the top "
                                 "layer's last hidden state)")
    if layers[-1].activation not in (None, "softmax", "log_softmax"):
        raise UnsupportedOpError(f"output activation {layers[-1].activation!r} of a recurrent graph; only argmax heads")
    return layers[0], cells, layers[-2], layers[-1]


def parts(graph: Graph) -> tuple[Input, Recurrent, Dense, Output]:
    """``stack`` of a graph with one recurrent layer."""
    inp, cells, head, out = stack(graph)
    if len(cells) != 1:
        raise UnsupportedOpError(f"recurrent graph {graph.name!r} has {len(cells)} stacked recurrent layers; this "
                                 "reads one (use stack)")
    return inp, cells[0], head, out


def hidden_states(layer: Recurrent, x: np.ndarray) -> np.ndarray:
    """The ANN's ``h_t`` for every item, (N, L, H), float64."""
    w, u, b = (np.asarray(a, np.float64) for a in (layer.weight, layer.recurrent, layer.bias))
    h, states = np.zeros((len(x), len(b))), []
    for item in np.moveaxis(np.asarray(x, np.float64), 1, 0):
        h = np.maximum(item @ w.T + h @ u.T + b, 0.0)
        states.append(h)
    return np.stack(states, axis=1)


def compile(model, target: str | Target | None = "loihi", calibration=None,
            steps_per_item: int = DEFAULT_STEPS_PER_ITEM, percentile: float = DEFAULT_PERCENTILE,
            chips: int | None = None) -> RecurrentProgram:
    """Normalize ``model`` (a path, ONNX model or IR graph) on ``calibration`` (N, L, F), quantize and map it.

    Each recurrent layer ``l`` gets its own ``lambda_l`` (the ``percentile`` of its ``h_t``
    on the calibration sequences, all items and neurons) and its own threshold."""
    graph = model if isinstance(model, Graph) else _load(model)
    inp, cells, head, _ = stack(graph)
    if calibration is None:
        raise BadDataError("a recurrent network needs calibration sequences (N, L, F) to set its scale")
    x = np.asarray(calibration, np.float32)
    if x.shape[1:] != inp.shape:
        raise BadDataError(f"calibration of shape {x.shape} does not match the model's input (N, {inp.shape[0]}, "
                           f"{inp.shape[1]})")
    if steps_per_item < 1:
        raise BadDataError(f"steps_per_item {steps_per_item} must be at least 1")
    scales, states = [], x
    for cell in cells:
        states = hidden_states(cell, states)
        scales.append(float(np.percentile(states, percentile)) or 1.0)
    layer, scale = cells[0], scales[0]
    w, b = np.asarray(layer.weight, np.float64) / scale, np.asarray(layer.bias, np.float64) / scale
    u = np.asarray(layer.recurrent, np.float64)
    upper = [(np.asarray(cell.weight, np.float64) * below / above, np.asarray(cell.bias, np.float64) / above,
              np.asarray(cell.recurrent, np.float64)) for cell, below, above in zip(cells[1:], scales, scales[1:])]
    v, c = np.asarray(head.weight, np.float64) * scales[-1], np.asarray(head.bias, np.float64)
    spec = None if target is None else get_target(target)
    if spec is None or spec.precision.is_float:
        program = RecurrentProgram(None if spec is None else spec.name, steps_per_item, inp.shape[0], w, b, u, 1.0,
                                   0.5, v, c, 1.0, None, None,
                                   upper=tuple(StackedLayer(fw, fb, fu, 1.0, 0.5) for fw, fb, fu in upper))
    else:
        program = _quantized(spec, steps_per_item, inp.shape[0], w, b, u, v, c, upper)
    notes = {"lambda_h": scale, "percentile": percentile}
    if len(cells) > 1:
        notes["lambda_layers"] = scales
    program = _with(program, notes=notes)
    largest = bounds(program).largest_sum
    if largest >= 2.0**53:
        raise DoesNotFitError(f"recurrent layer {layer.name}: sums up to {largest:.3g} are not exact in float64")
    return program if spec is None else _with(program, cores=tuple(partition(program, spec, chips)))


def _load(model) -> Graph:
    from snnconv.frontend import load_onnx

    return load_onnx(model)


def _with(program: RecurrentProgram, **changes) -> RecurrentProgram:
    import dataclasses

    return dataclasses.replace(program, **changes)


def _scale(p, peak: float) -> tuple[float, int]:
    """The threshold and weight exponent of a population whose largest weight (at threshold 1) is ``peak``."""
    wmax, unit = p.weight_max, 2**p.threshold_shift
    largest_theta = min((2**p.threshold_bits - 1) * unit, 2 ** (p.state_bits - 1) / HEADROOM)
    peak = peak or 1.0
    for e in range(p.weight_exponent[1], p.weight_exponent[0] - 1, -1):
        candidate = math.floor(wmax * 2**e / peak / unit) * unit
        if unit <= candidate <= largest_theta:
            return float(candidate), e
    # weights too small for the largest threshold: take it, weights stay below wmax
    return float(math.floor(largest_theta / unit) * unit), p.weight_exponent[0]


def _weights(p, a: np.ndarray, theta: float, exponent: int) -> np.ndarray:
    return np.clip(np.rint(a * theta / 2**exponent), -p.weight_max, p.weight_max) * 2**exponent


def _quantized(spec: Target, steps: int, items: int, w, b, u, v, c, upper=()) -> RecurrentProgram:
    p = spec.precision
    theta, exponent = _scale(p, float(np.abs(u).max()))
    recurrent = _weights(p, u, theta, exponent)
    bias_format = (p.bias_bits, *p.bias_exponent)
    stacked = []
    for fw, fb, fu in upper:  # one exponent for the layer's synapses (feed-forward and recurrent: one core's)
        top, e = _scale(p, max(float(np.abs(fw).max()), float(np.abs(fu).max())))
        stacked.append(StackedLayer(_weights(p, fw, top, e), round_bias(fb * top, bias_format),
                                    _weights(p, fu, top, e), top, float(round(top / 2))))
    out_weight, out_bias, out_theta = _quantized_head(p, steps, v, c, bias_format)
    compartments = 1 if "subtract" in spec.neuron.reset else spec.neuron.subtract_compartments
    return RecurrentProgram(spec.name, steps, items, w * theta, b * theta, recurrent, theta, float(round(theta / 2)),
                            out_weight, out_bias, 1.0 / out_theta, p.state_bits, bias_format, compartments,
                            upper=tuple(stacked))


def _quantized_head(p, steps: int, v, c, bias_format) -> tuple[np.ndarray, np.ndarray, float]:
    """The head's integer weights and bias at the largest scale whose window integral fits the state bits."""
    wmax, top = p.weight_max, 2 ** (p.state_bits - 1) - 1
    peak = float(np.abs(v).max()) or 1.0
    for e in range(p.weight_exponent[1], p.weight_exponent[0] - 1, -1):
        scale = wmax * 2**e / peak
        weight = np.clip(np.rint(v * scale / 2**e), -wmax, wmax) * 2**e
        bias = round_bias(c * scale, bias_format)
        if steps * float((np.abs(weight).sum(axis=1) + np.abs(bias)).max()) <= top:
            return weight, bias, scale
    return weight, bias, scale


def round_bias(x: np.ndarray, bias_format: tuple[int, int, int] | None) -> np.ndarray:
    """``x`` as the nearest ``m * 2^e`` with ``|m| <= 2^(bits-1) - 1`` and the smallest fitting ``e`` (saturating)."""
    if bias_format is None:
        return np.asarray(x, np.float64)
    bits, low, high = bias_format
    x = np.asarray(x, np.float64)
    largest = 2 ** (bits - 1) - 1
    needed = np.ceil(np.log2(np.maximum(np.abs(x), 1e-30) / (largest + 0.5)))
    step = np.exp2(np.clip(needed, low, high))
    mantissa = np.rint(x / step)
    return np.where(np.abs(mantissa) > largest, np.sign(x) * largest, mantissa) * step


def host_currents(program: RecurrentProgram, x: np.ndarray) -> np.ndarray:
    """What the host writes as each hidden neuron's bias during each item: (N, L, H), float64."""
    x = np.asarray(x, np.float64)
    return round_bias(x @ program.input_weight.T + program.input_bias, program.bias_format)


def _populations(program: RecurrentProgram) -> list[tuple[np.ndarray | None, np.ndarray, np.ndarray, float, float]]:
    """Per recurrent layer, bottom to top: feed-forward chip weights (None: the host's current), constant bias,
    recurrent weights, threshold, v_init."""
    return [(None, program.input_bias, program.recurrent, program.threshold, program.v_init),
            *((layer.weight, layer.bias, layer.recurrent, layer.threshold, layer.v_init) for layer in program.upper)]


def _spike_current_range(weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the least and most that spikes (0 or 1 each) through ``weights`` can add in one step."""
    return (sum(np.minimum(np.asarray(w, np.float64), 0).sum(axis=1) for w in weights),
            sum(np.maximum(np.asarray(w, np.float64), 0).sum(axis=1) for w in weights))


def bounds(program: RecurrentProgram) -> Bounds:
    """Worst-case currents and sums for any input (host currents at the bias format's extremes), over every layer."""
    if program.bias_format is None:
        host = float(np.abs(program.input_weight).sum(axis=1).max() + np.abs(program.input_bias).max())
    else:
        bits, _, high = program.bias_format
        host = float((2 ** (bits - 1) - 1) * 2**high)
    state = 2.0 ** (program.state_bits - 1) if program.state_bits else math.inf
    low_current, high_current, largest, saturate = math.inf, -math.inf, 0.0, False
    for weight, bias, u, theta, v_init in _populations(program):
        drive = (-host, host) if weight is None else (np.asarray(bias, np.float64),) * 2
        spikes = _spike_current_range([u] if weight is None else [weight, u])
        low = float((drive[0] + spikes[0]).min())
        high = float((drive[1] + spikes[1]).max())
        start = max(abs(v_init), theta)  # a window starts at v_init or in [0, theta]
        reach = start + program.steps_per_item * max(-low, high)
        largest = max(largest, min(reach, state) + max(-low, high) + theta)
        low_current, high_current, saturate = min(low_current, low), max(high_current, high), saturate or reach >= state
    window = program.steps_per_item * float((np.abs(program.output_weight).sum(axis=1)
                                             + np.abs(program.output_bias)).max())
    return Bounds((low_current, high_current), window, max(largest, window + state if program.state_bits else window),
                  saturate)


def membrane_range(program: RecurrentProgram, input_range: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """The lowest and highest hidden membrane any sequence with features in ``input_range`` can reach (interval
    arithmetic per neuron, as ``snnconv.overflow`` does for the feed-forward pipeline, with its default range).

    Per neuron, the host current ``round_bias(W' x + b')`` lies between the rounded ends of
    ``W' m + b' -+ |W'| r`` (``m``, ``r``: the range's centre and radius; rounding is monotone);
    the recurrent current between the sums of the negative and of the positive weights of
    ``U`` (every neuron firing). A window starts in ``[0, theta]`` (or at ``v_init``) and runs
    ``K`` steps with per-step current in ``[lo, hi]``; one spike per step removes at most
    ``theta`` and nothing below it is removed, so (the overflow module's IF bound):
    ``upper = max(theta - 1 + hi, v0 + hi + (K - 1) max(0, hi - theta))``, ``lower = K min(0, lo)``.
    Beyond ``[-2^(s-1), 2^(s-1) - 1]`` the membrane saturates (``run`` counts it).
    """
    low, high = input_range
    centre, radius = (low + high) / 2, (high - low) / 2
    w = np.asarray(program.input_weight, np.float64)
    middle = centre * w.sum(axis=1) + program.input_bias
    spread = radius * np.abs(w).sum(axis=1)
    lowest, highest = math.inf, -math.inf
    for weight, bias, u, theta, v_init in _populations(program):
        if weight is None:
            drive = (round_bias(middle - spread, program.bias_format), round_bias(middle + spread, program.bias_format))
        else:  # a stacked layer: a constant bias and spikes (0 or 1) from the layer below
            drive = (np.asarray(bias, np.float64),) * 2
        spikes = _spike_current_range([u] if weight is None else [weight, u])
        lo, hi = drive[0] + spikes[0], drive[1] + spikes[1]
        steps, start = program.steps_per_item, max(v_init, theta)
        upper = np.maximum(theta - 1 + hi, start + hi + (steps - 1) * np.maximum(0.0, hi - theta))
        lower = steps * np.minimum(0.0, lo)
        lowest, highest = min(lowest, float(lower.min())), max(highest, float(upper.max()))
    return lowest, highest


def partition(program: RecurrentProgram, target: Target, chips: int | None = None) -> list[CoreUse]:
    """Each recurrent layer's neurons in as few cores as the limits allow (bottom to top, numbered layer after
    layer), then the output integrators. A core of layer ``l`` routes to every core of its own layer (the
    recurrent synapses) and of the layer above (the output cores above the top); its input axons are every
    neuron of its own layer and of the layer below (the first layer's input is the host's current)."""
    core, p = target.core, target.precision
    sizes, offsets, classes = program.sizes, program.offsets, len(program.output_weight)
    layers = []  # per layer: (rows, neurons per core)
    for l, hidden in enumerate(sizes):
        rows = hidden + (sizes[l - 1] if l else 0)
        if rows > core.input_axons:
            raise DoesNotFitError(f"recurrent population {l} ({hidden} neurons): input axons ({rows:,}) exceeded "
                                  f"max ({core.input_axons:,}) of a {target.name} core: every neuron reads every "
                                  "other and the layer below; use fewer hidden units")
        per = _most_neurons(core, p.weight_bits, rows, program.compartments)
        if not per:
            raise DoesNotFitError(f"recurrent population {l} ({hidden} neurons): the synapse memory of one "
                                  f"{target.name} core cannot hold {rows} rows of even one neuron's synapses")
        layers.append((rows, per))
    per_output = _most_neurons(core, p.weight_bits, sizes[-1], 1)
    if not per_output:
        raise DoesNotFitError(f"output population ({classes} integrators): the synapse memory of one "
                              f"{target.name} core cannot hold {sizes[-1]} rows of even one integrator's synapses")
    counts = [math.ceil(hidden / per) for hidden, (_, per) in zip(sizes, layers)] + \
        [math.ceil(classes / per_output)]
    available = target.chip.cores * (chips or target.chip.chips)
    if sum(counts) > available:
        raise DoesNotFitError(f"recurrent network needs {sum(counts)} cores, {target.name} has {available}")
    first = [sum(counts[:i]) for i in range(len(counts) + 1)]
    group = [tuple(range(first[i], first[i + 1])) for i in range(len(counts))]  # cores per population
    cores = []
    for l, (hidden, (rows, per)) in enumerate(zip(sizes, layers)):
        routes = group[l] + group[l + 1]
        for i in range(counts[l]):
            start, stop = offsets[l] + i * per, offsets[l] + min(hidden, (i + 1) * per)
            cores.append(CoreUse(len(cores), "hidden", (start, stop), rows, (stop - start) * len(routes),
                                 rows * _row_bits(core, p.weight_bits, stop - start), routes))
    for j in range(counts[-1]):
        start, stop = j * per_output, min(classes, (j + 1) * per_output)
        cores.append(CoreUse(len(cores), "output", (start, stop), sizes[-1], 0,
                             sizes[-1] * _row_bits(core, p.weight_bits, stop - start), ()))
    over = [c for c in cores if c.output_axons > core.output_axons or len(c.routes) - 1 > core.fan_out]
    if over:
        raise DoesNotFitError(f"core {over[0].index}: output axons ({over[0].output_axons:,}) or routes "
                              f"({len(over[0].routes)}) exceed the {target.name} limits")
    return cores


def _row_bits(core, weight_bits: int, neurons: int) -> int:
    """One axon's row of ``neurons`` synapses in the target's memory words."""
    if core.synapse_cost != "per_synapse":
        return neurons * weight_bits
    return math.ceil((neurons * weight_bits + core.row_overhead_bits) / core.word_bits) * core.word_bits


def _most_neurons(core, weight_bits: int, rows: int, compartments: int) -> int:
    neurons = core.neurons if isinstance(core.neurons, (int, float)) else min(core.neurons)
    memory = core.synapse_memory_bits if isinstance(core.synapse_memory_bits, (int, float)) \
        else min(core.synapse_memory_bits)
    n = int(min(neurons // compartments, 1 << 16))
    while n and rows * _row_bits(core, weight_bits, n) > memory:
        n -= 1
    return n


def run(program: RecurrentProgram, x, batch_size: int = 256) -> SequenceResult:
    """Stream the sequences ``x`` (N, L, F) through ``program``: per-item outputs, spikes, saturations.

    Per item and layer, bottom to top, the input current of all its K steps is one matrix
    product (the previous item's own spikes, the delay being K; for a stacked layer also
    this window's spikes of the layer below, step for step), then the membranes step
    through the window. A layer never reads a layer above it, so layer by layer is exact.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[1] != program.items or x.shape[2] != program.input_weight.shape[1]:
        raise BadDataError(f"sequences of shape {x.shape}; the model takes (N, {program.items}, "
                           f"{program.input_weight.shape[1]})")
    batches = [_run_batch(program, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return SequenceResult(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]),
                          sum(b[2] for b in batches), np.concatenate([b[3] for b in batches]))


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, np.float64))


def _run_batch(program: RecurrentProgram, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    steps, n = program.steps_per_item, len(x)
    currents = torch.from_numpy(host_currents(program, x))
    populations = [(None if w is None else _tensor(w), _tensor(b), _tensor(u), theta)
                   for w, b, u, theta, _ in _populations(program)]
    v_out, c = _tensor(program.output_weight), _tensor(program.output_bias)
    v = [torch.full((n, len(b)), float(v_init), dtype=torch.float64) for _, b, _, _, v_init in _populations(program)]
    previous = [torch.zeros((steps, n, len(b)), dtype=torch.float64) for _, b, _, _ in populations]
    outputs, spikes_per_item, saturations = [], [], 0
    per_neuron = torch.zeros((n, program.hidden_total), dtype=torch.float64)
    for t in range(program.items):
        below = None
        for l, (w, b, u, theta) in enumerate(populations):
            drive = currents[:, t] if w is None else below @ w.T + b
            spikes, clipped = _window_layer(v[l], previous[l] @ u.T + drive, theta, program.state_bits)
            saturations += clipped
            previous[l], below = spikes, spikes
        integral = _window(below @ v_out.T + c, program.state_bits)
        outputs.append((integral * program.output_scale / steps).numpy())
        spikes_per_item.append(sum(spikes.sum(dim=(0, 2)) for spikes in previous).numpy())
        per_neuron += torch.cat([spikes.sum(dim=0) for spikes in previous], dim=1)
    return np.stack(outputs, axis=1), np.stack(spikes_per_item, axis=1), saturations, per_neuron.numpy()


def _window_layer(v: torch.Tensor, incoming: torch.Tensor, theta: float, state_bits: int | None
                  ) -> tuple[torch.Tensor, int]:
    """One layer through one item's window (``incoming``: (K, N, H) per step), ``v`` updated in place: the
    rectified carry, then per step the current, saturation at the state bits, fire at ``v >= theta``, subtract."""
    low, high = (-(2.0 ** (state_bits - 1)), 2.0 ** (state_bits - 1) - 1) if state_bits else (-math.inf, math.inf)
    v.clamp_(0.0, theta)  # the remainder carries; negative charge (the ReLU's) and excess over rate 1 go
    spikes, saturations = torch.empty_like(incoming), 0
    for k in range(len(incoming)):
        v += incoming[k]
        clipped = (v < low) | (v > high)
        if state_bits and bool(clipped.any()):
            saturations += int(clipped.sum())
            v.clamp_(low, high)
        torch.ge(v, theta, out=spikes[k])
        v -= spikes[k] * theta
    return spikes, saturations


def _window(currents: torch.Tensor, state_bits: int | None) -> torch.Tensor:
    """The output integral over one window, saturating at the state bits step by step (the compiler sizes the head
    so that it never does; the clip keeps the semantics exact if it did)."""
    if state_bits is None:
        return currents.sum(0)
    top = 2.0 ** (state_bits - 1)
    integral = torch.zeros_like(currents[0])
    for step in currents:
        integral = (integral + step).clamp(-top, top - 1)
    return integral
