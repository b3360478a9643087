"""The layer kinds of snnconv's IR: small frozen dataclasses with numpy parameters.

Shapes never include the batch dimension: a feature map is ``(C, H, W)``, a vector
``(F,)``. Every kind knows how to compute its output shape from its input shapes
(``infer_shape``) and how to count its parameters, multiply-accumulates and fan-in, so
``Graph.validate`` and ``snnconv inspect`` need no per-kind code of their own.

Arrays are copied and made read-only on construction: passes build new layers with
``dataclasses.replace`` instead of editing old ones.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = [
    "OUTPUT_ACTIVATIONS",
    "Layer",
    "Input",
    "Dense",
    "Conv",
    "BatchNorm",
    "Affine",
    "ReLU",
    "IF",
    "Pool",
    "Add",
    "Concat",
    "Flatten",
    "Pad",
    "Upsample",
    "Output",
    "Round",
    "Recurrent",
    "LAYER_KINDS",
    "one_d_shape",
]

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """An input shape that a layer cannot take; ``Graph.validate`` adds the layer's name."""


@dataclass(frozen=True, eq=False, kw_only=True)
class Layer:
    """A node of the IR: a name, the names of the layers it reads, its output shape."""

    kind: ClassVar[str] = "layer"
    name: str
    inputs: tuple[str, ...]
    shape: Shape  # output shape, without the batch dimension

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                frozen = np.array(value, copy=True)
                frozen.flags.writeable = False
                object.__setattr__(self, field.name, frozen)

    def arrays(self) -> dict[str, np.ndarray]:
        """The numpy parameters of this layer, by field name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        """The output shape for these input shapes; raises ``ShapeError`` if they do not fit."""
        _expect_inputs(in_shapes, 1)
        return in_shapes[0]

    def params(self) -> int:
        """Number of stored parameters (weights, biases, per-neuron constants)."""
        return sum(int(a.size) for a in self.arrays().values())

    def macs(self, in_shapes: list[Shape]) -> int:
        """Multiply-accumulates of one ANN forward pass of this layer (one sample)."""
        return 0

    def fan_in(self, in_shapes: list[Shape]) -> int:
        """Inputs that one output neuron reads (the synapses per neuron after conversion)."""
        return 0


def _expect_inputs(in_shapes: list[Shape], count: int) -> None:
    if len(in_shapes) != count:
        raise ShapeError(f"expects {count} input(s), got {len(in_shapes)}")


def _expect_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"expects a {what} input of rank {rank} (no batch dim), got shape {shape}")


def _numel(shape: Shape) -> int:
    return int(math.prod(shape))


@dataclass(frozen=True, eq=False, kw_only=True)
class Input(Layer):
    """The network's input tensor (one per graph); ``shape`` is one sample's shape.

    ``source_shape`` is one sample's shape as the source model takes it, where that
    differs from ``shape``: 1-D data ``(C, L)`` (ONNX ``[N, C, L]``) is held as a feature
    map of height 1, ``shape = (C, 1, L)``, and ``source_shape = (C, L)``. Data may come in
    either shape (the same values, reshaped); shapes are shown to users in the source's
    terms (``one_d``).
    """

    kind: ClassVar[str] = "input"
    source_shape: Shape | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source_shape is not None:
            object.__setattr__(self, "source_shape", tuple(int(d) for d in self.source_shape))

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 0)
        if self.source_shape is not None and (
                not self.source_shape or min(self.source_shape) < 1 or _numel(self.source_shape) != _numel(self.shape)):
            raise ShapeError(f"source shape {self.source_shape} is not a reshape of the shape {self.shape}")
        return self.shape

    @property
    def one_d(self) -> bool:
        """Whether this input is 1-D data ``(C, L)`` held as ``(C, 1, L)``: every feature map of the network is then
        ``(C, 1, L)`` and stands for ``(C, L)`` (``one_d_shape``)."""
        return (self.source_shape is not None and len(self.source_shape) == 2 and len(self.shape) == 3
                and self.shape == (self.source_shape[0], 1, self.source_shape[1]))


def one_d_shape(shape: Shape) -> Shape:
    """A shape of a 1-D network (``Input.one_d``) as the source model sees it: ``(C, 1, L)`` -> ``(C, L)``; other
    shapes (vectors) as they are."""
    return (shape[0], shape[2]) if len(shape) == 3 and shape[1] == 1 else tuple(shape)


@dataclass(frozen=True, eq=False, kw_only=True)
class Dense(Layer):
    """Fully connected: ``y = W @ x + b`` with ``W`` of shape (out, in)."""

    kind: ClassVar[str] = "dense"
    weight: np.ndarray  # (out_features, in_features)
    bias: np.ndarray  # (out_features,)

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 1, "vector")
        out_f, in_f = self.weight.shape
        if in_shapes[0][0] != in_f:
            raise ShapeError(f"weight takes {in_f} features, input has {in_shapes[0][0]}")
        if self.bias.shape != (out_f,):
            raise ShapeError(f"bias shape {self.bias.shape} != ({out_f},)")
        return (out_f,)

    def macs(self, in_shapes: list[Shape]) -> int:
        return int(self.weight.size)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return int(self.weight.shape[1])


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``out = floor_or_ceil((size + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1``;
    with ``ceil_mode`` the last window must start inside the input or the leading padding
    (the rule of PyTorch and onnxruntime).
    """
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if span < 0:
        raise ShapeError(f"window of {kernel} (dilation {dilation}) is larger than the padded input {size}")
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


