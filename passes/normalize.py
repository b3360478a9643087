"""Data-based normalization: scale weights so every ReLU's activations fit a rate in [0, 1].

Each tensor ``t`` gets a positive scale ``lam_t`` (one per channel, or one per layer),
and the normalized network computes ``t / lam_t``. For a conv or dense layer reading
``x`` and writing ``y``::

    W'[o, c] = W[o, c] * lam_x[c] / lam_y[o]        b'[o] = b[o] / lam_y[o]

ReLU, pooling, padding, flatten and concat pass scales through (they commute with a
positive per-channel factor). ``lam_y`` of a weighted layer (conv, dense, add, affine) is
the scale of the ReLU it feeds (through pools): the given percentile of that ReLU's
positive activations over the calibration data (Rueckauer et al. 2017), per channel or
per layer; a ReLU6-style ceiling ``m`` caps it (``lam <= m``, per channel too: the
capped ReLU's ceiling becomes ``m / lam`` per channel; one per layer where the ceiling is
a QCFS-trained one, which is the scale itself, or a QDQ model's activation quantizer's,
whose next layer's integer weights need one input scale). An Add whose
inputs carry other scales than its own gets a scaling ``Affine`` on those inputs, so both
branches of a residual agree. The output layer gets one scale for all classes (argmax is
unchanged), recorded as ``Output.scale``.

Heads without weights after the last ReLU (SqueezeNet: 1x1 conv to the classes -> ReLU
-> global average pool -> output): the ReLU's scales reach the output through pooling,
padding, flatten and concat only, with no weights to absorb them, and the output needs
one scale for all classes. So every ReLU (or other anchor) that reaches the output
without a weighted layer in between gets one scale for all its channels, and all of them
together one scale: the percentile of the union of their activations (per-tensor
normalization of the class scores, as the output is anyway). This is exact in the ANN
and keeps accuracy: the winning classes are the large scores, which per-tensor scaling
resolves best; carrying per-class scales to the host instead would spend the same
spikes of each class on a different value.

Percentiles come from a streaming log-histogram (64 bins per octave, relative error under
1.1%), so memory does not grow with the calibration set. Without calibration data, the
scales fall back to a weight-based upper bound for inputs in [0, 1] (loose: expect lower
SNN accuracy at few timesteps), with a warning.

Depthwise convs (MobileNet) need per-channel scales: after BatchNorm folding their
channels' ranges differ by orders of magnitude, and with one scale per layer the small
channels carry a few spikes each, whose rounding errors add up over the blocks (a
MobileNet-style net on MNIST: 30% at T = 32 per layer, 96.4% per channel, ANN 96.9%).
Per-layer normalization of a graph with depthwise convs logs a warning and notes it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from snnconv import ann
from snnconv.data import iter_batches
from snnconv.errors import BadDataError, BadGraphError
from snnconv.ir import (
    IF,
    Add,
    Affine,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    Input,
    Layer,
    Output,
    Pad,
    Pool,
    ReLU,
    Upsample,
)
from snnconv.ir.rewrite import PassResult

__all__ = ["Normalize", "LogHistogram"]

log = logging.getLogger(__name__)

WEIGHTED = (Conv, Dense, Add, Affine)


class LogHistogram:
    """Per-channel streaming histogram of positive values on a log2 grid, plus exact max."""

    LOW, HIGH, PER_OCTAVE = -40, 40, 64

    def __init__(self, channels: int):
        self.bins = (self.HIGH - self.LOW) * self.PER_OCTAVE
        self.counts = np.zeros((channels, self.bins), np.int64)
        self.max = np.zeros(channels)

    def add(self, values: np.ndarray) -> None:
        """``values`` of shape (channels, anything); non-positive values are not counted."""
        channels = self.counts.shape[0]
        values = values.reshape(channels, -1)
        self.max = np.maximum(self.max, values.max(axis=1, initial=0.0))
        rows, cols = np.nonzero(values > 0)
        if not len(rows):
            return
        index = np.floor((np.log2(values[rows, cols].astype(np.float64)) - self.LOW) * self.PER_OCTAVE)
        index = np.clip(index, 0, self.bins - 1).astype(np.int64)
        self.counts += np.bincount(rows * self.bins + index, minlength=channels * self.bins).reshape(channels, -1)

    def percentile(self, p: float) -> np.ndarray:
        """The ``p``-th percentile of each channel's positive values (0 where none was seen)."""
        cumulative = np.cumsum(self.counts, axis=1)
        total = cumulative[:, -1]
        rank = np.ceil(total * p / 100.0).clip(min=1)
        index = (cumulative < rank[:, None]).sum(axis=1)
        upper = 2.0 ** (self.LOW + (index + 1) / self.PER_OCTAVE)
        return np.where(total > 0, np.minimum(upper, self.max), 0.0)


