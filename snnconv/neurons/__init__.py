"""The neuron room: every neuron model snnconv converts to, one module each.

A spiking population (``snnconv.ir.IF``) names its model in ``layer.model``; the
simulator, the overflow analysis, the ANN equivalent, the load-time check and the NIR
exporter ask the model (``of(layer)``) and hard-code none. A model owns:

- its step: ``integrate`` (leak and input current, in place) and ``fire`` (spikes and reset);
- its rate function, the ANN activation it approximates (``rate``);
- its overflow bounds (``membrane_bounds``) and the largest number a step computes (``work``);
- what a target must offer to run it (``unsupported``), and its NIR form (``nir``).

Adding a model is one module here (a ``NeuronModel`` subclass) and its line in ``MODELS``.
"""

from __future__ import annotations

from snnconv.errors import BadGraphError
from snnconv.neurons.graded import GradedIntegrateAndFire
from snnconv.neurons.integrate_fire import IntegrateAndFire
from snnconv.neurons.leaky import LeakyIntegrateAndFire
from snnconv.neurons.model import NeuronModel

__all__ = ["NeuronModel", "MODELS", "names", "get", "of"]

MODELS: dict[str, NeuronModel] = {model.name: model for model in (IntegrateAndFire(), LeakyIntegrateAndFire(),
                                                                  GradedIntegrateAndFire())}


def names() -> tuple[str, ...]:
    return tuple(MODELS)


def get(name: str) -> NeuronModel:
    """The model called ``name``; an unknown name is a ``BadGraphError`` listing the known ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise BadGraphError(f"neuron model {name!r} is unknown; snnconv has {list(MODELS)}") from None


def of(layer) -> NeuronModel:
    """The model of a spiking population, its parameters checked."""
    model = get(layer.model)
    model.check(layer)
    return model