@dataclass(frozen=True, eq=False, kw_only=True)
class Conv(Layer):
    """2-D convolution (cross-correlation, as ONNX and PyTorch define it).

    ``y[o, i, j] = b[o, i, j] + sum_{c, u, v} W[o, c, u, v] * xpad[g(o)*C/g + c, i*s0 + u*d0, j*s1 + v*d1]``
    where ``xpad`` is the input zero-padded by ``pads`` = (top, left, bottom, right),
    ``g(o)`` is the group of output channel ``o``, and the bias is per channel (O,) or,
    after an input shift is folded through zero padding, per output neuron (O, OH, OW).
    """

    kind: ClassVar[str] = "conv"
    weight: np.ndarray  # (out_channels, in_channels // groups, kh, kw)
    bias: np.ndarray  # (out_channels,) or (out_channels, out_h, out_w)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 3, "feature-map")
        c, h, w = in_shapes[0]
        out_c, c_per_group, kh, kw = self.weight.shape
        if c % self.groups or out_c % self.groups or c // self.groups != c_per_group:
            raise ShapeError(
                f"weight {self.weight.shape} with groups={self.groups} does not take {c} input channels"
            )
        top, left, bottom, right = self.pads
        oh = conv_output_size(h, kh, self.stride[0], top, bottom, self.dilation[0])
        ow = conv_output_size(w, kw, self.stride[1], left, right, self.dilation[1])
        if self.bias.shape not in ((out_c,), (out_c, oh, ow)):
            raise ShapeError(f"bias shape {self.bias.shape} is neither ({out_c},) nor ({out_c}, {oh}, {ow})")
        return (out_c, oh, ow)

    def macs(self, in_shapes: list[Shape]) -> int:
        return _numel(self.shape) * self.fan_in(in_shapes)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return int(math.prod(self.weight.shape[1:]))


@dataclass(frozen=True, eq=False, kw_only=True)
class BatchNorm(Layer):
    """Inference batch normalization over channels (axis 0 of a sample).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``, per channel.
    """

    kind: ClassVar[str] = "batchnorm"
    gamma: np.ndarray  # (C,)
    beta: np.ndarray  # (C,)
    mean: np.ndarray  # (C,)
    var: np.ndarray  # (C,)
    eps: float = 1e-5

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        channels = in_shapes[0][0]
        for name, array in self.arrays().items():
            if array.shape != (channels,):
                raise ShapeError(f"{name} shape {array.shape} != ({channels},)")
        return in_shapes[0]

    def macs(self, in_shapes: list[Shape]) -> int:
        return _numel(self.shape)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return 1


