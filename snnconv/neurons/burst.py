"""Burst spikes: an integrate-and-fire neuron that may fire a burst of up to ``G`` binary spikes in one step.

Source: Y. Li and Y. Zeng, "Efficient and Accurate Conversion of Spiking Neural Network
with Burst Spikes", IJCAI 2022 (arXiv:2204.13271). A converted IF neuron fires at most one
spike per step, so input that arrives faster than that -- a layer whose inputs bunch up
in time, or whose current exceeds its threshold -- stays in the membrane as "residual
information" until later steps release it, and at small T the run ends first. Their
burst neuron releases it between two steps as a burst: ``min(floor(v / theta), G)``
spikes, reset by subtracting them all; its rate saturates at ``G`` per step, not 1.

The step is ``snnconv.neurons.multi_spike``'s with ``N = G`` (``IF.spikes_per_step``;
``burst`` per compile, ``DEFAULT_BURST`` unless given). With ``G = 1`` this is the IF
neuron. As for graded spikes, ``passes/graded`` scales the network by ``G`` so that a
neuron's activation ``a`` (in [0, 1] of its ceiling) fires ``G a`` spikes per step: in
``T`` steps the counts resolve ``G T`` levels, rate coding's resolution at ``G T`` steps,
for as many spikes. Unscaled, thresholds at the activation's ceiling, a neuron seldom
holds more than one threshold and bursts change little (measured in ``passes/graded``).

Cost: a burst is that many binary spikes, each its own message: no payload is needed, so
``one_message`` is false and the simulator's spike counts are the messages; synaptic
operations, routing and energy count every spike of a burst (``snnconv.chip``), as rate
coding does. What a burst saves is steps: fewer neuron updates, static energy and
latency (on the Fashion VGG on loihi2, ``G = 4`` at ``T = 4`` scores 92.3% for 284 uJ
and 928 us against rate coding's 92.4% for 669 uJ and 2,033 us at ``T = 32``).

A target runs it where a neuron can send ``G`` spikes in one step
(``neuron.spikes_per_step``): of the bundled ones loihi2 and spinnaker2, whose sources
state that through graded payloads (where a burst's count would travel as one payload,
``graded`` is the cheaper coding); loihi and speck send one spike per step and refuse it.

NIR has no neuron that fires several spikes in one step: export is refused (``nir``).
"""

from __future__ import annotations

from snnconv.errors import UnsupportedOpError
from snnconv.neurons.multi_spike import MultiSpike

__all__ = ["DEFAULT_BURST", "MAX_BURST", "BurstIntegrateAndFire"]

DEFAULT_BURST = 4  # spikes in the longest burst: on the Fashion VGG at T = 4, 92.3% (G = 2 at T = 8: 92.0%)
MAX_BURST = 255  # a burst is counted in a byte where spike trains are kept (snnconv.snn)


class BurstIntegrateAndFire(MultiSpike):
    name = "burst"
    description = "burst spikes: integrate-and-fire firing floor(v / theta), up to G binary spikes per step " \
                  "(Li & Zeng, IJCAI 2022)"
    spikes_per_step = DEFAULT_BURST
    one_message = False

    def refused_count(self, most: int) -> str | None:
        if not 1 <= most <= MAX_BURST:
            return f"a 'burst' neuron fires bursts of 1 to {MAX_BURST} spikes, not {most}"
        return None

    def nir(self, layer, nir, v_threshold, metadata: dict):
        raise UnsupportedOpError(f"NIR has no burst neuron (its IF fires at most one spike per step; this one fires "
                                 f"up to {self.spikes_per_step}): compile with neuron 'if' to export to NIR")