@dataclasses.dataclass
class Calibration:
    """What one pass over the calibration data measured: per anchor layer its activation histogram."""

    histograms: dict[str, LogHistogram]
    samples: int
    input_range: tuple[float, float]


class Normalize:
    """Options: ``calibration`` (array, tensor or iterable of batches; None for the
    weight-based fallback), ``percentile`` (100 = max), ``per_channel``; ``measured``: the
    histograms ``measure`` took of this graph and calibration, so that several
    percentiles cost one pass over the data."""

    name = "normalize"

    def __init__(self, calibration=None, percentile: float = 99.99, per_channel: bool = False, batch_size: int = 256,
                 measured: Calibration | None = None, ceilings: bool = False):
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.calibration = calibration
        self.percentile = percentile
        self.per_channel = per_channel
        self.batch_size = batch_size
        self.measured = measured
        self.ceilings = ceilings  # a capped ReLU's scale is its ceiling (QCFS-trained: the ceilings were learned)

    def run(self, graph: Graph) -> PassResult:
        if graph.fact("normalized"):
            raise BadGraphError(f"graph {graph.name!r} is already normalized")
        if any(isinstance(layer, IF) for layer in graph):
            raise BadGraphError(f"graph {graph.name!r} is already spiking; normalize before the spike pass")
        anchors = _anchor_of_each_weighted_layer(graph)
        notes: dict = {"percentile": self.percentile, "per_channel": self.per_channel}
        depthwise = [layer.name for layer in graph if isinstance(layer, Conv) and layer.groups > 1]
        if depthwise and not self.per_channel:
            log.warning("per-layer scales with depthwise convs (%s): their channels' ranges differ by orders of "
                        "magnitude and small channels fire too few spikes (a MobileNet-style net on MNIST: 30%% at "
                        "T = 32 instead of 96%%); use per-channel scales", ", ".join(depthwise[:3]))
            notes["depthwise_warning"] = "per-layer scales with depthwise convs: use per-channel scales"
        head = _reaching_output_unweighted(graph, set(anchors.values()))
        if head:
            notes["per_tensor_head"] = sorted(head)
        if self.calibration is None:
            log.warning("no calibration data: scales come from a weight-based bound; SNN accuracy will suffer")
            notes["warning"] = "no calibration data: weight-based bound used"
            lam_of = _shared(_weight_bound_scales(graph, anchors), head)
        else:
            lam_of, notes["samples"], notes["clipped"], input_range = self._calibrated_scales(
                graph, set(anchors.values()))
        layers, scales = _rescale(graph, anchors, lam_of)
        notes["scales"] = {name: _summary(lam) for name, lam in scales.items()}
        facts = {"normalized": f"p{self.percentile:g} {'per channel' if self.per_channel else 'per layer'}"}
        if self.calibration is not None:
            facts["input_range"] = input_range
        return PassResult(graph.rebuilt(layers, **facts), True, notes)

    def measure(self, graph: Graph) -> Calibration:
        """The calibration data's activation histograms on ``graph``: one pass, which every percentile reuses
        (give it as ``measured`` to a ``Normalize`` of the same graph, calibration and ``per_channel``)."""
        return self._histograms(graph, set(_anchor_of_each_weighted_layer(graph).values()))

    def _calibrated_scales(self, graph: Graph, anchors: set[str]):
        calibration = self.measured if self.measured is not None else self._histograms(graph, anchors)
        histograms = dict(calibration.histograms)
        head = _reaching_output_unweighted(graph, anchors)
        if len(head) > 1:  # one scale for the union of their activations
            union = LogHistogram(1)
            for name in head:
                union.counts += histograms[name].counts
                union.max = np.maximum(union.max, histograms[name].max)
            histograms.update(dict.fromkeys(head, union))
        lam_of, clipped = {}, {}
        for name, histogram in histograms.items():
            lam = histogram.percentile(self.percentile)
            lam_of[name] = _cap(graph[name], lam, self.ceilings)
            seen = histogram.counts.sum()
            above = sum(int(histogram.counts[c][_bin_above(histogram, lam_of[name][c]):].sum())
                        for c in range(len(lam)))
            clipped[name] = above / seen if seen else 0.0
        return lam_of, calibration.samples, clipped, calibration.input_range

    def _histograms(self, graph: Graph, anchors: set[str]) -> Calibration:
        histograms: dict[str, LogHistogram] = {}
        samples, low, high = 0, np.inf, -np.inf
        logits = graph.output.inputs[0]
        head = _reaching_output_unweighted(graph, anchors)
        for batch in iter_batches(self.calibration, self.batch_size, "calibration data"):
            samples += len(batch)
            low, high = min(low, float(batch.min())), max(high, float(batch.max()))
            for name, values in ann.activations(graph, batch, anchors).items():
                layer = graph[name]
                if name == logits:  # one scale for all classes; logits may be negative
                    per_channel = np.abs(values).reshape(1, -1)
                elif (not self.per_channel or name in head
                      or (isinstance(layer, ReLU) and layer.max_value is not None and self._one_per_ceiling(graph))):
                    per_channel = values.reshape(1, -1)
                else:
                    per_channel = np.moveaxis(values, 1, 0)
                if name not in histograms:
                    histograms[name] = LogHistogram(per_channel.shape[0])
                histograms[name].add(per_channel)
        _refuse_constant(samples, low, high)
        return Calibration(histograms, samples, (low, high))

    def _one_per_ceiling(self, graph: Graph) -> bool:
        """Whether a capped ReLU keeps one scale for all its channels: where its ceiling was trained (QCFS) or is an
        activation quantizer's (a QDQ model: the next layer's integer weights stay integers only if every input
        channel shares one scale). A ReLU6 of the model's own gets one per channel, as any ReLU."""
        return self.ceilings or graph.fact("fake_quant") is not None


