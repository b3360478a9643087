"""Float reference evaluator of the IR with ANN semantics (torch, float32, CPU).

It is the oracle the rest of snnconv is checked against: the frontend against
onnxruntime, the conversion passes against the unconverted network, and it produces the
activations that calibration reads. It follows each layer's docstring literally; speed
comes from torch's kernels, not from shortcuts.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from snnconv import neurons
from snnconv.errors import BadDataError
from snnconv.ir import Graph, Layer
from snnconv.ir import layers as L

__all__ = ["BATCH_ELEMENTS", "activations", "apply_layer", "as_batch", "evaluate", "samples_per_batch"]

BATCH_ELEMENTS = 1 << 26  # the largest layer tensor ``evaluate`` builds at once: 256 MB of float32

Tensor = torch.Tensor


def evaluate(graph: Graph, x: np.ndarray | Tensor, layer: str | None = None) -> np.ndarray:
    """The network's output (or ``layer``'s) for samples ``x`` of shape (N, *input shape), in batches of bounded
    memory."""
    step = samples_per_batch(graph, BATCH_ELEMENTS)
    name = layer or graph.output.name
    parts = [activations(graph, x[start:start + step], [name])[name] for start in range(0, max(len(x), 1), step)]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def samples_per_batch(graph: Graph, elements: int, requested: int | None = None) -> int:
    """The most samples (up to ``requested``) for which the largest layer's tensor holds at most ``elements``.

    Memory then stays bounded whatever the number of samples a user passes at once: a
    test set of 10,000 CIFAR images through a 64-channel conv would otherwise be one
    2.6 GB tensor.
    """
    largest = max(math.prod(layer.shape) for layer in graph)
    fitting = max(1, elements // largest)
    return fitting if requested is None else max(1, min(requested, fitting))


def activations(graph: Graph, x: np.ndarray | Tensor, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The outputs of the layers named in ``names`` (all layers when None) for a batch ``x``.

    Intermediate results are freed as soon as no later layer reads them, so memory
    holds only what is still needed plus what was asked for.
    """
    keep = {layer.name for layer in graph} if names is None else set(names)
    unknown = keep - {layer.name for layer in graph}
    if unknown:
        raise KeyError(f"no layers named {sorted(unknown)} in graph {graph.name!r}")
    last_use = {src: i for i, layer in enumerate(graph) for src in layer.inputs}
    values: dict[str, Tensor] = {}
    result: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for i, layer in enumerate(graph):
            if isinstance(layer, L.Input):
                out = as_batch(graph, x)
            else:
                out = apply_layer(layer, [values[src] for src in layer.inputs])
            values[layer.name] = out
            if layer.name in keep:
                result[layer.name] = out.numpy().copy()
            for src in set(layer.inputs):
                if last_use[src] == i:
                    del values[src]
    return result


def apply_layer(layer: Layer, inputs: list[Tensor]) -> Tensor:
    """One layer's float ANN computation on a batch of its inputs."""
    return _KERNELS[type(layer)](layer, inputs)


def as_batch(graph: Graph, x: np.ndarray | Tensor) -> Tensor:
    """``x`` as a float32 CPU tensor of shape (N, *input shape), checked against the graph's input shape.

    Where the input records the source model's sample shape (``Input.source_shape``: a 1-D
    network's ``(C, L)``, held as ``(C, 1, L)``), ``x`` may come in that shape too, as the
    source model takes it; it is reshaped (a view, no copy).
    """
    expected, source = graph.input.shape, graph.input.source_shape
    if isinstance(x, torch.Tensor):
        floating, t = x.is_floating_point(), x.detach().cpu()
    else:
        array = np.asarray(x)
        floating = array.dtype.kind == "f"
        t = torch.from_numpy(array.astype(np.float32, copy=not array.flags.writeable)) if floating else None
    if not floating:
        raise BadDataError(f"input has dtype {x.dtype}; pass float32 data with the model's preprocessing")
    if source is not None and tuple(t.shape[1:]) == source and t.ndim == len(source) + 1:
        t = t.reshape(len(t), *expected)
    if tuple(t.shape[1:]) != expected or t.ndim != len(expected) + 1:
        shapes = (source, expected) if source else (expected,)
        shown = " or ".join(f"(N, {', '.join(map(str, shape))})" for shape in shapes)
        raise BadDataError(f"input of shape {tuple(t.shape)} does not match the model's input {shown}")
    return t.to(torch.float32)


_TENSORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _param(layer: Layer, field: str, like: Tensor) -> Tensor:
    """A layer parameter with the dtype and device of ``like``, converted once per layer (arrays are read-only)."""
    cached = _TENSORS.setdefault(layer, {})
    key = (field, like.dtype, like.device)
    if key not in cached:
        cached[key] = torch.from_numpy(np.array(getattr(layer, field))).to(like.device, like.dtype)
    return cached[key]


def _dense(layer: L.Dense, xs: list[Tensor]) -> Tensor:
    x = xs[0]
    return F.linear(x, _param(layer, "weight", x), _param(layer, "bias", x))


def _conv(layer: L.Conv, xs: list[Tensor]) -> Tensor:
    x, padding = _padded(xs[0], layer.pads)
    per_channel = layer.bias.ndim == 1
    bias = _param(layer, "bias", x)
    y = F.conv2d(x, _param(layer, "weight", x), bias if per_channel else None, layer.stride, padding,
                 layer.dilation, layer.groups)
    return y if per_channel else y + bias


def _padded(x: Tensor, pads: tuple[int, int, int, int]) -> tuple[Tensor, tuple[int, int]]:
    """``x`` and the zero padding left for the kernel to apply: symmetric padding costs no copy."""
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom)), (0, 0)


def _channel_view(layer: Layer, field: str, rank: int, like: Tensor) -> Tensor:
    """A per-channel vector shaped (C, 1, ..., 1) to broadcast over a sample of ``rank`` axes."""
    return _param(layer, field, like).reshape(-1, *([1] * (rank - 1)))


def _batchnorm(layer: L.BatchNorm, xs: list[Tensor]) -> Tensor:
    rank = xs[0].ndim - 1
    mean, var, gamma, beta = (_channel_view(layer, f, rank, xs[0]) for f in ("mean", "var", "gamma", "beta"))
    return (xs[0] - mean) / torch.sqrt(var + layer.eps) * gamma + beta


def _affine(layer: L.Affine, xs: list[Tensor]) -> Tensor:
    x = xs[0]
    return x * _param(layer, "scale", x) + _param(layer, "shift", x)


def _relu(layer: L.ReLU, xs: list[Tensor]) -> Tensor:
    if isinstance(layer.max_value, np.ndarray):  # one ceiling per channel
        return torch.minimum(xs[0].clamp(min=0.0), _param(layer, "max_value", xs[0]))
    return torch.clamp(xs[0], min=0.0, max=layer.max_value)


def _integrate_and_fire(layer: L.IF, xs: list[Tensor]) -> Tensor:
    """The rate a spiking population approaches for a constant input (IF: ``clip(x / theta, 0, 1)``)."""
    return neurons.of(layer).rate(layer, xs[0])


def _overhang(layer: L.Pool, size: int, axis: int) -> int:
    """Zeros past the end padding that ``ceil_mode``'s last window reaches into."""
    out = layer.shape[1 + axis]
    reach = (out - 1) * layer.stride[axis] + layer.dilation[axis] * (layer.kernel[axis] - 1) + 1
    padded = size + layer.pads[axis] + layer.pads[axis + 2]
    return max(0, reach - padded)


def _pool(layer: L.Pool, xs: list[Tensor]) -> Tensor:
    x = xs[0]
    n, c, h, w = x.shape
    top, left, bottom, right = layer.pads
    extra_h, extra_w = _overhang(layer, h, 0), _overhang(layer, w, 1)
    borders = (left, right + extra_w, top, bottom + extra_h)
    if layer.mode == "max":
        padded = F.pad(x, borders, value=float("-inf"))
        return F.max_pool2d(padded, layer.kernel, layer.stride, 0, layer.dilation)
    if layer.mode == "sum" and layer.stride == layer.kernel and not any(layer.pads) and layer.dilation == (1, 1) \
            and not layer.ceil_mode:
        return _window_sums(x, layer.kernel, layer.shape[1:])
    if layer.mode == "sum" and layer.dilation == (1, 1) and not layer.ceil_mode:  # the fast native kernel
        x, padding = _padded(x, layer.pads) if max(layer.pads) * 2 <= min(layer.kernel) else (F.pad(x, borders), 0)
        return F.avg_pool2d(x, layer.kernel, layer.stride, padding, divisor_override=1)
    window = torch.ones(c, 1, *layer.kernel, dtype=x.dtype, device=x.device)
    sums = F.conv2d(F.pad(x, borders), window, None, layer.stride, 0, layer.dilation, groups=c)
    if layer.mode == "sum":
        return sums
    counted = torch.ones(1, 1, h + top + bottom, w + left + right, dtype=x.dtype, device=x.device) if layer.count_include_pad \
        else F.pad(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device), (left, right, top, bottom))
    counted = F.pad(counted, (0, extra_w, 0, extra_h))
    counts = F.conv2d(counted, torch.ones(1, 1, *layer.kernel, dtype=x.dtype, device=x.device), None, layer.stride, 0, layer.dilation)
    return sums / counts


