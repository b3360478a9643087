"""The neuron room: every neuron model snnconv converts to, one module each.

A spiking population (``snnconv.ir.IF``) names its model in ``layer.model``; the
simulator, the overflow analysis, the ANN equivalent, the load-time check and the NIR
exporter ask the model (``of(layer)``) and hard-code none. A model owns:

- its step: ``integrate`` (leak and input current, in place) and ``fire`` (spikes and reset);
- its rate function, the ANN activation it approximates (``rate``);
- its overflow bounds (``membrane_bounds``) and the largest number a step computes (``work``);
- what a target must offer to run it (``unsupported``), and its NIR form (``nir``).

Models that fire several spikes per step (``multi_spike.MultiSpike``: graded, burst) take
the most per step from the population (``IF.spikes_per_step``); ``of`` returns the model
sized for it, and ``message_payload`` says how much one of its messages carries.

Adding a model is one module here (a ``NeuronModel`` subclass) and its line in ``MODELS``.
"""

from __future__ import annotations

from snnconv.errors import BadGraphError
from snnconv.neurons.burst import BurstIntegrateAndFire
from snnconv.neurons.graded import GradedIntegrateAndFire
from snnconv.neurons.integrate_fire import IntegrateAndFire
from snnconv.neurons.leaky import LeakyIntegrateAndFire
from snnconv.neurons.model import NeuronModel
from snnconv.neurons.multi_spike import MultiSpike

__all__ = ["NeuronModel", "MODELS", "names", "get", "of", "sized", "fires_several", "message_payload"]

MODELS: dict[str, NeuronModel] = {model.name: model for model in (IntegrateAndFire(), LeakyIntegrateAndFire(),
                                                                  GradedIntegrateAndFire(), BurstIntegrateAndFire())}


def names() -> tuple[str, ...]:
    return tuple(MODELS)


def get(name: str) -> NeuronModel:
    """The model called ``name``; an unknown name is a ``BadGraphError`` listing the known ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise BadGraphError(f"neuron model {name!r} is unknown; snnconv has {list(MODELS)}") from None


def sized(name: str, spikes_per_step: int | None) -> NeuronModel:
    """The model called ``name`` firing up to ``spikes_per_step`` per step (None: its default); a binary model
    given a number, or a number the model cannot fire, is a ``BadGraphError``."""
    model = get(name)
    if spikes_per_step is None:
        return model
    reason = _several(model, spikes_per_step).refused_count(spikes_per_step)
    if reason is not None:
        raise BadGraphError(reason)
    return model.sized(spikes_per_step)


def of(layer) -> NeuronModel:
    """The model of a spiking population, its parameters checked, sized for its ``spikes_per_step``."""
    model = get(layer.model)
    model.check(layer)  # a model firing several spikes checks the number too
    if layer.spikes_per_step is None:
        return model
    return _several(model, layer.spikes_per_step, f"layer {layer.name!r}: ").sized(layer.spikes_per_step)


def _several(model: NeuronModel, count: int, where: str = "") -> MultiSpike:
    """``model``, which must fire several spikes per step to be given a ``count`` of them."""
    if not isinstance(model, MultiSpike):
        several = [m.name for m in MODELS.values() if isinstance(m, MultiSpike)]
        raise BadGraphError(f"{where}neuron model {model.name!r} fires one spike per step; a number of spikes per "
                            f"step ({count}) is for {several}")
    return model


def fires_several(name: str) -> bool:
    """Whether the model called ``name`` may fire several spikes per step (its networks are scaled so that one
    step carries up to that many: ``passes/graded``)."""
    return isinstance(get(name), MultiSpike)


def message_payload(model: NeuronModel) -> int:
    """The most one message of ``model`` carries: a graded neuron's whole step, else one spike (a burst of ``G``
    spikes is ``G`` messages)."""
    return model.spikes_per_step if isinstance(model, MultiSpike) and model.one_message else 1
