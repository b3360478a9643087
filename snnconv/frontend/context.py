"""What an op converter sees: the node it converts and the import's state so far.

Tensors of an ONNX graph are either constants (initializers, Constant nodes and
everything folded from them) or values computed per sample (IR layers). Converters ask
the ``Context`` for constants and shapes, and emit IR layers through it; the context
names layers after their nodes and checks shapes, so error messages can name the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from snnconv.errors import BadModelError, UnsupportedOpError
from snnconv.ir import layers as L

__all__ = ["MAX_ELEMENTS", "Context", "Node", "check_size", "one_line"]

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
            raise reader.unsupported(
                f"reads {tensor!r}, the result of a {activation}; snnconv supports Softmax, LogSoftmax and "
                "Sigmoid only as the model's last op: inside the network, replace it by ReLU"
            )
        if tensor not in self.values:
            origin = self.producers.get(tensor, "no node (not a graph input or initializer)")
            raise reader.unsupported(
                f"reads {tensor!r}, produced by {origin}, which has no value in the converted network"
            )
        return self.layer(self.values[tensor])

    def shape(self, tensor: str, reader: Node) -> tuple[int, ...]:
        """The sample shape (no batch dim) of a computed tensor."""
        return self.layer_of(tensor, reader).shape

    def full_shape(self, tensor: str, reader: Node) -> tuple[int, ...]:
        """The shape of a computed tensor with the batch dimension in front."""
        return (self.batch, *self.shape(tensor, reader))

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
        self.add_layer(layer, node.outputs[0] if output is None else output)
        return layer

    def add_layer(self, layer: L.Layer, tensor: str) -> None:
        """Record ``layer`` as the computation of ``tensor``."""
        self.layers.append(layer)
        self._by_name[layer.name] = layer
        self.values[tensor] = layer.name

    def alias(self, node: Node, source: str) -> None:
        """``node``'s first output is the same value as ``source`` (Identity, Dropout)."""
        if source in self.output_activations:  # e.g. Softmax -> Identity at the very end
            self.output_activations[node.outputs[0]] = self.output_activations[source]
        else:
            self.values[node.outputs[0]] = self.layer_of(source, node).name

    def mark_output_activation(self, node: Node, activation: str) -> None:
        """``node`` applies ``activation`` at the output; allowed only as the model's last op."""
        self.layer_of(node.inputs[0], node)
        self.output_activations[node.outputs[0]] = (activation, node.inputs[0])

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
