"""SpiNNaker 2: 152 ARM Cortex-M4F processing elements per chip, neurons in software.

Figures from ``shared/TARGETS.md``: 152 PEs (148 usable) with 128 kB SRAM each (Höppner
et al. 2021, the PE architecture paper; Gonzalez et al. 2024). Neuron and synapse formats
follow sPyNNaker's for SpiNNaker 1 (one 32-bit word per synapse holding a 16-bit weight;
32-bit fixed-point state), the software SpiNNaker 2 inherits. Neurons per core, memory
shares and all costs are assumptions, marked so in ``sources``. Memory fields count
weight bits: a 32-bit synapse word holds 16 weight bits, so each size is half its real bits.
"""

import math

from snnconv.targets.target import Chip, Core, Costs, Neuron, Precision, Target

GRADED_PAYLOAD_MAX = 2**16 - 1  # graded spikes: 32-bit payloads, capped at what the target field holds

SYNAPSE_SRAM_BYTES = 96 * 1024  # of the PE's 128 kB
WEIGHT_BITS = 16
WORD_BITS = 32  # one synapse per word: 16-bit weight + delay, type and index bits

TARGET = Target(
    name="spinnaker2",
    description="SpiNNaker 2: 148 usable ARM PEs/chip, 128 kB SRAM each, 16-bit weights, 32-bit fixed-point state",
    core=Core(neurons=256, input_axons=math.inf, output_axons=math.inf,
              synapse_memory_bits=SYNAPSE_SRAM_BYTES * 8 * WEIGHT_BITS // WORD_BITS, synapse_cost="per_synapse",
              row_overhead_bits=3 * WEIGHT_BITS, word_bits=WEIGHT_BITS, fan_out=math.inf, populations_per_core=1,
              accumulate=True),
    chip=Chip(cores=148, mesh=(8, 19), chips=48),
    precision=Precision(weight_bits=WEIGHT_BITS, weight_exponent=(0, 0), exponent_group="layer", threshold_bits=30,
                        threshold_shift=0, state_bits=32, bias_bits=32, bias_exponent=(0, 0)),
    neuron=Neuron(reset=("subtract", "zero"), subtract_compartments=1, spikes_per_step=GRADED_PAYLOAD_MAX,
                  leak=True),
    costs=Costs(synop_pj=10.0, neuron_update_pj=50.0, spike_hop_pj=5.0, chip_hop_pj=100.0, synop_ns=33.0,
                neuron_update_ns=170.0, spike_hop_ns=10.0, static_mw=100.0),
    sources={
        "core.neurons": "assumed: sPyNNaker's default of 256 neurons per core on SpiNNaker 1 (TARGETS.md); "
                        "py-spinnaker2's limit was not verified",
        "core.synapse_memory_bits": "assumed: 96 kB of the PE's 128 kB SRAM (Höppner et al. 2021) for synapse "
                                    "rows, the rest for code, neuron state and buffers; 96 kB of 32-bit synapse "
                                    "words is 24,576 synapses, stated as 24,576 x 16 weight bits",
        "core.synapse_cost": "sPyNNaker (SpiNNaker 1): one 32-bit word per synapse with a 16-bit weight, so a word "
                             "(word_bits) is 16 weight bits here; assumed: 3 header words per row "
                             "(row_overhead_bits 3 x 16)",
        "core.input_axons": "assumed: no fixed limit; sources are looked up in a population table and bounded by "
                            "synapse memory",
        "core.output_axons": "assumed: no limit; spikes are multicast packets routed by key",
        "core.fan_out": "assumed: no limit (multicast routing)",
        "core.populations_per_core": "sPyNNaker: a core runs a slice of one population",
        "core.accumulate": "sPyNNaker (SpiNNaker 1) splits a population into synapse cores feeding one neuron "
                           "core, which sums their inputs; assumed: the same software on SpiNNaker 2",
        "chip.cores": "TARGETS.md: 152 processing elements per chip, 148 usable",
        "chip.mesh": "assumed: the 152 PEs (38 quad-PEs) as an 8 x 19 grid; the real network-on-chip routes "
                     "between quad-PEs",
        "chip.chips": "assumed: a 48-chip board",
        "precision.weight": "sPyNNaker (SpiNNaker 1): 16-bit weights; TARGETS.md: no shared exponent",
        "precision.threshold": "assumed: any 30-bit threshold, leaving the membrane one bit of headroom above it",
        "precision.state": "sPyNNaker: 32-bit fixed-point (s16.15 accum) membrane",
        "precision.bias": "sPyNNaker: i_offset is a 32-bit fixed-point accum",
        "neuron.leak": "neurons are software: a leaky model is an exponential decay per step (sPyNNaker's LIF)",
        "neuron.reset": "neurons are software on an ARM core: reset by subtraction or to zero",
        "neuron.spikes_per_step": "SpiNNaker multicast packets carry an optional 32-bit payload, which sPyNNaker "
                                  "uses as a spike count (Poisson sources sending several spikes in one step; "
                                  "spinnakerusers list, A. Rowley); SpiNNaker 2 keeps the packet format and its "
                                  "papers name graded spikes (unverified here); stated as 65,535 (16 bits), the "
                                  "most snnconv's field holds: neuron model 'graded' sends 8-bit payloads",
        "costs": "assumed: no verified per-operation figures; synaptic event 10 pJ, the order quoted for SpiNNaker 2 "
                 "prototypes (Mayr et al. 2019), about 10 cycles (33 ns) at 300 MHz; neuron update about 50 "
                 "cycles; hop 5 pJ / 10 ns",
        "costs.chip_hop_pj": "assumed: 20x an on-chip hop",
        "costs.static_mw": "assumed: 100 mW per chip idling with body biasing; not published",
    },
)
