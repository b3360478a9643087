"""Legalize reset: give every IF population a reset the target has.

Conversion needs reset by subtraction: the charge above the threshold carries over, so
the spike count tracks the integrated input to within one spike. A chip that only
resets to zero (Loihi 1) loses that residue at every spike. Two ways out:

- ``mode="emulate"`` (default): keep subtractive semantics and pay for them in neurons:
  each neuron takes ``target.neuron.subtract_compartments`` compartments (NxTF's
  two-compartment construction on Loihi), which partitioning counts;
- ``mode="zero"``: reset to zero, at no extra neurons, losing accuracy at small T
  (``benchmarks/accuracy.py --resets`` measures how much).

Targets with a native subtractive reset are left alone. Every target emits at most one
spike per neuron per step, as the IF model does (Speck's one-spike-per-step rule), so
no legalization is needed there; a target that cannot emit one is refused.
"""

from __future__ import annotations

import dataclasses
import math

from snnconv.errors import BadTargetError
from snnconv.ir import IF, Graph
from snnconv.ir.rewrite import PassResult
from snnconv.targets.target import Target

__all__ = ["LegalizeReset", "MODES"]

MODES = ("emulate", "zero")


class LegalizeReset:
    name = "legalize_reset"

    def __init__(self, target: Target, mode: str = "emulate"):
        if mode not in MODES:
            raise ValueError(f"reset mode must be one of {MODES}, got {mode!r}")
        self.target = target
        self.mode = mode

    def run(self, graph: Graph) -> PassResult:
        neuron = self.target.neuron
        if "subtract" in neuron.reset:
            return PassResult(graph, False, {"reset": "subtract (native)"})
        if "zero" not in neuron.reset:
            raise BadTargetError(f"target {self.target.name!r} lists no reset snnconv can use "
                                 f"({list(neuron.reset)}); give it 'subtract' or 'zero'")
        layers, changed = [], 0
        for layer in graph:
            if isinstance(layer, IF) and layer.reset == "subtract":
                layer = dataclasses.replace(layer, compartments=neuron.subtract_compartments) \
                    if self.mode == "emulate" else dataclasses.replace(layer, reset="zero")
                changed += 1
            layers.append(layer)
        notes = {"reset": "subtract (emulated)" if self.mode == "emulate" else "zero", "layers": changed}
        if self.mode == "emulate":
            notes["extra_compartments"] = sum(math.prod(layer.shape) * (layer.compartments - 1)
                                              for layer in layers if isinstance(layer, IF))
        return PassResult(graph.rebuilt(layers), bool(changed), notes)
