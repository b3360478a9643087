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

Cost: one layer-by-layer simulation (``snn.sweep``), not one simulation per layer.
Adding ``delta`` to a layer's bias adds it, unchanged, to the current of the one IF
layer it feeds and to nothing else (that place is read by that layer alone), so the
sweep runs each IF layer on its current plus ``delta`` (the same up to float rounding)
and keeps its spikes for the layers after it; the biases change once, at the end. The
sweep keeps spike trains as bools, T x samples x the neurons alive at once: when that
would exceed ``budget`` bytes, the first samples that fit are used, and the notes say
how many (``samples`` of ``samples_given``).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from snnconv import ann
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Add, Affine, Conv, Dense, Graph, Layer, Pool
from snnconv.ir.rewrite import PassResult
from snnconv.snn import SWEEP_BYTES, sweep, sweep_samples

__all__ = ["CorrectBias"]

logger = logging.getLogger(__name__)


class CorrectBias:
    """Options: ``samples`` (calibration inputs, an array), ``timesteps`` (the T to correct for),
    ``budget`` (bytes of spike trains the sweep may keep)."""

    name = "correct_bias"

    def __init__(self, samples: np.ndarray, timesteps: int, budget: int = SWEEP_BYTES):
        if timesteps < 1:
            raise ValueError(f"timesteps must be positive, got {timesteps}")
        self.samples = samples
        self.timesteps = timesteps
        self.budget = budget

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("spiking"):
            raise BadGraphError(f"graph {graph.name!r} is not spiking; run the spike pass first")
        samples = self._samples(graph)
        populations = [layer.name for layer in graph if isinstance(layer, IF)]
        targets = {name: _channel_mean(a) for name, a in ann.activations(graph, samples, populations).items()}
        places = {name: _place(graph, graph[name].inputs[0]) for name in populations}
        deltas: dict[str, np.ndarray] = {}

        def correction(name: str, counts: np.ndarray) -> np.ndarray | None:
            if places[name] is None:
                return None
            deltas[name] = targets[name] - _channel_mean(counts / self.timesteps)
            return _per_channel(deltas[name], len(graph[name].shape))

        sweep(graph, samples, self.timesteps, correction)
        shifted = {places[name].name: _shifted(places[name], delta) for name, delta in deltas.items()}
        corrected = graph.rebuilt([shifted.get(layer.name, layer) for layer in graph]) if shifted else graph
        notes = {"timesteps": self.timesteps, "samples": len(samples),
                 "mean_abs_correction": {name: float(np.abs(delta).mean()) for name, delta in deltas.items()},
                 "not_correctable": [name for name in populations if places[name] is None]}
        if len(samples) < len(self.samples):
            notes["samples_given"] = len(self.samples)
        return PassResult(corrected, bool(shifted), notes)

    def _samples(self, graph: Graph) -> np.ndarray:
        """The first calibration samples whose spike trains fit the budget (all of them, usually)."""
        count = sweep_samples(graph, self.timesteps, len(self.samples), self.budget)
        if count < len(self.samples):
            logger.info("bias correction on %d of %d calibration samples: T = %d x the network's spike trains "
                        "fit %d MB", count, len(self.samples), self.timesteps, self.budget >> 20)
        return self.samples[:count]


def _channel_mean(values: np.ndarray) -> np.ndarray:
    """Mean over samples and positions: one value per channel (per neuron for vectors)."""
    axes = (0, *range(2, values.ndim))
    return values.mean(axis=axes)


def _per_channel(delta: np.ndarray, rank: int) -> np.ndarray:
    """``delta`` shaped (C, 1, ..., 1) to broadcast over a layer of ``rank`` axes."""
    return delta.reshape(-1, *([1] * (rank - 1)))


def _place(graph: Graph, name: str) -> Layer | None:
    """The conv/dense (bias) or affine (shift) whose change adds to the current that ``name`` computes.

    Found through max pooling and count-excluding average pooling (both commute with
    adding a per-channel constant) and into one weighted input of a sum. Every layer on
    the way must have one reader, or another layer would see the change too. None if
    there is no such place.
    """
    layer = graph[name]
    if len(graph.consumers(name)) != 1:
        return None
    if isinstance(layer, (Conv, Dense, Affine)):
        return layer
    if isinstance(layer, Pool) and (layer.mode == "max" or not (layer.count_include_pad and any(layer.pads))):
        return _place(graph, layer.inputs[0])
    if isinstance(layer, Add):
        for src in layer.inputs:
            if isinstance(graph[src], (Conv, Dense, Affine)) and len(graph.consumers(src)) == 1:
                return graph[src]
    return None


def _shifted(layer: Layer, delta: np.ndarray) -> Layer:
    """``layer`` with ``delta`` added, per channel, to its bias (conv, dense) or shift (affine)."""
    if isinstance(layer, Affine):
        shift = np.broadcast_to(layer.shift, layer.shape) + _per_channel(delta, len(layer.shape))
        return dataclasses.replace(layer, shift=shift.astype(np.float32))
    bias = layer.bias + _per_channel(delta, layer.bias.ndim)
    return dataclasses.replace(layer, bias=bias.astype(np.float32))
