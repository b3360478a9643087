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
