"""A recurrent program's data: what ``snnconv.recurrent`` compiles, ``snnconv.artifact`` stores and
``snnconv.export`` writes to NIR (numpy only, so that the artifact and the exporters read it without the compiler).

The semantics (streaming, the K-step recurrent delay, the rectified carry, the output
windows) are ``snnconv.recurrent``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["POPULATIONS", "CoreUse", "RecurrentProgram", "SequenceResult", "StackedLayer"]

POPULATIONS = ("hidden", "output")  # what a core of a recurrent program holds


@dataclass(frozen=True)
class CoreUse:
    """One core: the population it holds, its neurons, and what it uses of the target's limits."""

    index: int
    population: str  # "hidden" or "output"
    neurons: tuple[int, int]  # [start, stop) of the population's neurons (hidden: numbered layer after layer)
    input_axons: int
    output_axons: int
    memory_bits: int
    routes: tuple[int, ...]  # cores its spikes go to (itself included for the recurrent synapses)


@dataclass(frozen=True, eq=False)
class StackedLayer:
    """A recurrent layer above the first (``torch.nn.RNN(num_layers > 1)``): it reads the spikes of the layer below
    in the same step through ``weight`` and its own through ``recurrent`` K steps later; ``bias`` is a constant
    host-written current (chip precision, already rounded to the bias format)."""

    weight: np.ndarray  # (H_l, H_{l-1}) chip weights, delay 0 (one exponent with ``recurrent``)
    bias: np.ndarray  # (H_l,)
    recurrent: np.ndarray  # (H_l, H_l) chip weights, delay steps_per_item
    threshold: float
    v_init: float


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
    upper: tuple[StackedLayer, ...] = ()  # the recurrent layers above the first, bottom to top; the head reads the top
    cores: tuple[CoreUse, ...] = ()
    notes: dict = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        """The first recurrent layer's neurons."""
        return len(self.recurrent)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Neurons per recurrent layer, bottom to top."""
        return (self.hidden, *(len(layer.recurrent) for layer in self.upper))

    @property
    def hidden_total(self) -> int:
        """All hidden neurons: the core table numbers them layer after layer (layer l from ``offsets[l]``)."""
        return sum(self.sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        sizes = self.sizes
        return tuple(sum(sizes[:i]) for i in range(len(sizes)))


@dataclass
class SequenceResult:
    """Per-item and final outputs of a streamed run, with spike counts and saturations."""

    item_outputs: np.ndarray  # (N, L, C): each item's window integral as logits
    spikes: np.ndarray  # (N, L): hidden spikes per item (all layers)
    saturations: int  # membrane updates clipped to the state bits
    neuron_spikes: np.ndarray | None = None  # (N, H_total): each hidden neuron's spikes over the sequence (traffic)

    @property
    def outputs(self) -> np.ndarray:
        return self.item_outputs[:, -1]

    @property
    def predictions(self) -> np.ndarray:
        return self.outputs.argmax(axis=1)