def _refuse_constant(samples: int, low: float, high: float) -> None:
    """Calibration samples that hold one value everywhere (all zeros: a preprocessing step that failed) say nothing
    about the activations; scales from them leave the SNN near chance, so they are refused, not used."""
    if low == high:
        raise BadDataError(f"calibration data: every value of its {samples:,} samples is {low:g}; pass real "
                           f"samples, preprocessed as for the model (the ones it was trained or tested on)")


def _bin_above(histogram: LogHistogram, value: float) -> int:
    """The first bin whose values all exceed ``value``."""
    if value <= 0:
        return 0
    return int(np.clip(np.floor((np.log2(value) - histogram.LOW) * histogram.PER_OCTAVE) + 1, 0, histogram.bins))


def _cap(layer: Layer, lam: np.ndarray, ceilings: bool = False) -> np.ndarray:
    """Dead channels get scale 1 (they never fire); a ReLU ceiling ``m`` caps the scale (is the scale, with
    ``ceilings``)."""
    lam = np.where(lam > 0, lam, 1.0)
    if isinstance(layer, ReLU) and layer.max_value is not None:
        lam = np.full_like(lam, layer.max_value) if ceilings else np.minimum(lam, layer.max_value)
    return lam


def _ceiling(ceiling, scale: np.ndarray):
    """A capped ReLU's ceiling in its scaled units: one number where every channel has the same scale, else one per
    channel (at least 1 in every channel that fires: its scale is capped at the ceiling, so no cap cuts into its
    rate range)."""
    ceilings = np.asarray(ceiling / scale, np.float64)
    return float(ceilings.ravel()[0]) if np.ptp(ceilings) == 0 else ceilings


