"""Graded: scale a spiking network of graded (or burst) neurons so that one step carries the quantized activation.

After ``spike`` every population has threshold 1 and the network is the normalized ANN:
a neuron's constant input current ``c`` is its activation in threshold units, ``c`` in
[0, 1] over the calibration range. A graded neuron (``snnconv.neurons.graded``) sends
``floor(v / theta)`` spikes, up to ``P``, as one message. ReLU is positively homogeneous,
so multiplying the network input's current and every bias by ``P`` multiplies every
pre-activation by ``P``: the neuron then sends ``floor(c P + v0)``, its activation
quantized to ``P`` levels, in the first step, and the next layer, which receives payloads
``0..P`` through unchanged weights, sees ``P`` times its own ANN current in that same
step. Over ``T`` steps the payload sums approach ``c P T``.

What the pass does, layer by layer in order, tracking whether a value is in the ANN's
units (factor 1: the input and what is computed from it alone) or ``P`` times them
(payloads, and everything computed from them):

- conv / dense / affine: weights (affine scale) times ``P / factor of its input``, bias
  (affine shift) times ``P``: the output is ``P`` times the ANN's;
- pooling, flatten, pad, add, concat: no weights, linear and homogeneous; their inputs
  must share one factor (a sum of the raw input and a payload is refused);
- a population must receive ``P`` times its ANN current (a ReLU applied to the raw input,
  with no weighted layer between, is refused: there is nothing to scale);
- the output integrator receives ``P`` times the logits, so ``output.scale`` is divided
  by ``P``: reported outputs stay in the ANN's units, and the argmax is unchanged.

Thresholds stay 1 and ``v_init`` stays a fraction of the threshold; ``quantize`` then
picks integer thresholds from the overflow analysis, which bounds a graded population's
readers with ``[0, P]`` per step (``snnconv.overflow``), so weights, thresholds and
membranes stay within the chip's bits. Run after ``spike``, before tuning and bias
correction (both then see the graded dynamics), only for graphs whose populations are all
graded.

Burst neurons (``snnconv.neurons.burst``, ``Graded("burst")``) fire by the same rule,
up to ``G`` binary spikes per step, and are scaled the same way with ``P = G``: a neuron
then fires ``floor(c G + v0)`` spikes in the first step, so in ``T`` steps the spike
counts resolve ``G T`` levels, as rate coding's do in ``G T`` steps, with as many spikes
(each a message) but ``G`` times fewer steps. Unscaled (thresholds at the activation's
ceiling) a burst neuron rarely holds more than one threshold and fires as IF does: on the
Fashion VGG at T = 4, 88.3% against IF's 88.1%; scaled, 92.3% (``benchmarks/codings.py``).
A network trained with QCFS at ``L <= P`` levels (fact ``qcfs_levels``) is scaled by ``L``
instead and its graded populations capped at ``L`` (``_levels``): one step then sends the
trained activations themselves. The graph fact ``graded`` holds the scale ``P`` (or ``G``,
or ``L``) for either model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnconv import neurons
from snnconv.errors import BadGraphError, UnsupportedOpError
from snnconv.geometry import host_computed
from snnconv.ir import IF, Affine, Conv, Dense, Graph, Input, Output, Pool
from snnconv.ir.rewrite import PassResult, rewire

__all__ = ["Graded"]


class Graded:
    name = "graded"

    def __init__(self, model: str = "graded"):
        self.model = model

    def run(self, graph: Graph) -> PassResult:
        if not graph.fact("spiking"):
            raise BadGraphError(f"graph {graph.name!r} is not spiking; run the spike pass before graded")
        if graph.fact("graded"):
            raise BadGraphError(f"graph {graph.name!r} is already scaled for graded spikes")
        most = self._payload(graph)
        payload = _levels(graph, most) if self.model == "graded" else most
        factor: dict[str, float] = {}
        layers, scaled = [], []
        for layer in graph:
            if isinstance(layer, Input):
                factor[layer.name] = 1.0
                layers.append(layer)
                continue
            ins = {factor[src] for src in layer.inputs}
            if len(ins) != 1:
                raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}) combines the network input with "
                                         f"spikes without weights between; graded spikes cannot scale it: use "
                                         f"neuron 'if'")
            before = ins.pop()
            if isinstance(layer, (Conv, Dense)):
                layer = dataclasses.replace(layer, weight=_times(layer.weight, payload / before),
                                            bias=_times(layer.bias, payload))
                scaled.append(layer.name)
                factor[layer.name] = payload
            elif isinstance(layer, Affine):
                layer = dataclasses.replace(layer, scale=_times(layer.scale, payload / before),
                                            shift=_times(layer.shift, payload))
                scaled.append(layer.name)
                factor[layer.name] = payload
            elif isinstance(layer, (IF, Output)):
                if isinstance(layer, IF) and payload != most:
                    layer = dataclasses.replace(layer, spikes_per_step=payload)
                if before != payload:
                    raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}) reads the network input with no "
                                             f"weighted layer between; graded spikes cannot scale its current: use "
                                             f"neuron 'if'")
                if isinstance(layer, Output):
                    layer = dataclasses.replace(layer, scale=layer.scale / payload)
                factor[layer.name] = payload
            else:  # pooling, flatten, pad, add, concat: linear, homogeneous, no bias
                factor[layer.name] = before
            layers.append(layer)
        notes = {"payload_max": payload, "payload_bits": most.bit_length(), "scaled_layers": scaled,
                 "output_scale": f"divided by {payload}: outputs in the ANN's units"}
        if payload != most:
            notes["qcfs_levels"] = (f"the network was trained with QCFS at L = {payload}: scaled by L and capped at L "
                                    f"(within the {most.bit_length()}-bit payload, up to {most}), its trained "
                                    f"quantization")
        return PassResult(graph.rebuilt(layers, graded=payload), True, notes)

    def _payload(self, graph: Graph) -> int:
        """``P``, the largest payload, which every population must share (each is scaled by it)."""
        populations = [layer for layer in graph if isinstance(layer, IF)]
        others = sorted({layer.model for layer in populations if layer.model != self.model})
        if others:
            raise BadGraphError(f"graph {graph.name!r}: the graded pass scales networks of {self.model!r} neurons; "
                                f"found {others}")
        payloads = sorted({neurons.of(layer).spikes_per_step for layer in populations})
        if len(payloads) > 1:
            raise BadGraphError(f"graph {graph.name!r}: the graded pass scales by one payload maximum; the "
                                f"populations send up to {payloads}")
        return payloads[0] if payloads else neurons.get(self.model).spikes_per_step


def _levels(graph: Graph, most: int) -> int:
    """The payload a graded network is scaled by and capped at: ``P``, or ``L`` for a network trained with QCFS at
    ``L <= P`` levels (graph fact ``qcfs_levels``).

    A QCFS layer computes ``lambda clip(floor(x L / lambda + 1/2), 0, L) / L``
    (``snnconv.training``); a graded neuron scaled by ``L``, capped at ``L`` and started at
    half its threshold sends ``clip(floor(c L + 1/2), 0, L)`` in its first step, ``c = x /
    lambda``: the trained activation exactly, so one step runs the trained ANN (up to the
    chip's integer weights). Scaled by ``P`` instead it would requantize every activation to
    ``P`` levels, neither the trained net nor its ReLU ceiling. ``P >= L`` is what the
    payload must hold (``payload_bits >= log2(L + 1)``); with fewer bits ``P`` stays.
    """
    levels = graph.fact("qcfs_levels")
    return levels if levels and levels < most else most


def _times(array: np.ndarray, factor: float) -> np.ndarray:
    return (np.asarray(array, np.float64) * factor).astype(np.asarray(array).dtype)


class GradeRelays:
    """Give every average pool of a graded (or burst) network its own neurons of that model ("relays").

    ``legalize_fan_in`` inserts a relay population after an average pool whose readers'
    fan-in exceeds a core's axons (of the model of the neurons the pool reads, model "if"
    where it finds none); it passes the pool's mean on. In a graded network that mean is up
    to ``P`` per step, which a binary relay would cap at 1, so any binary relay becomes
    graded. And every other average pool of spikes gets one too: without it,
    each of the ``k x k`` neurons of a window sends its message to every synapse of the
    layer after the pool (the pool is folded into those weights), ``k^2`` times the ANN's
    multiply-accumulates; with it, one synapse per message into the pool's neurons, which
    send ``floor(mean)`` (plus the carried residue) once per window. A graded relay rounds
    to one level in ``P`` (the residue carries over), against the binary relay's one spike
    in ``T``. Run after ``legalize_fan_in`` on a graph the graded pass scaled (fact
    ``graded``, the payload maximum ``P`` the relays send too).
    """

    name = "grade_relays"

    def run(self, graph: Graph) -> PassResult:
        payload = graph.fact("graded")
        if not payload:
            raise BadGraphError(f"graph {graph.name!r} is not scaled for graded spikes; run the graded pass first")
        model = _scaled_model(graph)
        graded = [layer.name for layer in graph if isinstance(layer, IF) and layer.model == "if"]
        layers = [dataclasses.replace(layer, model=model, spikes_per_step=payload) if layer.name in graded
                  else layer for layer in graph]
        host, added = host_computed(graph), []
        for pool in graph:
            if not (isinstance(pool, Pool) and pool.mode == "avg") or pool.name in host:
                continue
            if all(isinstance(reader, IF) for reader in graph.consumers(pool.name)):
                continue  # already relayed
            relay = IF(name=f"{pool.name}/neurons", inputs=(pool.name,), shape=pool.shape, model=model,
                       threshold=1.0, reset="subtract", v_init=0.5, spikes_per_step=payload)
            layers = rewire(layers, pool.name, relay.name) + [relay]
            added.append(pool.name)
        changed = bool(graded or added)
        return PassResult(graph.rebuilt(layers) if changed else graph, changed,
                          {"relays_made_graded": graded, "pools_relayed": added})


def _scaled_model(graph: Graph) -> str:
    """The model the graded pass scaled the network's populations for (graded or burst; relays are "if")."""
    models = sorted({layer.model for layer in graph if isinstance(layer, IF) and neurons.fires_several(layer.model)})
    if len(models) != 1:
        raise BadGraphError(f"graph {graph.name!r}: a scaled network has one model firing several spikes per step; "
                            f"found {models or 'none'}")
    return models[0]
