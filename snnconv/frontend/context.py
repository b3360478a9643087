"""What an op converter sees: the node it converts and the import's state so far.

Tensors of an ONNX graph are either constants (initializers, Constant nodes and
everything folded from them) or values computed per sample (IR layers). Converters ask
the ``Context`` for constants and shapes, and emit IR layers through it; the context
names layers after their nodes and checks shapes, so error messages can name the node.

1-D spatial data (``[N, C, L]``, audio and time series) is carried as 2-D with height 1:
the IR layer's shape is ``(C, 1, L)``. The context remembers which layers hold such
data (``one_d``), so converters that reason in ONNX's ranks and axes (Flatten, Reshape,
Concat, Softmax, constants that broadcast) see ``full_shape`` = ``(N, C, L)`` while the
layers they emit see ``(C, 1, L)``. A layer computed from a 1-D layer that keeps the
rank is 1-D too (``emit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from snnconv.errors import BadModelError, UnsupportedOpError
from snnconv.ir import layers as L

__all__ = ["MAX_ELEMENTS", "Context", "Node", "check_size", "one_line"]

# Why an output function cannot sit inside the network, and what to do instead.
_SOFTMAX_INSIDE = ("it normalizes across all features, which no neuron computes from its own input; snnconv supports "
                   "Softmax and LogSoftmax only as the model's last op: inside the network, retrain without it")
_INSIDE = {
    "softmax": _SOFTMAX_INSIDE,
    "log_softmax": _SOFTMAX_INSIDE,
    "sigmoid": "a Sigmoid is 0.5 at 0 and never reaches 0, while a spiking neuron's rate is a ReLU of its input "
               "capped at one spike per step, so it has no spiking equivalent inside the network; snnconv supports "
               "Sigmoid only as the model's last op: inside, retrain with ReLU, ReLU6 or HardSigmoid (a capped ReLU, "
               "which converts exactly)",
    "tanh": "a Tanh is negative for negative inputs, while a spiking neuron's rate is a ReLU of its input (never "
            "negative), so it has no spiking equivalent inside the network; snnconv supports Tanh only as the "
            "model's last op: inside, retrain with ReLU or HardSigmoid (a capped ReLU)",
}

# The most elements one sample's tensor or one constant may have (1 GiB of float32):
# far beyond any network a neuromorphic chip holds, so a larger one means a malformed
# model, refused before anything of that size is allocated.
MAX_ELEMENTS = 1 << 28


def one_line(exc: BaseException) -> str:
    """The text of an exception raised by onnx or numpy, on one line (onnx's span several), for a message."""
    return " ".join(str(exc).split()) or type(exc).__name__


def check_size(shape: tuple[int, ...], where: str) -> None:
    """Refuse a per-sample shape that is empty or absurdly large, before anything is allocated."""
    if min(shape, default=1) < 1:
        raise BadModelError(f"{where} shape {list(shape)} has an empty dimension; fix or re-export the model")
    if math.prod(shape) > MAX_ELEMENTS:
        raise BadModelError(f"{where} shape {list(shape)} has {math.prod(shape):,} elements per sample, more than "
                            f"snnconv handles ({MAX_ELEMENTS:,}); the model is malformed: fix or re-export it")


@dataclass
class Node:
    """A read-only view of one ONNX node with its attributes decoded."""

    proto: onnx.NodeProto
    opset: int
    index: int

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def name(self) -> str:
        return self.proto.name or f"{self.op}_{self.index}"

    @property
    def label(self) -> str:
        return f"node {self.name!r} ({self.op}, opset {self.opset})"

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def attr(self, name: str, default=None):
        """The attribute ``name`` as a Python value (str, int, float, list, ndarray)."""
        for attribute in self.proto.attribute:
            if attribute.name == name:
                value = onnx.helper.get_attribute_value(attribute)
                if isinstance(value, bytes):
                    return value.decode()
                if isinstance(value, onnx.TensorProto):
                    return onnx.numpy_helper.to_array(value)
                return value
        return default

    def unsupported(self, what: str) -> UnsupportedOpError:
        """An error saying this node uses something snnconv cannot convert."""
        return UnsupportedOpError(f"{self.label}: {what}")


@dataclass
class Context:
    """The state of one import: constants, the tensor -> layer map, and the layers so far."""

    batch: int  # the value that stands for the batch dimension when folding Shape
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    layers: list[L.Layer] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # tensor name -> layer name
    producers: dict[str, str] = field(default_factory=dict)  # tensor name -> label of its node
    output_activations: dict[str, tuple[str, str]] = field(default_factory=dict)  # tensor -> (activation, source)
    one_d: set[str] = field(default_factory=set)  # tensors whose layer's (C, 1, L) stands for ONNX's (N, C, L)
    pending: dict[str, object] = field(default_factory=dict)  # tensor -> what an op left for a later op to read
    facts: dict[str, object] = field(default_factory=dict)  # graph facts the ops record for the passes and the report
    _by_name: dict[str, L.Layer] = field(default_factory=dict)

    # --- reading -------------------------------------------------------------------

    def const(self, tensor: str) -> np.ndarray | None:
        """The constant value of ``tensor``, or None if it is computed per sample."""
        return self.constants.get(tensor)

    def require_const(self, node: Node, index: int, what: str) -> np.ndarray:
        """Input ``index`` of ``node`` as a constant; the op cannot convert otherwise."""
        if index >= len(node.inputs) or not node.inputs[index]:
            raise BadModelError(f"{node.label}: input {index} ({what}) is missing")
        value = self.const(node.inputs[index])
        if value is None:
            raise node.unsupported(f"input {index} ({what}) must be a constant (initializer), found a computed tensor")
        return value

    def optional_const(self, node: Node, index: int, what: str) -> np.ndarray | None:
        """Input ``index`` as a constant, or None when the node leaves it out."""
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        return self.require_const(node, index, what)

    def optional_scalar(self, node: Node, index: int, what: str) -> float | None:
        """Input ``index`` as a constant single number, or None when the node leaves it out."""
        value = self.optional_const(node, index, what)
        if value is None:
            return None
        if value.size != 1:
            raise BadModelError(f"{node.label}: input {index} ({what}) has shape {value.shape}, not a single number")
        return float(value.ravel()[0])

    def layer_of(self, tensor: str, reader: Node) -> L.Layer:
        """The IR layer computing ``tensor``, for a node that reads it."""
        if tensor in self.output_activations:
            activation, _ = self.output_activations[tensor]
            raise reader.unsupported(f"reads {tensor!r}, the result of a {activation}; {_INSIDE[activation]}")
        if tensor not in self.values:
            origin = self.producers.get(tensor, "no node (not a graph input or initializer)")
            raise reader.unsupported(
                f"reads {tensor!r}, produced by {origin}, which has no value in the converted network"
            )
        return self.layer(self.values[tensor])

    def is_one_d(self, tensor: str, reader: Node) -> bool:
        """Whether ``tensor`` is 1-D spatial data (ONNX ``[N, C, L]``) held as ``(C, 1, L)``."""
        self.layer_of(tensor, reader)
        return tensor in self.one_d

    def shape(self, tensor: str, reader: Node) -> tuple[int, ...]:
        """The sample shape (no batch dim) of a computed tensor."""
        return self.layer_of(tensor, reader).shape

    def full_shape(self, tensor: str, reader: Node) -> tuple[int, ...]:
        """The ONNX shape of a computed tensor, batch dimension in front (``(N, C, L)`` for 1-D data)."""
        shape = self.shape(tensor, reader)
        if self.is_one_d(tensor, reader):
            shape = (shape[0], *shape[2:])
        return (self.batch, *shape)

    # --- writing -------------------------------------------------------------------

    def emit(self, node: Node, cls: type[L.Layer], inputs: list[str], *, output: str | None = None,
             suffix: str = "", **fields) -> L.Layer:
        """Add a layer of kind ``cls`` reading the tensors ``inputs``; it computes ``output``."""
        sources = [self.layer_of(t, node) for t in inputs]
        name = self.unique_name(node.name + suffix)
        try:
            shape = cls(name=name, inputs=(), shape=(1,), **fields).infer_shape([s.shape for s in sources])
        except L.ShapeError as exc:
            raise BadModelError(f"{node.label}: {exc}") from None
        check_size(shape, f"{node.label}: output")
        layer = cls(name=name, inputs=tuple(s.name for s in sources), shape=shape, **fields)
        output = node.outputs[0] if output is None else output
        self.add_layer(layer, output)
        if len(shape) == 3 and any(t in self.one_d for t in inputs):
            self.one_d.add(output)
        return layer

    def add_layer(self, layer: L.Layer, tensor: str) -> None:
        """Record ``layer`` as the computation of ``tensor``."""
        self.layers.append(layer)
        self._by_name[layer.name] = layer
        self.values[tensor] = layer.name

    def alias(self, node: Node, source: str, one_d: bool | None = None) -> None:
        """``node``'s first output is the same value as ``source`` (Identity, Dropout); it is 1-D data if
        ``source`` is, unless ``one_d`` says otherwise (Squeeze and Unsqueeze of the height axis)."""
        if source in self.output_activations:  # e.g. Softmax -> Identity at the very end
            self.output_activations[node.outputs[0]] = self.output_activations[source]
            return
        self.values[node.outputs[0]] = self.layer_of(source, node).name
        if (source in self.one_d) if one_d is None else one_d:
            self.one_d.add(node.outputs[0])

    def mark_output_activation(self, node: Node, activation: str, source: str | None = None) -> None:
        """``node``'s output is ``activation`` of ``source`` (its input by default); allowed only as the model's
        last op, or followed by reshapes that keep the order of the values (``reshape_output_activation``)."""
        source = node.inputs[0] if source is None else source
        self.layer_of(source, node)
        self.output_activations[node.outputs[0]] = (activation, source)

    def layer(self, name: str) -> L.Layer:
        """The layer called ``name``."""
        return self._by_name[name]

    def unique_name(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``, ... if a layer already has that name."""
        name, n = base, 1
        while name in self._by_name:
            n += 1
            name = f"{base}_{n}"
        return name
