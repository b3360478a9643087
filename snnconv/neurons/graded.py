"""Graded spikes: an integrate-and-fire neuron that sends an integer payload, up to ``P`` per step.

Loihi 2 and SpiNNaker 2 can attach an integer payload to a spike message (Intel's Loihi 2
brief: graded spikes of up to 32 bits; SpiNNaker's multicast packets carry an optional
32-bit payload, which sPyNNaker already uses as a spike count). A neuron can so send its
quantized activation in one message instead of as a train of binary spikes.

The step is ``snnconv.neurons.multi_spike``'s with ``N = P = 2^b - 1`` for a payload of
``b`` bits (``payload_bits``, 8 by default: what Intel says is typically used); the
count fired is the payload, sent as one message. With ``b = 1`` this is the IF neuron.
A population may be capped lower, at any ``N <= 2^b - 1``: ``passes/graded`` caps a network
trained with QCFS at ``L`` levels at ``N = L`` (0..4 in a 3-bit payload for ``L = 4``), so one
step sends the trained activation exactly.

Why it cuts timesteps (``passes/graded`` does the scaling): ReLU is positively
homogeneous, so multiplying the input current of the first weighted layers and every bias
by ``P`` makes every pre-activation ``P`` times larger. A neuron driven by a constant
current ``c`` (in threshold units of the normalized ANN, ``c`` in [0, 1]) then sends
``floor(c P + v0)`` in the first step -- the activation quantized to ``P`` levels, rounded
to nearest with ``v0 = theta / 2`` -- and the residue stays in the membrane. Deeper layers
receive that payload in the same step (every layer runs every step), so after one step the
network computes the ``P``-level quantized ANN, and over ``T`` steps the payload sums
approach ``c P T``: the error of rate coding at ``P T`` steps, in ``T``.

What the payload width costs: fewer bits quantize every activation more coarsely (fewer
levels, more neurons whose activation rounds to 0 and send nothing: fewer messages and
synaptic operations); more bits make every reader's current up to ``P`` times a binary
spike's, which the overflow analysis bounds and ``quantize`` fits into the chip's state
bits (``snnconv.overflow``). A target carries payloads up to its
``neuron.spikes_per_step`` (``unsupported``).

Cost: a graded spike is one message whatever its payload, so the simulator counts, per
neuron, the steps it sent a nonzero payload (``SimulationResult.message_counts``) and the
chip's synaptic operations, spikes and routing are messages x fan-out (``snnconv.chip``).
NIR has no graded-spike neuron: export is refused (``nir``).
"""

from __future__ import annotations

from snnconv.errors import UnsupportedOpError
from snnconv.neurons.multi_spike import MultiSpike

__all__ = ["DEFAULT_PAYLOAD_BITS", "MAX_PAYLOAD_BITS", "PAYLOAD_MAX", "GradedIntegrateAndFire", "payload_max"]

DEFAULT_PAYLOAD_BITS = 8
MAX_PAYLOAD_BITS = 16  # the widest payload a target states (``neuron.spikes_per_step`` holds at most 2^16 - 1)


def payload_max(bits: int) -> int:
    """The largest payload of ``bits`` bits: ``P = 2^bits - 1``."""
    return 2 ** bits - 1


PAYLOAD_MAX = payload_max(DEFAULT_PAYLOAD_BITS)


class GradedIntegrateAndFire(MultiSpike):
    name = "graded"
    description = "graded spikes: integrate-and-fire sending floor(v / theta), up to 2^payload_bits - 1 (255 for 8 " \
                  "bits), per step as one message (Loihi 2, SpiNNaker 2)"
    spikes_per_step = PAYLOAD_MAX
    one_message = True

    @property
    def payload_bits(self) -> int:
        return self.spikes_per_step.bit_length()

    def refused_count(self, most: int) -> str | None:
        if most < 1 or most.bit_length() > MAX_PAYLOAD_BITS:
            return (f"a 'graded' neuron sends payloads of 1 to {MAX_PAYLOAD_BITS} bits, 1 to "
                    f"{payload_max(MAX_PAYLOAD_BITS)} at most; {most} is not such a maximum")
        return None

    def unsupported(self, target) -> str | None:
        reason = super().unsupported(target)
        return None if reason is None else f"{reason} ({self.payload_bits}-bit payloads)"

    def nir(self, layer, nir, v_threshold, metadata: dict):
        raise UnsupportedOpError(f"NIR has no graded-spike neuron (its IF sends one binary spike per step; this one "
                                 f"sends floor(v / threshold), up to {self.spikes_per_step}, as one message): compile "
                                 f"with neuron 'if' to export to NIR")