@dataclass(frozen=True, eq=False, kw_only=True)
class Affine(Layer):
    """Elementwise ``y = x * scale + shift``, both broadcast against one sample's shape.

    Comes from Sub/Mul/Div/Add by constants (input scaling, bias-like adds).
    """

    kind: ClassVar[str] = "affine"
    scale: np.ndarray  # broadcastable to the input shape
    shift: np.ndarray  # broadcastable to the input shape

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        for name, array in self.arrays().items():
            try:
                broadcast = np.broadcast_shapes(array.shape, in_shapes[0])
            except ValueError:
                broadcast = None
            if broadcast != in_shapes[0]:
                raise ShapeError(f"{name} of shape {array.shape} does not broadcast to {in_shapes[0]}")
        return in_shapes[0]

    def macs(self, in_shapes: list[Shape]) -> int:
        return _numel(self.shape)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return 1


@dataclass(frozen=True, eq=False, kw_only=True)
class ReLU(Layer):
    """``y = min(max(x, 0), max_value)``; ``max_value`` None means unbounded (ReLU6 sets 6); after per-channel
    normalization one value per channel, an array broadcasting over one sample."""

    kind: ClassVar[str] = "relu"
    max_value: float | np.ndarray | None = None


@dataclass(frozen=True, eq=False, kw_only=True)
class IF(Layer):
    """A spiking population, the replacement of a ReLU; ``model`` names its neuron model.

    The models live in ``snnconv.neurons``. Integrate-and-fire (``"if"``), each timestep:
    ``v += input current``; where ``v >= threshold`` the neuron spikes and ``v -= threshold``
    (reset ``"subtract"``) or ``v = 0`` (reset ``"zero"``). Driven by a constant current
    ``I``, the spike rate approaches ``clip(I / threshold, 0, 1)``: the ReLU, scaled and
    capped. The leaky model (``"lif"``) first decays the membrane by ``decay / 4096``;
    models that fire several spikes in one step (``"graded"``, ``"burst"``) send up to
    ``spikes_per_step``.
    The membrane starts at ``v_init * threshold`` (one value, or one per neuron).

    At a chip's precision (after ``quantize``) the threshold and currents are integers,
    the initial membrane is ``round(v_init * threshold)`` and the membrane saturates at
    the signed ``state_bits`` range, as the chip's does.
    """

    kind: ClassVar[str] = "if"
    model: str = "if"  # the neuron model in snnconv.neurons that steps it
    threshold: float = 1.0
    reset: str = "subtract"  # "subtract" or "zero"
    v_init: float | np.ndarray = 0.5  # initial membrane as a fraction of the threshold
    state_bits: int | None = None  # signed, saturating membrane bits; None: unbounded float
    compartments: int = 1  # chip compartments per neuron (2 where subtractive reset is emulated)
    decay: int = 0  # membrane decay per step in 1/4096 (Loihi's decay_v); model "lif" only
    # the most spikes a neuron fires in one step, for models that fire several ("graded": its payload's largest
    # value 2^bits - 1; "burst": the longest burst); None: the model's own (1 for binary neurons)
    spikes_per_step: int | None = None

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        if np.ndim(self.v_init) and np.shape(self.v_init) != in_shapes[0]:
            raise ShapeError(f"v_init of shape {np.shape(self.v_init)} is neither one value nor {in_shapes[0]}")
        if self.reset not in ("subtract", "zero"):
            raise ShapeError(f"reset {self.reset!r} is not 'subtract' or 'zero'")
        if not self.threshold > 0:
            raise ShapeError(f"threshold {self.threshold} must be positive")
        if self.compartments < 1:
            raise ShapeError(f"compartments {self.compartments} must be positive")
        if not (isinstance(self.model, str) and isinstance(self.decay, int) and self.decay >= 0):
            raise ShapeError(f"model {self.model!r} and decay {self.decay!r}: a name and a non-negative integer")
        if self.spikes_per_step is not None and not (isinstance(self.spikes_per_step, int)
                                                     and self.spikes_per_step >= 1):
            raise ShapeError(f"spikes_per_step {self.spikes_per_step!r} must be a positive integer or None")
        return in_shapes[0]


