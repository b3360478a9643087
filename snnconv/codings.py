"""The codings ``snnconv eval`` compares: a neuron model with the options that belong to it.

``evaluate(..., neuron="if,graded", payload_bits=4)`` (``snnconv eval --neuron if,graded
--payload-bits 4``) scores rate-coded IF and 4-bit graded spikes side by side. A neuron's
own option goes to that model only (``PARAMETERS``: ``decay`` to "lif", ``payload_bits``
to "graded", ``burst`` to "burst"); one given for a model not asked for goes to every
coding, so that ``compile`` refuses it as it would alone. Everything else (percentile,
reset, tune, ...) is common to all codings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnconv import neurons
from snnconv import options as valid

__all__ = ["PARAMETERS", "Coding", "parse"]

PARAMETERS = {"decay": "lif", "payload_bits": "graded", "burst": "burst"}  # a neuron's option -> its model


@dataclass(frozen=True)
class Coding:
    """One neuron model and its own compile options (``decay``, ``payload_bits``, ``burst``)."""

    neuron: str
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How tables and plots name it: the model, with the parameter that sets its cost (defaults filled in)."""
        if self.neuron == "graded":
            return f"graded {valid.payload_bits(self.options.get('payload_bits'), 'graded')}-bit"
        if self.neuron == "burst":
            return f"burst G={valid.burst(self.options.get('burst'), 'burst')}"
        if self.neuron == "lif":
            return f"lif {valid.decay(self.options.get('decay'), 'lif')}/4096"
        return self.neuron


def parse(neuron, options: dict) -> tuple[list[Coding], dict]:
    """The codings asked for (``neuron``: a name, "if,graded", or a list of names), and the options common to
    all; ``options`` are ``compile``'s keywords."""
    names = valid.choices(neuron, "neuron", neurons.names())
    own = {key: value for key, value in options.items() if key in PARAMETERS and PARAMETERS[key] in names}
    common = {key: value for key, value in options.items() if key not in own}
    return [Coding(name, {key: value for key, value in own.items() if PARAMETERS[key] == name})
            for name in names], common
