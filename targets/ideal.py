"""An ideal chip: float arithmetic and no resource limits, the reference a real target is measured against.

Converting for it keeps weights, thresholds and biases in float (``weight_bits = 0``), so
any accuracy lost on a real chip is quantization or mapping, not conversion. One core of
unlimited size holds the whole network; operations cost nothing.
"""

import math

from snnconv.targets.target import Chip, Core, Costs, Neuron, Precision, Target

TARGET = Target(
    name="ideal",
    description="Ideal reference: float weights and state, unlimited cores, no costs",
    core=Core(neurons=math.inf, input_axons=math.inf, output_axons=math.inf, synapse_memory_bits=math.inf,
              synapse_cost="per_synapse", row_overhead_bits=0, word_bits=1, fan_out=math.inf,
              populations_per_core=math.inf, accumulate=True),
    chip=Chip(cores=1, mesh=(1, 1), chips=1),
    precision=Precision(weight_bits=0, weight_exponent=(0, 0), exponent_group="layer", threshold_bits=32,
                        threshold_shift=0, state_bits=64, bias_bits=32, bias_exponent=(0, 0)),
    neuron=Neuron(reset=("subtract", "zero"), subtract_compartments=1, spikes_per_step=1, leak=True),
    costs=Costs(synop_pj=0.0, neuron_update_pj=0.0, spike_hop_pj=0.0, chip_hop_pj=0.0, synop_ns=0.0,
                neuron_update_ns=0.0, spike_hop_ns=0.0, static_mw=0.0),
    sources={
        "core": "ideal: no limits (inf); row_overhead_bits 0 and word_bits 1 so a synapse costs only its weight",
        "chip": "ideal: one unlimited core on one chip",
        "precision": "ideal: weight_bits 0 means float; the integer fields are required by the format and ignored",
        "neuron": "ideal: both resets, one spike per step, leaky neurons available",
        "costs": "ideal: no costs",
    },
)