def _summary(lam: np.ndarray) -> dict:
    return {"min": float(np.min(lam)), "max": float(np.max(lam))}


def _anchor_of_each_weighted_layer(graph: Graph) -> dict[str, str]:
    """For each weighted layer, the layer whose activations decide its output scale.

    Walking forward through pooling, padding and residual adds (single reader each), that
    is the ReLU reached; otherwise the last layer of the walk (e.g. the layer feeding the
    output).
    """
    anchors = {}
    for layer in graph:
        if not isinstance(layer, WEIGHTED):
            continue
        current = layer
        while not isinstance(current, ReLU):
            readers = graph.consumers(current.name)
            if len(readers) != 1 or not isinstance(readers[0], (ReLU, Pool, Pad, Add)):
                break
            current = readers[0]
        anchors[layer.name] = current.name
    return anchors


def _reaching_output_unweighted(graph: Graph, anchors: set[str]) -> set[str]:
    """The anchors whose activations reach the output through layers without weights only
    (pooling, padding, flatten, concat, ReLU): their scales cannot be absorbed before it."""
    found, seen = set(), set()
    stack = [graph.output.inputs[0]]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in anchors:
            found.add(name)
        layer = graph[name]
        if not isinstance(layer, (*WEIGHTED, Input)):
            stack.extend(layer.inputs)
    return found


def _shared(lam_of: dict[str, np.ndarray], head: set[str]) -> dict[str, np.ndarray]:
    """``lam_of`` with every anchor of ``head`` at the largest of their (per-tensor) scales."""
    if len(head) < 2:
        return lam_of
    common = np.array([max(float(np.max(lam_of[name])) for name in head)])
    return {name: (common if name in head else lam) for name, lam in lam_of.items()}


