"""What every neuron model provides, and the spike-and-reset that today's models share.

Models are stateless: a population's parameters live on its layer (``threshold``,
``reset``, ``v_init``, ``state_bits``, ``decay``), its membranes in the simulator. All
arithmetic is on tensors in place, in the dtype the simulator runs (at a chip's
precision every value is an integer, exact in that dtype: see ``work``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NeuronModel"]


class NeuronModel:
    """A neuron model: subclasses set ``name`` and ``description`` and override what differs."""

    name: str = ""
    description: str = ""
    spikes_per_step: int = 1  # the most spikes a neuron emits in one step (a target states what it carries)

    def check(self, layer) -> None:
        """Refuse parameters this model cannot run (``BadGraphError``); the IR has checked their types."""

    def unsupported(self, target) -> str | None:
        """Why ``target`` cannot run this model, or None when it can."""
        if target.neuron.spikes_per_step < self.spikes_per_step:
            return (f"target {target.name!r} carries {target.neuron.spikes_per_step} spike(s) per neuron and step; "
                    f"neuron model {self.name!r} emits up to {self.spikes_per_step}")
        return None

    def initial(self, layer) -> np.ndarray:
        """The membrane at step 0: ``v_init * threshold``, an integer at a chip's precision."""
        v = np.asarray(layer.v_init, np.float64) * layer.threshold
        return np.round(v) if layer.state_bits is not None else v

    def integrate(self, layer, v, current) -> None:
        """One step's input (and leak) into the membranes ``v``, in place."""
        v.add_(current)

    def run(self, layer, v, currents, outs) -> None:
        """Steps in turn: each of ``currents`` integrated into ``v``, its spikes fired into the matching ``outs``.

        The simulator calls this for a chunk when no step needs watching (no probe, no
        saturation possible): a model may replace the loop by something faster, exactly.
        """
        for current, out in zip(currents, outs):
            self.integrate(layer, v, current)
            self.fire(layer, v, out)

    def run_constant(self, layer, v, current, spikes) -> None:
        """``run`` with the same ``current`` at every step, its spikes into ``spikes`` (steps, *v's shape).

        The simulator calls this for a population fed only by the constant input (the first
        layer under constant-current input): a model may solve these steps in closed form, exactly.
        """
        self.run(layer, v, [current] * len(spikes), spikes.unbind(0))

    def fire(self, layer, v, out) -> None:
        """Spike (1) where ``v >= threshold`` into ``out`` (v's shape and dtype), then reset, in place."""
        theta = layer.threshold
        out.copy_(v).ge_(theta)  # in out's dtype: no boolean tensor in between (twice as fast at batch 1)
        if layer.reset == "subtract":
            v.sub_(out, alpha=theta)
        else:
            v.mul_(1.0 - out)

    def rate(self, layer, x):
        """The spike rate a constant input current ``x`` per step approaches: the ANN activation."""
        return (x / layer.threshold).clamp(0.0, 1.0)

    def membrane_bounds(self, layer, lo, hi, v0, timesteps: int):
        """Per-neuron (lower, upper) of the membrane over ``timesteps`` steps, with current in [lo, hi] per step.

        At most ``P = spikes_per_step`` spikes per step remove at most ``P theta``, and nothing below
        the threshold is removed: upper ``max(theta - 1 + hi, v0 + hi + (T - 1) * max(0, hi - P theta))``
        with subtractive reset, ``max(theta - 1, v0) + hi`` with reset to zero; lower
        ``min(0, v0) + T * min(0, lo)``.
        """
        theta = layer.threshold
        if layer.reset == "subtract":
            drained = self.spikes_per_step * theta
            upper = (theta - 1 + hi).maximum(v0 + hi + (timesteps - 1) * (hi - drained).clamp(min=0))
        else:
            upper = v0.clamp(min=theta - 1) + hi
        lower = v0.clamp(max=0) + timesteps * lo.clamp(max=0)
        return lower, upper

    def work(self, layer, membrane: float) -> float:
        """The largest magnitude a step computes when membranes stay within ``membrane``."""
        return membrane

    def nir(self, layer, nir, v_threshold: np.ndarray, metadata: dict):
        """The NIR node for the population, and what NIR's form says differently (notes)."""
        shape = v_threshold.shape
        node = nir.IF(r=np.ones(shape, np.float32), v_threshold=v_threshold, v_reset=np.zeros(shape, np.float32),
                      metadata=metadata)
        return node, []
