"""Graded spikes: an integrate-and-fire neuron that sends an integer payload, up to ``P`` per step.

Loihi 2 and SpiNNaker 2 can attach an integer payload to a spike message (Intel's Loihi 2
brief: graded spikes of up to 32 bits; SpiNNaker's multicast packets carry an optional
32-bit payload, which sPyNNaker already uses as a spike count). A neuron can so send its
quantized activation in one message instead of as a train of binary spikes.

The model here is the integrate-and-fire neuron with reset by subtraction that may fire
up to ``P`` spikes in one step, sent as one message carrying their number:

    v += I
    out = clamp(floor(v / theta), 0, P)          # the payload, 0 = no message
    v  -= out * theta                            # reset by subtraction
    (reset "zero": v = 0 where out > 0)

``P = spikes_per_step = 255`` (8-bit payloads, what Intel says is typically used). A
synapse delivers ``w * payload``: the IR, the synapse tables and the chip model are the
IF network's, only the number a source sends per step is larger. With ``P = 1`` this is
the IF neuron exactly.

Why it cuts timesteps (``passes/graded`` does the scaling): ReLU is positively
homogeneous, so multiplying the input current of the first weighted layers and every bias
by ``P`` makes every pre-activation ``P`` times larger. A neuron driven by a constant
current ``c`` (in threshold units of the normalized ANN, ``c`` in [0, 1]) then sends
``floor(c P + v0)`` in the first step -- the activation quantized to ``P`` levels, rounded
to nearest with ``v0 = theta / 2`` -- and the residue stays in the membrane. Deeper layers
receive that payload in the same step (every layer runs every step), so after one step the
network computes the ``P``-level quantized ANN, and over ``T`` steps the payload sums
approach ``c P T``: the error of rate coding at ``P T`` steps, in ``T``.

Rate (the ANN activation approximated): ``clip(x / theta, 0, P)`` payload per step.

Bounds: out of ``v >= theta`` a step removes ``min(floor(v / theta), P) theta``, so after
a step ``v < theta`` unless ``v >= (P + 1) theta``, when at most ``P theta`` was removed:
upper ``max(theta - 1 + hi, v0 + hi + (T - 1) max(0, hi - P theta))`` with subtractive
reset (IF's with ``theta`` replaced by ``P theta`` in the drain), lower as IF's. The step
computes ``(out + 1) * theta`` to check the floor, at most one threshold beyond the
membrane (``work``). Readers of a graded population receive ``[0, P]`` per step
(``snnconv.overflow``).

Cost: a graded spike is one message whatever its payload, so the simulator counts, per
neuron, the steps it sent a nonzero payload (``SimulationResult.message_counts``) and the
chip's synaptic operations, spikes and routing are messages x fan-out (``snnconv.chip``).
NIR has no graded-spike neuron: export is refused (``nir``).
"""

from __future__ import annotations

from snnconv.errors import BadGraphError, UnsupportedOpError
from snnconv.neurons.model import NeuronModel

__all__ = ["GradedIntegrateAndFire", "PAYLOAD_MAX"]

PAYLOAD_MAX = 255  # 8-bit payloads


class GradedIntegrateAndFire(NeuronModel):
    name = "graded"
    description = f"graded spikes: integrate-and-fire sending floor(v / theta) up to {PAYLOAD_MAX} per step as one " \
                  "message (Loihi 2, SpiNNaker 2)"
    spikes_per_step = PAYLOAD_MAX

    def check(self, layer) -> None:
        if layer.decay:
            raise BadGraphError(f"layer {layer.name!r}: a 'graded' neuron has no leak (decay {layer.decay})")

    def fire(self, layer, v, out) -> None:
        """Payload ``clamp(floor(v / theta), 0, P)`` into ``out``, then reset, in place.

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

    def nir(self, layer, nir, v_threshold, metadata: dict):
        raise UnsupportedOpError(f"NIR has no graded-spike neuron (its IF sends one binary spike per step; this one "
                                 f"sends floor(v / threshold), up to {self.spikes_per_step}, as one message): compile "
                                 f"with neuron 'if' to export to NIR")
