"""Neurons that fire several spikes in one step: ``floor(v / theta)`` of them, up to ``N``.

The step that graded spikes (``snnconv.neurons.graded``: the count travels as one
message's payload) and bursts (``snnconv.neurons.burst``: the count travels as that many
binary spikes) share; they differ in how the count reaches the next layer, not in it:

    v += I
    out = clamp(floor(v / theta), 0, N)          # 0 = nothing sent
    v  -= out * theta                            # reset by subtraction
    (reset "zero": v = 0 where out > 0)

With ``N = 1`` this is the IF neuron exactly. A synapse delivers ``w * out``: the IR, the
synapse tables and the chip model are the IF network's, only the number a source sends
per step is larger.

Rate (the ANN activation approximated): ``clip(x / theta, 0, N)`` per step.

Bounds: out of ``v >= theta`` a step removes ``min(floor(v / theta), N) theta``, so after
a step ``v < theta`` unless ``v >= (N + 1) theta``, when at most ``N theta`` was removed:
upper ``max(theta - 1 + hi, v0 + hi + (T - 1) max(0, hi - N theta))`` with subtractive
reset (IF's with ``theta`` replaced by ``N theta`` in the drain: ``NeuronModel``'s bound
with ``spikes_per_step = N``), lower as IF's. The step computes ``(out + 1) * theta`` to
check the floor, at most one threshold beyond the membrane (``work``). Readers receive
``[0, N]`` per step (``snnconv.overflow``).

``N`` is a population's (``IF.spikes_per_step``, None for the model's default);
``sized(N)`` is the model with that ``N``, one instance per ``(model, N)``, kept, since
the simulator asks for it every chunk.
"""

from __future__ import annotations

import functools

from snnconv.errors import BadGraphError
from snnconv.neurons.model import NeuronModel

__all__ = ["MultiSpike"]


class MultiSpike(NeuronModel):
    """Fires ``clamp(floor(v / theta), 0, N)`` per step; subclasses say how the count travels and which N exist."""

    one_message = True  # the step's spikes travel as one message (a payload), not as that many binary spikes

    def check(self, layer) -> None:
        if layer.decay:
            raise BadGraphError(f"layer {layer.name!r}: a {self.name!r} neuron has no leak (decay {layer.decay})")
        if layer.spikes_per_step is not None and (reason := self.refused_count(layer.spikes_per_step)):
            raise BadGraphError(f"layer {layer.name!r}: {reason}")

    def refused_count(self, most: int) -> str | None:
        """Why this model cannot fire up to ``most`` spikes per step, or None."""
        return None if most >= 1 else f"a {self.name!r} neuron fires at least 1 spike per step, not {most}"

    def sized(self, most: int) -> MultiSpike:
        """This model firing up to ``most`` per step (``most`` checked by ``refused_count``)."""
        return self if most == self.spikes_per_step else _sized(type(self), most)

    def fire(self, layer, v, out) -> None:
        """Count ``clamp(floor(v / theta), 0, N)`` into ``out``, then reset, in place.

        The floor is exact for integers (torch's floor division of floats is Python's: the
        remainder is taken first), and checked against ``v`` once more all the same.
        """
        theta = layer.threshold
        out.copy_(v).div_(theta, rounding_mode="floor")
        out.sub_((out * theta > v).to(out.dtype)).add_(((out + 1) * theta <= v).to(out.dtype))
        out.clamp_(0, self.spikes_per_step)
        if layer.reset == "subtract":
            v.sub_(out, alpha=theta)
        else:
            v.mul_((out <= 0).to(v.dtype))

    def rate(self, layer, x):
        return (x / layer.threshold).clamp(0.0, float(self.spikes_per_step))

    def work(self, layer, membrane: float) -> float:
        return membrane + float(layer.threshold)


@functools.cache
def _sized(kind: type, most: int) -> MultiSpike:
    model = kind()
    model.spikes_per_step = most
    return model
