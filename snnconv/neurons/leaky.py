"""Leaky integrate-and-fire with Loihi's membrane decay (Davies et al. 2018, IEEE Micro 38(1)).

Each step, before the input is added, the membrane decays by ``decay / 4096`` (Loihi's
12-bit ``decay_v``, ``v[t] = v[t-1] * (1 - decay/4096) + I``); at a chip's precision the
product is truncated toward zero, as Lava's bit-accurate Loihi model does
(``sign(v * (4096 - decay)) * (|v * (4096 - decay)| >> 12)``). Spike and reset are IF's.

Rate: from ``v = 0`` under constant current ``I`` the membrane is ``I (1 - a^n) / (1 - a)``
after ``n`` steps, ``a = 1 - decay/4096``; it reaches ``theta`` after
``n* = ln(1 - theta (1 - a) / I) / ln(a)`` steps, and never when ``I <= theta (1 - a)``.
The rate ``clip(1 / n*, 0, 1)`` is the reset-to-zero rate without rounding ``n*`` up
(reset to zero fires every ``ceil(n*)`` steps), and with subtractive reset an upper bound
within ``decay / 4096`` of the rate (the residue above the threshold leaks too): a leaky
neuron is a ReLU with a dead zone below ``theta (1 - a)`` and a concave rise.

Bounds: the decay moves ``v`` toward zero (``|trunc(v a)| <= |v|``), so IF's bounds hold;
the product before the shift reaches ``|v| * 4096`` (``work``), which decides float32 or
float64 exactness. Targets offer it where ``neuron.leak`` is true.
"""

from __future__ import annotations

import math

import numpy as np

from snnconv.errors import BadGraphError
from snnconv.neurons.model import NeuronModel

__all__ = ["LeakyIntegrateAndFire", "DECAY_ONE"]

DECAY_ONE = 4096  # decay is in units of 1/4096 per step (12 bits, Loihi's decay_v)


class LeakyIntegrateAndFire(NeuronModel):
    name = "lif"
    description = "leaky integrate-and-fire, decay_v / 4096 per step (Loihi)"

    def check(self, layer) -> None:
        if not (isinstance(layer.decay, int) and 0 < layer.decay < DECAY_ONE):
            raise BadGraphError(f"layer {layer.name!r}: a 'lif' neuron's decay is an integer in 1..{DECAY_ONE - 1} "
                                f"(units of 1/{DECAY_ONE} per step), got {layer.decay!r}")

    def unsupported(self, target) -> str | None:
        if not target.neuron.leak:
            return f"target {target.name!r} has no per-step membrane decay (neuron.leak = false)"
        return super().unsupported(target)

    def integrate(self, layer, v, current) -> None:
        keep = DECAY_ONE - layer.decay
        if layer.state_bits is None:
            v.mul_(keep / DECAY_ONE)
        else:
            v.mul_(keep).div_(DECAY_ONE, rounding_mode="trunc")
        v.add_(current)

    def rate(self, layer, x):
        a = 1.0 - layer.decay / DECAY_ONE
        floor = layer.threshold * (1.0 - a)
        alive = x > floor  # below the floor the leak takes all the input: no spikes
        safe = x.where(alive, x.new_full((), 2 * floor))  # any value above the floor where the rate is discarded
        steps = (1.0 - floor / safe).log() / math.log(a)
        return (1.0 / steps).clamp(0.0, 1.0).where(alive, x.new_zeros(()))

    def work(self, layer, membrane: float) -> float:
        return membrane * DECAY_ONE

    def nir(self, layer, nir, v_threshold: np.ndarray, metadata: dict):
        """NIR's LIF, ``tau dv/dt = (v_leak - v) + r I``, stepped with dt = 1: ``tau = r = 4096 / decay``."""
        shape = v_threshold.shape
        tau = np.full(shape, DECAY_ONE / layer.decay, np.float32)
        node = nir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(shape, np.float32), v_threshold=v_threshold,
                       v_reset=np.zeros(shape, np.float32), metadata=metadata)
        notes = [f"NIR's LIF decays continuously (tau = 4096 / {layer.decay}); the chip multiplies by "
                 f"(4096 - {layer.decay}) / 4096 each step and truncates toward zero (metadata 'decay')"]
        return node, notes
