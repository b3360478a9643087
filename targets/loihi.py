"""Intel Loihi (first generation), the default target.

Figures from ``shared/TARGETS.md``: core limits from nengo-loihi (``block.py``), number
formats from nengo-loihi ``discretize.py`` and lava, energy and time per operation from
Davies et al. 2018 (IEEE Micro 38(1), Table 2). Loihi resets a neuron to zero; the
subtractive reset that conversion needs is emulated with a second compartment per neuron
(NxTF, Rueckauer et al. 2022), which halves the neurons a core holds.
"""

import math

from snnconv.targets.target import Chip, Core, Costs, Neuron, Precision, Target

TARGET = Target(
    name="loihi",
    description="Intel Loihi 1: 128 cores/chip, 1,024 compartments/core, 8-bit weights with shared exponents",
    core=Core(neurons=1024, input_axons=4096, output_axons=4096, synapse_memory_bits=16384 * 64,
              synapse_cost="per_synapse", row_overhead_bits=10, word_bits=64, fan_out=math.inf,
              populations_per_core=8, accumulate=True),
    chip=Chip(cores=128, mesh=(8, 16), chips=32),
    precision=Precision(weight_bits=8, weight_exponent=(0, 14), exponent_group="channel", threshold_bits=17,
                        threshold_shift=6, state_bits=24, bias_bits=13, bias_exponent=(0, 7)),
    neuron=Neuron(reset=("zero",), subtract_compartments=2, spikes_per_step=1, leak=True),
    costs=Costs(synop_pj=23.6, neuron_update_pj=81.0, spike_hop_pj=3.5, chip_hop_pj=35.0, synop_ns=3.5,
                neuron_update_ns=8.4, spike_hop_ns=5.3, static_mw=104.0),
    sources={
        "core": "nengo-loihi block.py: MAX_COMPARTMENTS 1024, MAX_IN_AXONS 4096, MAX_OUT_AXONS 4096, "
                "MAX_SYNAPSE_BITS 16384*64",
        "core.fan_out": "assumed: no limit on the cores a core sends to beyond its output axons",
        "core.row_overhead_bits": "nengo-loihi block.py bits_per_axon: a row costs n * bits + 4 + 6, rounded up to "
                                  "64-bit words; assumed: rows in the dense (index-free) format, a tile's neurons "
                                  "laid out so each axon's targets are contiguous",
        "core.populations_per_core": "TARGETS.md: 8 neuron/synapse configurations per core is the safe number",
        "core.accumulate": "assumed: a neuron's input split across cores is summed exactly in the same step (as "
                           "multi-compartment dendritic accumulation does within a core); Loihi 1 joins "
                           "compartments only within a core, so this idealizes layers whose fan-in exceeds "
                           "4,096 axons",
        "chip.cores": "Davies et al. 2018, IEEE Micro: 128 neuromorphic cores per chip",
        "chip.mesh": "assumed: 128 cores as an 8 x 16 grid of the on-chip mesh",
        "chip.chips": "assumed: a 32-chip board (Nahuku)",
        "precision.weight": "nengo-loihi discretize.py: 8-bit mixed-sign weights (even steps) scaled by "
                            "2^(6+wgtExp), wgtExp in [-7, 7]: mantissa * 2^[0, 14] in membrane units",
        "precision.threshold": "nengo-loihi discretize.py: vth = mantissa (17 bits) << 6",
        "precision.state": "nengo-loihi / lava: 24-bit signed membrane voltage",
        "precision.bias": "nengo-loihi discretize.py: 13-bit signed bias mantissa, 3-bit exponent",
        "neuron.leak": "Davies et al. 2018: v decays by decay_v / 4096 per step (12 bits); lava's bit-accurate "
                       "model truncates the product toward zero",
        "neuron.reset": "Loihi resets to zero; subtractive reset via 2 compartments (NxTF, Rueckauer et al. 2022)",
        "costs": "Davies et al. 2018 Table 2 (pre-silicon, 0.75 V): synaptic op 23.6 pJ / 3.5 ns, neuron update "
                 "81 pJ / 8.4 ns; hop: mean of E-W 3.0 and N-S 4.0 pJ, 4.1 and 6.5 ns",
        "costs.chip_hop_pj": "assumed: not published; 10x an on-chip hop",
        "costs.static_mw": "unverified, derived (TARGETS.md)",
    },
)