def _weight_bound_scales(graph: Graph, anchors: dict[str, str]) -> dict[str, np.ndarray]:
    """Upper bounds of each anchor's activations for inputs in [0, 1] (interval arithmetic)."""
    bound: dict[str, np.ndarray] = {}
    for layer in graph:
        ins = [bound[src] for src in layer.inputs]
        if isinstance(layer, Input):
            bound[layer.name] = np.ones(layer.shape)
        elif isinstance(layer, Dense):
            bound[layer.name] = np.abs(layer.weight) @ ins[0].ravel() + np.abs(layer.bias)
        elif isinstance(layer, Conv):
            per_channel = ins[0].reshape(ins[0].shape[0], -1).max(axis=1)
            rows = layer.weight.shape[0] // layer.groups
            reach = np.array([np.abs(layer.weight[o]).sum(axis=(1, 2)) @
                              per_channel[(o // rows) * layer.weight.shape[1]:(o // rows + 1) * layer.weight.shape[1]]
                              for o in range(layer.weight.shape[0])])
            bias = np.abs(layer.bias).reshape(layer.bias.shape[0], -1).max(axis=1)
            bound[layer.name] = np.broadcast_to((reach + bias)[:, None, None], layer.shape)
        elif isinstance(layer, Add):
            bound[layer.name] = sum(ins)
        elif isinstance(layer, Affine):
            bound[layer.name] = np.abs(layer.scale) * ins[0] + np.abs(layer.shift)
        elif isinstance(layer, Concat):
            bound[layer.name] = np.concatenate(ins)
        elif isinstance(layer, Flatten):
            bound[layer.name] = ins[0].ravel()
        elif isinstance(layer, Pool):
            bound[layer.name] = np.broadcast_to(ins[0].reshape(ins[0].shape[0], -1).max(axis=1)[:, None, None],
                                                layer.shape)
        elif isinstance(layer, Upsample):
            bound[layer.name] = np.repeat(np.repeat(ins[0], layer.factor[0], 1), layer.factor[1], 2)
        elif isinstance(layer, Pad):
            bound[layer.name] = np.pad(ins[0], ((0, 0), *[(layer.pads[i], layer.pads[i + 2]) for i in (0, 1)]))
        else:  # ReLU, Output
            bound[layer.name] = ins[0]
    return {name: _cap(graph[name], np.array([bound[name].max()])) for name in set(anchors.values())}


def _channel_scale(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A scale vector as an array broadcasting over one sample: (C, 1, 1) or (F,)."""
    lam = np.asarray(lam, np.float64).ravel()
    if lam.size == 1:
        lam = np.repeat(lam, shape[0])
    return lam.reshape(shape[0], *([1] * (len(shape) - 1)))


def _rescale(graph: Graph, anchors: dict[str, str], lam_of: dict[str, np.ndarray]):
    """The normalized layers and each tensor's scale (per channel, broadcastable)."""
    scale: dict[str, np.ndarray] = {}
    layers: list[Layer] = []
    for layer in graph:
        ins = [scale[src] for src in layer.inputs]
        if isinstance(layer, WEIGHTED):
            out = _channel_scale(lam_of[anchors[layer.name]], layer.shape)
            layers += _rescaled_weighted(layer, ins, out)
        elif isinstance(layer, Input):
            out = np.ones((layer.shape[0],) + (1,) * (len(layer.shape) - 1))
            layers.append(layer)
        elif isinstance(layer, Flatten):
            out = np.broadcast_to(ins[0], graph[layer.inputs[0]].shape).reshape(-1)
            layers.append(layer)
        elif isinstance(layer, Concat):
            out = np.concatenate([np.broadcast_to(s, (graph[src].shape[0],) + s.shape[1:])
                                  for s, src in zip(ins, layer.inputs)])
            layers.append(layer)
        elif isinstance(layer, Output):
            out = ins[0]
            if np.ptp(out) > 1e-12 * out.max():
                raise BadGraphError(f"layer {layer.name!r}: classes arrive with different scales; cannot normalize")
            layers.append(dataclasses.replace(layer, scale=float(out.ravel()[0])))
        else:
            out = ins[0]
            if isinstance(layer, ReLU) and layer.max_value is not None:
                layers.append(dataclasses.replace(layer, max_value=_ceiling(layer.max_value, out)))
            else:
                layers.append(layer)
        scale[layer.name] = out
    return layers, {name: s for name, s in scale.items() if isinstance(graph[name], WEIGHTED)}


def _rescaled_weighted(layer: Layer, ins: list[np.ndarray], out: np.ndarray) -> list[Layer]:
    """The layer with weights ``* lam_in / lam_out`` and bias ``/ lam_out`` (Add: scaled inputs)."""
    lam_out = out.ravel()
    if isinstance(layer, Dense):
        weight = layer.weight * np.broadcast_to(ins[0], layer.weight.shape[1:])[None, :] / lam_out[:, None]
        return [dataclasses.replace(layer, weight=weight.astype(np.float32), bias=(layer.bias / lam_out).astype(np.float32))]
    if isinstance(layer, Conv):
        lam_in = ins[0].ravel()
        per_group = layer.weight.shape[1]
        rows = layer.weight.shape[0] // layer.groups
        channel = (np.arange(layer.weight.shape[0])[:, None] // rows) * per_group + np.arange(per_group)[None, :]
        weight = layer.weight * (lam_in[channel] / lam_out[:, None])[:, :, None, None]
        bias = layer.bias / lam_out.reshape(-1, *([1] * (layer.bias.ndim - 1)))
        return [dataclasses.replace(layer, weight=weight.astype(np.float32), bias=bias.astype(np.float32))]
    if isinstance(layer, Affine):
        return [dataclasses.replace(layer, scale=(layer.scale * ins[0] / out).astype(np.float32),
                                    shift=(layer.shift / out).astype(np.float32))]
    # Add: inputs at another scale than the output are rescaled by an Affine on that edge
    new_inputs, extra = [], []
    for src, lam_in in zip(layer.inputs, ins):
        ratio = np.broadcast_to(lam_in, out.shape) / out
        if np.allclose(ratio, 1.0, rtol=1e-7):
            new_inputs.append(src)
            continue
        name = f"{layer.name}/scale_{src}"
        extra.append(Affine(name=name, inputs=(src,), shape=layer.shape, scale=ratio.astype(np.float32),
                            shift=np.zeros_like(ratio, dtype=np.float32)))
        new_inputs.append(name)
    return [*extra, dataclasses.replace(layer, inputs=tuple(new_inputs))]