def _window_sums(x: Tensor, kernel: tuple[int, int], out: tuple[int, int]) -> Tensor:
    """Sums over non-overlapping windows as strided adds: 2-3x faster than the pooling kernel on CPU."""
    (kh, kw), (oh, ow) = kernel, out
    x = x[:, :, : oh * kh, : ow * kw]
    rows = functools.reduce(torch.add, (x[:, :, i::kh] for i in range(kh)))
    return functools.reduce(torch.add, (rows[..., j::kw] for j in range(kw)))


def _add(layer: L.Add, xs: list[Tensor]) -> Tensor:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _concat(layer: L.Concat, xs: list[Tensor]) -> Tensor:
    return torch.cat(xs, dim=1)


def _flatten(layer: L.Flatten, xs: list[Tensor]) -> Tensor:
    return xs[0].reshape(xs[0].shape[0], -1)


def _pad(layer: L.Pad, xs: list[Tensor]) -> Tensor:
    top, left, bottom, right = layer.pads
    return F.pad(xs[0], (left, right, top, bottom))


def _upsample(layer: L.Upsample, xs: list[Tensor]) -> Tensor:
    """Each value repeated ``fh`` times down the rows and ``fw`` times along the columns."""
    rows, cols = layer.factor
    return xs[0].repeat_interleave(rows, dim=2).repeat_interleave(cols, dim=3)


def _output(layer: L.Output, xs: list[Tensor]) -> Tensor:
    if layer.activation == "softmax":
        return torch.softmax(xs[0], dim=1)
    if layer.activation == "log_softmax":
        return torch.log_softmax(xs[0], dim=1)
    if layer.activation == "sigmoid":
        return torch.sigmoid(xs[0])
    if layer.activation == "tanh":
        return torch.tanh(xs[0])
    return xs[0]


def _round(layer: L.Round, xs: list[Tensor]) -> Tensor:
    """Nearest ``m * 2^e`` (smallest fitting exponent, saturating): see ``Round``."""
    x = xs[0]
    largest = 2 ** (layer.bits - 1) - 1
    low, high = layer.exponent
    needed = torch.ceil(torch.log2(x.abs().clamp(min=1e-30) / (largest + 0.5)))
    step = torch.exp2(needed.clamp(low, high))
    mantissa = torch.round(x / step)
    return torch.where(mantissa.abs() > largest, torch.sign(x) * largest, mantissa) * step


def _recurrent(layer: L.Recurrent, xs: list[Tensor]) -> Tensor:
    """``h_t = relu(W x_t + U h_{t-1} + b)`` over the items of (N, L, F) from ``h_0 = 0``; ``h_L`` (every ``h_t``,
    (N, L, H), for a layer with ``sequence``)."""
    x = xs[0]
    weight, recurrent, bias = (_param(layer, name, x) for name in ("weight", "recurrent", "bias"))
    h = torch.zeros((len(x), len(bias)), dtype=x.dtype, device=x.device)
    states = []
    for item in x.unbind(1):
        h = torch.relu(item @ weight.T + h @ recurrent.T + bias)
        states.append(h)
    return torch.stack(states, dim=1) if layer.sequence else h


_KERNELS: dict[type[Layer], Callable[[Layer, list[Tensor]], Tensor]] = {
    L.Dense: _dense,
    L.Conv: _conv,
    L.BatchNorm: _batchnorm,
    L.Affine: _affine,
    L.ReLU: _relu,
    L.IF: _integrate_and_fire,
    L.Pool: _pool,
    L.Add: _add,
    L.Concat: _concat,
    L.Flatten: _flatten,
    L.Pad: _pad,
    L.Upsample: _upsample,
    L.Output: _output,
    L.Round: _round,
    L.Recurrent: _recurrent,
}
