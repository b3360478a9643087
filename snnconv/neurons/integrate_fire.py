"""Integrate-and-fire: the spiking replacement of a ReLU (Diehl et al. 2015, Rueckauer et al. 2017).

Each step ``v += I``; where ``v >= theta`` the neuron spikes and ``v -= theta`` (reset
by subtraction) or ``v = 0`` (reset to zero). Driven by a constant current ``I`` its rate
approaches ``clip(I / theta, 0, 1)``: the ReLU, scaled and capped. Every target runs it.
"""

from __future__ import annotations

from snnconv.errors import BadGraphError
from snnconv.neurons.model import NeuronModel

__all__ = ["IntegrateAndFire"]

# neuron values per step (samples x neurons) up to which a constant current's closed form beats the step loop
# (2 cores: 256 values, T = 32: 62 vs 197 us; 6,272: 289 vs 407 us; 12,544: the loop is 5x faster)
CLOSED_FORM_ELEMENTS = 1 << 12
_EXACT_INTEGERS = {"torch.float32": 2.0 ** 24, "torch.float64": 2.0 ** 53}  # every integer below is exact


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

    def run_constant(self, layer, v, current, spikes) -> None:
        """A constant current's steps in closed form, where it is exact and pays: integers (a chip's precision),
        reset by subtraction, every membrane starting in ``[0, theta)``, a small population.

        Then the spikes by step ``t`` are ``N_t = clip(floor((v + t I) / theta), 0, t)``: with
        ``0 <= I <= theta`` the membrane's integer part over ``theta`` grows by at most one a
        step and every step it grows fires; with ``I > theta`` the neuron fires every step; with
        ``I < 0`` it never reaches ``theta``. While ``|v + t I|`` stays below the dtype's
        integer range every value is an exact integer, and a correctly rounded ``a / theta``
        cannot round across an integer, so ``floor`` is exact. The membrane left is
        ``v + T I - theta N_T``. About ten tensor operations for the run instead of four per
        step: faster while op overhead dominates (``CLOSED_FORM_ELEMENTS``); on larger tensors
        the loop's passes over one step's membranes stay in cache and win.
        """
        theta, steps = layer.threshold, len(spikes)
        if (layer.reset != "subtract" or layer.state_bits is None or not steps
                or v.numel() > CLOSED_FORM_ELEMENTS
                or theta + steps * float(current.abs().max()) >= _EXACT_INTEGERS.get(str(v.dtype), 0)
                or float(v.min()) < 0 or float(v.max()) >= theta):
            return super().run_constant(layer, v, current, spikes)
        step = current.new_ones((steps,) + (1,) * v.dim()).cumsum(0)  # t = 1..T, broadcast over neurons
        counts = (step * current).add_(v).div_(theta).floor_().clamp_(min=0).clamp_(max=step)
        spikes[0].copy_(counts[0])
        spikes[1:].copy_(counts[1:]).sub_(counts[:-1])
        v.add_(current, alpha=steps).sub_(counts[-1], alpha=theta)