@dataclass(frozen=True, eq=False, kw_only=True)
class Pool(Layer):
    """2-D average, sum or max pooling with ONNX's options.

    Average: ``y = sum(window) / count`` where ``count`` is the kernel area when
    ``count_include_pad`` (padding counts, the overhang of ``ceil_mode`` does not), else
    the number of real input elements in the window. Sum: ``y = sum(window)`` (padding
    adds zeros), what a chip does by routing a window's spikes to one synapse. Max: the
    largest real element.
    """

    kind: ClassVar[str] = "pool"
    mode: str  # "avg", "sum" or "max"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = False

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 3, "feature-map")
        if self.mode not in ("avg", "sum", "max"):
            raise ShapeError(f"mode {self.mode!r} is not 'avg', 'sum' or 'max'")
        c, h, w = in_shapes[0]
        top, left, bottom, right = self.pads
        oh = conv_output_size(h, self.kernel[0], self.stride[0], top, bottom, self.dilation[0], self.ceil_mode)
        ow = conv_output_size(w, self.kernel[1], self.stride[1], left, right, self.dilation[1], self.ceil_mode)
        return (c, oh, ow)

    def macs(self, in_shapes: list[Shape]) -> int:
        return _numel(self.shape) * self.fan_in(in_shapes) if self.mode != "max" else 0

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass(frozen=True, eq=False, kw_only=True)
class Add(Layer):
    """Elementwise sum of two or more tensors of one shape (residual connections)."""

    kind: ClassVar[str] = "add"

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        if len(in_shapes) < 2:
            raise ShapeError(f"expects at least 2 inputs, got {len(in_shapes)}")
        if len(set(in_shapes)) != 1:
            raise ShapeError(f"inputs differ in shape: {in_shapes}")
        return in_shapes[0]

    def macs(self, in_shapes: list[Shape]) -> int:
        return _numel(self.shape) * (len(in_shapes) - 1)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return len(in_shapes)


@dataclass(frozen=True, eq=False, kw_only=True)
class Concat(Layer):
    """Concatenation along channels (the first axis of a sample)."""

    kind: ClassVar[str] = "concat"

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        if not in_shapes:
            raise ShapeError("expects at least 1 input")
        rest = {s[1:] for s in in_shapes}
        if len(rest) != 1 or any(len(s) != len(in_shapes[0]) for s in in_shapes):
            raise ShapeError(f"inputs differ beyond the channel axis: {in_shapes}")
        return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])


@dataclass(frozen=True, eq=False, kw_only=True)
class Flatten(Layer):
    """Row-major flattening of one sample to a vector (C, H, W) -> (C*H*W,)."""

    kind: ClassVar[str] = "flatten"

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        return (_numel(in_shapes[0]),)


@dataclass(frozen=True, eq=False, kw_only=True)
class Pad(Layer):
    """Zero padding of a feature map's spatial axes by (top, left, bottom, right)."""

    kind: ClassVar[str] = "pad"
    pads: tuple[int, int, int, int]

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 3, "feature-map")
        if min(self.pads) < 0:
            raise ShapeError(f"negative pads {self.pads}")
        c, h, w = in_shapes[0]
        top, left, bottom, right = self.pads
        return (c, h + top + bottom, w + left + right)


@dataclass(frozen=True, eq=False, kw_only=True)
class Upsample(Layer):
    """Nearest upsampling of a feature map by integer factors: ``y[c, i, j] = x[c, i // fh, j // fw]``.

    Weight-free: every output neuron repeats one input neuron, so on a chip it is routing
    (a source's spike fans out to ``fh * fw`` positions), and it commutes with any
    per-channel affine map (``up(s x + t) = s up(x) + t`` for ``s``, ``t`` constant per channel).
    """

    kind: ClassVar[str] = "upsample"
    factor: tuple[int, int]  # (rows, columns), each >= 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "factor", tuple(int(f) for f in self.factor))

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 3, "feature-map")
        if len(self.factor) != 2 or min(self.factor) < 1:
            raise ShapeError(f"factor {self.factor} must be two integers >= 1")
        c, h, w = in_shapes[0]
        return (c, h * self.factor[0], w * self.factor[1])

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return 1


OUTPUT_ACTIVATIONS = (None, "softmax", "log_softmax", "sigmoid", "tanh")  # what the host applies to the output


