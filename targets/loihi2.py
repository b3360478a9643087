"""Intel Loihi 2: programmable neurons, so subtractive reset costs no extra compartment.

Figures from ``shared/TARGETS.md``: cores, neurons and memory per core from Intel's Loihi 2
technology brief (2021); number formats from lava's bit-accurate models (``proc/dense``:
8-bit weights shifted by a shared ``weight_exp``; ``proc/lif``: 24-bit state, 17-bit
threshold << 6, 13-bit bias with a 3-bit exponent), the formats Loihi 1 has too. Per-core
axon and row formats and all energies are not published: Loihi 1's stand in, and each is
marked "assumed" in ``sources``.
"""

import math

from snnconv.targets.target import Chip, Core, Costs, Neuron, Precision, Target

GRADED_PAYLOAD_MAX = 2**16 - 1  # graded spikes: 32-bit payloads, capped at what the target field holds

TARGET = Target(
    name="loihi2",
    description="Intel Loihi 2: 128 cores/chip, 8,192 neurons/core, 192 KB/core, programmable (subtractive) reset",
    core=Core(neurons=8192, input_axons=4096, output_axons=4096, synapse_memory_bits=128 * 1024 * 8,
              synapse_cost="per_synapse", row_overhead_bits=10, word_bits=64, fan_out=math.inf,
              populations_per_core=8, accumulate=True),
    chip=Chip(cores=128, mesh=(8, 16), chips=8),
    precision=Precision(weight_bits=8, weight_exponent=(0, 14), exponent_group="channel", threshold_bits=17,
                        threshold_shift=6, state_bits=24, bias_bits=13, bias_exponent=(0, 7)),
    neuron=Neuron(reset=("subtract", "zero"), subtract_compartments=1, spikes_per_step=GRADED_PAYLOAD_MAX,
                  leak=True),
    costs=Costs(synop_pj=23.6, neuron_update_pj=81.0, spike_hop_pj=3.5, chip_hop_pj=35.0, synop_ns=3.5,
                neuron_update_ns=8.4, spike_hop_ns=5.3, static_mw=104.0),
    sources={
        "core": "Intel Loihi 2 technology brief (2021): up to 8,192 neurons per core, 192 KB of memory per core "
                "shared by neuron state, synapses and routing",
        "core.synapse_memory_bits": "assumed: 128 KiB of the 192 KB for synapses (Loihi 1's synapse memory); the "
                                    "rest holds 8,192 neurons' state (2 x 24 bits each = 48 KiB) and axon tables",
        "core.input_axons": "assumed: Loihi 1's 4,096 (nengo-loihi block.py); Loihi 2 allocates axon tables from "
                            "the shared memory and publishes no fixed limit",
        "core.output_axons": "assumed: Loihi 1's 4,096, as for input axons",
        "core.fan_out": "assumed: no limit on the cores a core sends to beyond its output axons",
        "core.synapse_cost": "assumed: Loihi 1's row format (nengo-loihi bits_per_axon: n * bits + 4 + 6, rounded "
                             "to 64-bit words); Loihi 2's compressed synapse formats are not published",
        "core.populations_per_core": "assumed: Loihi 1's 8 neuron/synapse configurations per core (TARGETS.md)",
        "core.accumulate": "assumed: a neuron's input split across cores is summed exactly in the same step (as "
                           "for loihi: an idealization of multi-compartment dendritic accumulation)",
        "chip.cores": "Intel Loihi 2 technology brief (2021): 128 neuromorphic cores per chip",
        "chip.mesh": "press report of the Loihi 2 launch (fbhtechinfo.com, 2021): 128 cores in an 8 x 16 mesh; "
                     "unverified against Intel",
        "chip.chips": "assumed: an 8-chip Kapoho Point board",
        "precision.weight": "lava proc/dense PyDenseModelBitAcc: 8-bit weights (sign included) shifted by a shared "
                            "weight_exp, LIF input shifted by 6; assumed: Loihi 1's exponent range [-7, 7], i.e. "
                            "mantissa * 2^[0, 14] in membrane units",
        "precision.exponent_group": "TARGETS.md: 8-bit weights with a shared exponent per synapse group (channel)",
        "precision.threshold": "lava proc/lif bit-accurate model: vth mantissa (17 bits) << 6",
        "precision.state": "lava proc/lif bit-accurate model: 24-bit signed u and v",
        "precision.bias": "lava proc/lif bit-accurate model: 13-bit signed bias mantissa, 3-bit exponent",
        "neuron.leak": "lava proc/lif bit-accurate model: dv, 12 bits, as Loihi 1",
        "neuron.reset": "Intel Loihi 2 technology brief: microcoded neuron models, so reset by subtraction runs in "
                        "one compartment; reset to zero also available",
        "neuron.spikes_per_step": "Intel Loihi 2 technology brief (2021): graded spikes with up to 32-bit integer "
                                  "payloads (typically 8 bits used), so a neuron sends up to 2^32 - 1 per step in "
                                  "one message; stated as 65,535 (16 bits), the most snnconv's field holds: neuron "
                                  "model 'graded' sends 8-bit payloads",
        "costs": "assumed: Loihi 1's pre-silicon figures (Davies et al. 2018, Table 2) as a stand-in; Intel "
                 "publishes no verified per-operation energy or time for Loihi 2",
        "costs.chip_hop_pj": "assumed: not published; 10x an on-chip hop (as for loihi)",
        "costs.static_mw": "assumed: Loihi 1's 104 mW (itself unverified, derived)",
    },
)
