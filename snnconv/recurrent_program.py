"""A recurrent program's data: what ``snnconv.recurrent`` compiles, ``snnconv.artifact`` stores and
``snnconv.export`` writes to NIR (numpy only, so that the artifact and the exporters read it without the compiler).

The semantics (streaming, the K-step recurrent delay, the rectified carry, the output
windows) are ``snnconv.recurrent``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["POPULATIONS", "CoreUse", "RecurrentProgram", "SequenceResult"]

POPULATIONS = ("hidden", "output")  # what a core of a recurrent program holds


@dataclass(frozen=True)
class CoreUse:
    """One core: the population it holds, its neurons, and what it uses of the target's limits."""

    index: int
    population: str  # "hidden" or "output"
    neurons: tuple[int, int]  # [start, stop) of the population's neurons
    input_axons: int
    output_axons: int
    memory_bits: int
    routes: tuple[int, ...]  # cores its spikes go to (itself included for the recurrent synapses)


@dataclass(frozen=True, eq=False)
class RecurrentProgram:
    """A recurrent network at a chip's precision (or in float, ``target=None``) and its core map."""

    target: str | None
    steps_per_item: int
    items: int
    input_weight: np.ndarray  # (H, F): host current per item is round_bias(input_weight @ x_t + input_bias)
    input_bias: np.ndarray  # (H,)
    recurrent: np.ndarray  # (H, H) chip weights, delay steps_per_item
    threshold: float
    v_init: float  # the initial membrane (absolute)
    output_weight: np.ndarray  # (C, H)
    output_bias: np.ndarray  # (C,) host-written bias of the integrators, every step
    output_scale: float  # logits = window integral * output_scale / steps_per_item
    state_bits: int | None  # signed saturating membrane bits; None: float
    bias_format: tuple[int, int, int] | None  # (bits, smallest exponent, largest exponent) of host currents
    compartments: int = 1  # per hidden neuron (2 where subtractive reset is emulated)
    cores: tuple[CoreUse, ...] = ()
    notes: dict = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return len(self.recurrent)


@dataclass
class SequenceResult:
    """Per-item and final outputs of a streamed run, with spike counts and saturations."""

    item_outputs: np.ndarray  # (N, L, C): each item's window integral as logits
    spikes: np.ndarray  # (N, L): hidden spikes per item
    saturations: int  # membrane updates clipped to the state bits
    neuron_spikes: np.ndarray | None = None  # (N, H): each hidden neuron's spikes over the sequence (traffic)

    @property
    def outputs(self) -> np.ndarray:
        return self.item_outputs[:, -1]

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(axis=1)