@dataclass(frozen=True, eq=False, kw_only=True)
class Output(Layer):
    """The network's result (one per graph).

    ``activation`` records a Softmax or LogSoftmax over the features, or a Sigmoid or Tanh
    per element, that the source model applied last; it does not change the argmax, so the
    spiking network leaves it out,
    and the float evaluator applies it to match the source model. ``scale`` is what the
    layers before it were divided by (normalization): the source model's output is
    ``activation(scale * x)``.

    ``burn_in``: in a spiking graph, the first steps the readout leaves out: the host reads
    the output integral after step ``burn_in`` and after step T and divides their difference
    by ``T - burn_in`` (a run of at most ``burn_in`` steps reads all of them). Neurons whose
    folded biases are large next to their inputs fire before the inhibition reaches them;
    leaving out those start-up steps is what the pipeline tunes it for. None: every step.
    """

    kind: ClassVar[str] = "output"
    activation: str | None = None  # one of OUTPUT_ACTIVATIONS
    scale: float = 1.0
    state_bits: int | None = None  # signed, saturating bits of the integrating membrane; None: float
    burn_in: int | None = None

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        if self.activation not in OUTPUT_ACTIVATIONS:
            raise ShapeError(f"unknown activation {self.activation!r}")
        if self.burn_in is not None and (not isinstance(self.burn_in, int) or self.burn_in < 1):
            raise ShapeError(f"burn_in {self.burn_in!r} is not a positive number of steps")
        return in_shapes[0]


@dataclass(frozen=True, eq=False, kw_only=True)
class Round(Layer):
    """An analog current written to a chip as an integer bias: ``y = m * 2^e``.

    ``e`` is the smallest exponent in ``exponent`` for which ``m = round(x / 2^e)`` fits
    the signed ``bits`` mantissa (``|m| <= 2^(bits-1) - 1``): the nearest representable
    value. Values beyond the largest exponent saturate. The host computes the input-driven layers of a
    network fed a constant current and writes their result this way (Loihi-class chips
    take a per-neuron bias).
    """

    kind: ClassVar[str] = "round"
    bits: int  # signed mantissa bits, sign included
    exponent: tuple[int, int] = (0, 0)  # allowed exponents (min, max)

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        if self.bits < 2 or self.exponent[0] > self.exponent[1]:
            raise ShapeError(f"bits {self.bits} / exponent {self.exponent} do not describe a number format")
        return in_shapes[0]


@dataclass(frozen=True, eq=False, kw_only=True)
class Recurrent(Layer):
    """A ReLU Elman layer over a sequence (ONNX ``RNN`` with ``Relu``, forward): reads ``(L, F)``, gives ``(H,)``.

    ``h_t = relu(W @ x_t + U @ h_{t-1} + b)`` for ``t = 1..L`` from ``h_0 = 0``; the value is
    ``h_L``, the last hidden state (ONNX's ``Y_h``), or with ``sequence`` every ``h_t``,
    ``(L, H)``, for a recurrent layer stacked above (``torch.nn.RNN(num_layers > 1)``).
    After conversion (``snnconv.recurrent``) it is a population whose input includes its
    own spikes through ``U``.
    """

    kind: ClassVar[str] = "recurrent"
    weight: np.ndarray  # (hidden, features): W, the input weights
    recurrent: np.ndarray  # (hidden, hidden): U, the weights of h_{t-1}
    bias: np.ndarray  # (hidden,): b, ONNX's Wb + Rb
    sequence: bool = False  # gives every h_t (L, H), read by the next recurrent layer, rather than h_L

    def infer_shape(self, in_shapes: list[Shape]) -> Shape:
        _expect_inputs(in_shapes, 1)
        _expect_rank(in_shapes[0], 2, "sequence (items, features)")
        hidden, features = self.weight.shape
        if in_shapes[0][1] != features:
            raise ShapeError(f"weight takes {features} features per item, input has {in_shapes[0][1]}")
        if self.recurrent.shape != (hidden, hidden) or self.bias.shape != (hidden,):
            raise ShapeError(f"recurrent {self.recurrent.shape} / bias {self.bias.shape} do not fit {hidden} hidden")
        return (in_shapes[0][0], hidden) if self.sequence else (hidden,)

    def macs(self, in_shapes: list[Shape]) -> int:
        return in_shapes[0][0] * int(self.weight.size + self.recurrent.size)

    def fan_in(self, in_shapes: list[Shape]) -> int:
        return int(self.weight.shape[1] + self.recurrent.shape[1])


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (Input, Dense, Conv, BatchNorm, Affine, ReLU, IF, Pool, Add, Concat, Flatten, Pad, Upsample, Output,
                Round, Recurrent)
}
