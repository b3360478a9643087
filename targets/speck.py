"""SynSense DYNAP-CNN / Speck: 9 convolutional cores whose memories differ from core to core.

Figures from ``shared/TARGETS.md`` and sinabs ``backend/dynapcnn``: per-core kernel and
neuron memories (``chips/dynapcnn.py`` ``get_constraints``, ``mapping.py``), 8-bit
weights and 16-bit state with one scale per layer and no exponent (``discretize.py``),
reset to zero or by subtraction (``return_to_zero``). A core stores each conv kernel once
(``shared_kernel``), so its synapse memory is kernel entries x 8 weight bits. Resting power
from Yao et al. 2024 (Nature Communications); per-operation energies are not published
and are assumed.
"""

import math

from snnconv.targets.target import Chip, Core, Costs, Neuron, Precision, Target

KERNEL_ENTRIES = (16384, 16384, 16384, 32768, 32768, 65536, 65536, 16384, 16384)
NEURON_ENTRIES = (65536, 65536, 65536, 32768, 32768, 16384, 16384, 16384, 16384)
WEIGHT_BITS = 8

TARGET = Target(
    name="speck",
    description="SynSense DYNAP-CNN / Speck: 9 conv cores, 16K-64K neurons and kernel entries each, 8-bit weights",
    core=Core(neurons=NEURON_ENTRIES, input_axons=math.inf, output_axons=math.inf,
              synapse_memory_bits=tuple(entries * WEIGHT_BITS for entries in KERNEL_ENTRIES),
              synapse_cost="shared_kernel", row_overhead_bits=0, word_bits=1, fan_out=2, populations_per_core=1,
              accumulate=False),
    chip=Chip(cores=9, mesh=(3, 3), chips=1),
    precision=Precision(weight_bits=WEIGHT_BITS, weight_exponent=(0, 0), exponent_group="layer", threshold_bits=15,
                        threshold_shift=0, state_bits=16, bias_bits=8, bias_exponent=(0, 0)),
    neuron=Neuron(reset=("subtract", "zero"), subtract_compartments=1, spikes_per_step=1, leak=False),
    costs=Costs(synop_pj=10.0, neuron_update_pj=0.0, spike_hop_pj=5.0, chip_hop_pj=100.0, synop_ns=5.0,
                neuron_update_ns=0.0, spike_hop_ns=10.0, static_mw=0.42),
    sources={
        "core.neurons": "sinabs dynapcnn get_constraints: neuron memory entries per core 64K, 64K, 64K, 32K, 32K, "
                        "16K, 16K, 16K, 16K; sinabs pads a layer to f * 2^(ceil(log2 h) + ceil(log2 w)) entries, "
                        "which this count does not model",
        "core.synapse_memory_bits": "sinabs dynapcnn get_constraints: kernel memory entries per core 16K, 16K, 16K, "
                                    "32K, 32K, 64K, 64K, 16K, 16K, times 8 weight bits per entry; sinabs pads "
                                    "kernels to c * 2^(ceil(log2 kx*ky) + ceil(log2 f)) entries (not modeled)",
        "core.synapse_cost": "sinabs dynapcnn: each core runs one convolution whose kernel is stored once",
        "core.input_axons": "assumed: no axon count limit; a core's inputs are bounded by its kernel memory and by "
                            "fewer than 1,024 input channels (sinabs)",
        "core.output_axons": "assumed: no limit; a core's output is bounded by its destinations (fan_out)",
        "core.row_overhead_bits": "not used by shared_kernel cores (word_bits 1: no rounding)",
        "core.fan_out": "sinabs dynapcnn: a core sends to at most 2 destination layers",
        "core.populations_per_core": "sinabs dynapcnn: one convolutional layer (plus pooling) per core",
        "core.accumulate": "sinabs dynapcnn: a layer's input is never split across cores",
        "chip.cores": "sinabs dynapcnn: 9 cores (cnn_layers 0-8)",
        "chip.mesh": "assumed: any core can send to any core through the event router; a 3 x 3 grid stands in "
                     "for hop distances",
        "chip.chips": "assumed: one chip (a Speck or DYNAP-CNN dev kit); Speck does not chain chips",
        "precision.weight": "sinabs dynapcnn discretize.py: 8-bit signed weights, one scale per layer, no exponent",
        "precision.threshold": "sinabs dynapcnn discretize.py: threshold scaled into the 16-bit state range, so a "
                               "15-bit positive mantissa with no shift",
        "precision.state": "sinabs dynapcnn discretize.py: 16-bit signed membrane (min_v_mem -2^15)",
        "precision.bias": "sinabs dynapcnn discretize.py: bias discretized with the 8-bit weight precision, no "
                          "exponent; on chip it is added on the leak clock (leak_enable), not per step",
        "neuron.reset": "sinabs dynapcnn: return_to_zero false (MembraneSubtract, the default) or true",
        "neuron.spikes_per_step": "TARGETS.md: one spike per event per step",
        "neuron.leak": "sinabs dynapcnn: IAF neurons; its leak (leak_enable) adds a bias on a leak clock, no per-step decay of the membrane",
        "costs": "assumed: no per-operation figures published; synaptic event 10 pJ / 5 ns and hop 5 pJ / 10 ns "
                 "are order-of-magnitude guesses for a small digital event-driven chip",
        "costs.neuron_update_pj": "assumed: event-driven, a neuron is touched only by synaptic events (counted as "
                                  "synops), so no per-step update cost",
        "costs.chip_hop_pj": "assumed: one chip, so never used; 20x an on-chip hop",
        "costs.static_mw": "Yao et al. 2024, Nature Communications (abstract): 0.42 mW resting power",
    },
)
