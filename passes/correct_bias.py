"""Correct each IF layer's mean rate at the T it will run for (Li et al. 2021, "bias correction").

At few timesteps an IF population fires systematically more (or less) than the clipped
ReLU it replaces: a neuron whose input fluctuates around a negative mean still fires on
the early positive swings, and reset by subtraction cannot take a spike back. The error
is systematic per channel, so it can be measured and compensated:

    delta[c] = mean(clip(a_ANN, 0, 1))[c] - mean(spikes / T)[c]

over the calibration samples, per channel (per neuron for dense layers), and ``delta``
is added to the constant current (bias) the channel receives every step. Layers are
corrected in order, each measured with the ones before it already corrected; the target
``a_ANN`` always comes from the uncorrected network.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Add, Affine, Conv, Dense, Graph, Layer, Pool
from snnconv.ir.rewrite import PassResult
from snnconv.snn import simulate

__all__ = ["CorrectBias"]


class CorrectBias:
    """Options: ``samples`` (calibration inputs, an array), ``timesteps`` (the T to correct for)."""

    name = "correct_bias"

    def __init__(self, samples: np.ndarray, timesteps: int):
        if timesteps < 1:
            raise ValueError(f"timesteps must be positive, got {timesteps}")
        self.samples = samples
        self.timesteps = timesteps

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("spiking"):
            raise BadGraphError(f"graph {graph.name!r} is not spiking; run the spike pass first")
        populations = [layer.name for layer in graph if isinstance(layer, IF)]
        targets = ann.activations(graph, self.samples, populations)
        corrected, skipped = {}, []
        for name in populations:
            counts = simulate(graph, self.samples, self.timesteps, until=name).spike_counts[name]
            delta = _channel_mean(targets[name]) - _channel_mean(counts / self.timesteps)
            layers = _with_extra_current(graph, graph[name].inputs[0], delta)
            if layers is None:
                skipped.append(name)
                continue
            graph = graph.rebuilt(layers)
            corrected[name] = float(np.abs(delta).mean())
        notes = {"timesteps": self.timesteps, "samples": int(len(self.samples)),
                 "mean_abs_correction": corrected, "not_correctable": skipped}
        return PassResult(graph, bool(corrected), notes)


def _channel_mean(values: np.ndarray) -> np.ndarray:
    """Mean over samples and positions: one value per channel (per neuron for vectors)."""
    axes = (0, *range(2, values.ndim))
    return values.mean(axis=axes)


def _with_extra_current(graph: Graph, name: str, delta: np.ndarray) -> list[Layer] | None:
    """The layers with ``delta`` added, per channel, to the current that ``name`` computes.

    It goes into the bias of the conv/dense (or the shift of the affine) that produces it,
    through max pooling and count-excluding average pooling (both commute with adding a
    per-channel constant) and into one weighted input of a sum. None if there is no such place.
    """
    layer = graph[name]
    if len(graph.consumers(name)) != 1:  # another reader would see the change too
        return None
    if isinstance(layer, (Conv, Dense)):
        bias = layer.bias + delta.reshape(-1, *([1] * (layer.bias.ndim - 1)))
        return _replaced(graph, dataclasses.replace(layer, bias=bias.astype(np.float32)))
    if isinstance(layer, Affine):
        shift = np.broadcast_to(layer.shift, layer.shape) + delta.reshape(-1, *([1] * (len(layer.shape) - 1)))
        return _replaced(graph, dataclasses.replace(layer, shift=shift.astype(np.float32)))
    if isinstance(layer, Pool) and (layer.mode == "max" or not (layer.count_include_pad and any(layer.pads))):
        return _with_extra_current(graph, layer.inputs[0], delta)
    if isinstance(layer, Add):
        for src in layer.inputs:
            if isinstance(graph[src], (Conv, Dense, Affine)) and len(graph.consumers(src)) == 1:
                return _with_extra_current(graph, src, delta)
    return None


def _replaced(graph: Graph, new: Layer) -> list[Layer]:
    return [new if layer.name == new.name else layer for layer in graph]
