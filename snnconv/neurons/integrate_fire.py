"""Integrate-and-fire: the spiking replacement of a ReLU (Diehl et al. 2015, Rueckauer et al. 2017).

Each step ``v += I``; where ``v >= theta`` the neuron spikes and ``v -= theta`` (reset
by subtraction) or ``v = 0`` (reset to zero). Driven by a constant current ``I`` its rate
approaches ``clip(I / theta, 0, 1)``: the ReLU, scaled and capped. Every target runs it.
"""

from __future__ import annotations

from snnconv.errors import BadGraphError
from snnconv.neurons.model import NeuronModel

__all__ = ["IntegrateAndFire"]


class IntegrateAndFire(NeuronModel):
    name = "if"
    description = "integrate-and-fire, no leak"

    def check(self, layer) -> None:
        if layer.decay:
            raise BadGraphError(f"layer {layer.name!r}: an 'if' neuron has no leak (decay {layer.decay}); "
                                f"use model 'lif' for a leaky one")

    def run(self, layer, v, currents, outs) -> None:
        """``integrate`` and ``fire`` inlined, the threshold a tensor made once: at batch 1 a step is a few
        tiny tensor operations, and wrapping a Python number cost as much as the comparison."""
        if layer.reset != "subtract":
            return super().run(layer, v, currents, outs)
        theta = v.new_full((), layer.threshold)
        for current, out in zip(currents, outs):
            v.add_(current)
            out.copy_(v).ge_(theta)
            v.sub_(out, alpha=layer.threshold)
