"""Property tests: random small networks built with onnx.helper from the supported ops.

Each example is a random chain of Conv (kernels 1-3, strides, asymmetric pads, dilations,
groups, depthwise, auto_pad), BatchNormalization, Relu, Clip(0, max), AveragePool
(count_include_pad, ceil_mode), MaxPool, residual Add/Sum, channel Concat and zero Pad,
optionally followed by Flatten and Gemm or MatMul+Add layers and a Softmax, at a random
opset. The generator tracks the sample shape as it adds ops, so every model it makes is
valid. The imported graph must validate and evaluate like onnxruntime (max abs 1e-4).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from helpers import TOLERANCE, assert_matches_onnxruntime, make_model
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from onnx import helper

import snnconv

OPSETS = (7, 9, 11, 13, 17, 19, 22)  # 7 goes through onnx's version converter
MAX_CHANNELS = 6  # a conv's output channels; concatenations may go a little beyond
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _out_size(size: int, kernel: int, stride: int, begin: int, end: int, dilation: int, ceil: bool = False,
              onnx_before_22: bool = False) -> int:
    """The output length of a window op along one axis.

    With ``ceil`` a last window that would start in the end padding is dropped (onnxruntime,
    PyTorch, ONNX from opset 22); onnx's shape inference for older opsets keeps it.
    """
    span = size + begin + end - dilation * (kernel - 1) - 1
    assert span >= 0, "generator bug: the window does not fit"
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and not onnx_before_22 and (out - 1) * stride >= size + begin:
        out -= 1
    return out


def _windows_see_input(size: int, kernel: int, stride: int, begin: int, end: int, dilation: int, ceil: bool) -> bool:
    """Whether every window of a pool along one axis has a tap on the input, not only on padding."""
    return all(
        any(begin <= i * stride + j * dilation < begin + size for j in range(kernel))
        for i in range(_out_size(size, kernel, stride, begin, end, dilation, ceil))
    )


def _same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


class Builder:
    """Accumulates nodes and initializers of one model; ``draw`` makes the random choices."""

    def __init__(self, draw, opset: int, seed: int):
        self.draw, self.opset = draw, opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, prefix: str, value) -> str:
        name = self.fresh(prefix)
        self.inits[name] = np.asarray(value)
        return name

    def normal(self, *shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, low: float, high: float, *shape) -> np.ndarray:
        return self.rng.uniform(low, high, shape).astype(np.float32)

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def choice(self, options):
        return self.draw(st.sampled_from(list(options)))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def flag(self) -> bool:
        return self.draw(st.booleans())


# --- ops on feature maps: each takes (builder, tensor, shape) and returns (tensor, shape) ---------


def _window(b: Builder, size: int, kernel: int, dilation: int, max_pad: int, pool: bool):
    """Pads (begin, end) for one axis, shrinking the window until it fits the padded input.

    Pools keep each pad smaller than the kernel (onnxruntime requires it).
    """
    limit = (lambda k: min(max_pad, k - 1)) if pool else (lambda k: max_pad)
    begin, end = b.integer(0, limit(kernel)), b.integer(0, limit(kernel))
    if dilation * (kernel - 1) + 1 > size + begin + end:
        dilation = 1
    if kernel > size + begin + end:
        kernel = size
        begin, end = min(begin, limit(kernel)), min(end, limit(kernel))
    return kernel, dilation, begin, end


def _spatial_attrs(b: Builder, shape, *, pool: bool, allow_dilation: bool, allow_ceil: bool, keep_size: bool):
    """Kernel, strides, dilations, pads/auto_pad, ceil_mode and the output (H, W) of a window op."""
    _, h, w = shape
    kernel, strides, dilations, pads, out_hw = [], [], [], [[], []], []
    mode = b.choice(["SAME_UPPER", "SAME_LOWER", "explicit"] if keep_size else
                    ["NOTSET", "explicit", "explicit", "explicit", "VALID", "SAME_UPPER", "SAME_LOWER"])
    ceil = allow_ceil and mode == "explicit" and not keep_size and b.flag()
    for size in (h, w):
        k = b.integer(1, 3)
        s = 1 if keep_size else b.integer(1, 2)
        d = b.integer(1, 2) if allow_dilation and not mode.startswith("SAME") else 1  # onnxruntime refuses both
        if keep_size and mode == "explicit":
            for d in (d, 1):  # a pool's windows must see the input (see below), d = 1 does
                total = d * (k - 1)
                begin = b.integer(0, total)
                if pool:  # pads below the kernel: split the total as evenly as needed
                    begin = min(max(begin, total - (k - 1)), k - 1)
                end = total - begin
                if not pool or _windows_see_input(size, k, 1, begin, end, d, False):
                    break
        elif mode in ("explicit", "NOTSET"):
            k, d, begin, end = _window(b, size, k, d, 2 if mode == "explicit" else 0, pool)
        elif mode == "VALID":
            k, d, begin, end = _window(b, size, k, d, 0, pool)
        else:
            if (-(-size // s) - 1) * s + d * (k - 1) + 1 < size:
                k += 1  # onnxruntime refuses the negative padding SAME would need
            begin, end = _same_pads(size, k, s, d, mode == "SAME_UPPER")
        kernel.append(k), strides.append(s), dilations.append(d)
        pads[0].append(begin), pads[1].append(end)
    if pool:  # a window must see the input: with only padding max is -inf, the mean 0/0
        for axis, size in enumerate((h, w)):
            window = (size, kernel[axis], strides[axis], pads[0][axis], pads[1][axis], dilations[axis])
            if not keep_size and not mode.startswith("SAME") and not _windows_see_input(*window, ceil):
                dilations[axis] = 1
    if ceil and b.opset < 22 and any(
            _out_size(*a, ceil=True) != _out_size(*a, ceil=True, onnx_before_22=True)
            for a in zip((h, w), kernel, strides, pads[0], pads[1], dilations)):
        ceil = False  # onnx's shape inference before opset 22 disagrees with onnxruntime here
    for size, k, s, begin, end, d in zip((h, w), kernel, strides, pads[0], pads[1], dilations):
        out_hw.append(-(-size // s) if mode.startswith("SAME") else _out_size(size, k, s, begin, end, d, ceil))
    attrs = {}
    if mode == "explicit":
        attrs["pads"] = pads[0] + pads[1]
    elif mode != "NOTSET":
        attrs["auto_pad"] = mode
    if strides != [1, 1] or b.flag():
        attrs["strides"] = strides
    if dilations != [1, 1] or (allow_dilation and b.flag()):
        attrs["dilations"] = dilations
    if ceil:
        attrs["ceil_mode"] = 1
    if keep_size:
        assert tuple(out_hw) == (h, w)
    return kernel, attrs, tuple(out_hw)


def conv(b: Builder, x: str, shape, *, keep_size: bool = False, out_channels: int | None = None):
    c = shape[0]
    out = out_channels or b.integer(1, MAX_CHANNELS)
    kind = b.choice(["full", "grouped", "depthwise"])
    if kind == "depthwise" and out_channels is None:
        out = c * b.integer(1, max(1, MAX_CHANNELS // c))
    if kind == "full":
        groups = 1
    elif kind == "depthwise" and out % c == 0:
        groups = c
    else:
        groups = b.choice([g for g in range(1, c + 1) if c % g == 0 and out % g == 0])
    kernel, attrs, (oh, ow) = _spatial_attrs(b, shape, pool=False, allow_dilation=True, allow_ceil=False,
                                             keep_size=keep_size)
    if groups != 1 or b.flag():
        attrs["group"] = groups
    if b.flag():
        attrs["kernel_shape"] = kernel
    fan_in = (c // groups) * kernel[0] * kernel[1]
    inputs = [x, b.const("W", b.normal(out, c // groups, *kernel, scale=1.2 / math.sqrt(fan_in)))]
    if b.flag():
        inputs.append(b.const("B", b.normal(out, scale=0.3)))
    return b.node("Conv", inputs, **attrs), (out, oh, ow)


def batchnorm(b: Builder, x: str, shape, **_):
    c = shape[0]
    inputs = [x, b.const("gamma", b.uniform(0.5, 1.5, c) * b.rng.choice([-1, 1], c).astype(np.float32)),
              b.const("beta", b.normal(c, scale=0.3)), b.const("mean", b.normal(c, scale=0.3)),
              b.const("var", b.uniform(0.3, 2.0, c))]
    attrs = {"epsilon": b.choice([1e-5, 1e-3, 0.1])} if b.flag() else {}
    return b.node("BatchNormalization", inputs, **attrs), shape


def relu(b: Builder, x: str, shape, **_):
    return b.node("Relu", [x]), shape


def clip(b: Builder, x: str, shape, **_):
    high = b.choice([None, 0.25, 1.0, 6.0])
    if b.opset < 11:
        attrs = {"min": 0.0} if high is None else {"min": 0.0, "max": high}
        return b.node("Clip", [x], **attrs), shape
    inputs = [x, b.const("lo", np.float32(0.0))]
    if high is not None:
        inputs.append(b.const("hi", np.float32(high)))
    return b.node("Clip", inputs), shape


def _pool(b: Builder, op: str, x: str, shape, keep_size: bool):
    allow_dilation = b.opset >= (19 if op == "AveragePool" else 10)
    kernel, attrs, (oh, ow) = _spatial_attrs(b, shape, pool=True, allow_dilation=allow_dilation,
                                             allow_ceil=b.opset >= 10, keep_size=keep_size)
    attrs["kernel_shape"] = kernel
    if op == "AveragePool" and b.flag():
        attrs["count_include_pad"] = int(b.flag())
    return b.node(op, [x], **attrs), (shape[0], oh, ow)


def average_pool(b: Builder, x: str, shape, *, keep_size: bool = False):
    return _pool(b, "AveragePool", x, shape, keep_size)


def max_pool(b: Builder, x: str, shape, *, keep_size: bool = False):
    return _pool(b, "MaxPool", x, shape, keep_size)


def pad(b: Builder, x: str, shape, **_):
    c, h, w = shape
    top, left, bottom, right = (b.integer(0, 2) for _ in range(4))
    full = [0, 0, top, left, 0, 0, bottom, right]
    if b.opset < 11:
        attrs = {"pads": full}
        if b.flag():
            attrs.update(mode="constant", value=0.0)
        out = b.node("Pad", [x], **attrs)
    elif b.opset >= 18 and b.flag():
        axes = b.choice([[2, 3], [-2, -1], [3, 2]])
        spec = {2: (top, bottom), 3: (left, right)}
        begins, ends = zip(*(spec[a % 4] for a in axes))
        out = b.node("Pad", [x, b.const("pads", np.array(begins + ends, np.int64)), "",
                             b.const("axes", np.array(axes, np.int64))])
    else:
        inputs = [x, b.const("pads", np.array(full, np.int64))]
        if b.flag():
            inputs.append(b.const("zero", np.float32(0.0)))
        out = b.node("Pad", inputs)
    return out, (c, h + top + bottom, w + left + right)


def _branch(b: Builder, x: str, shape, out_channels: int | None):
    """A short chain of ops from ``x`` keeping H, W (and C unless ``out_channels``)."""
    if out_channels is None and b.integer(0, 3) == 0:
        return x, shape  # the tensor itself: Add(x, x) or Concat(x, x)
    keep_ops = [relu, clip, batchnorm, average_pool, max_pool]
    steps = [lambda b, t, s: conv(b, t, s, keep_size=True, out_channels=out_channels or s[0])] \
        if out_channels is not None or b.flag() else []
    steps += [b.choice(keep_ops) for _ in range(b.integer(0 if steps else 1, 2))]
    for step in steps:
        x, shape = step(b, x, shape, keep_size=True) if step in keep_ops else step(b, x, shape)
    return x, shape


def residual(b: Builder, x: str, shape, **_):
    branch, branch_shape = _branch(b, x, shape, None)
    assert branch_shape == shape
    operands = [x, branch] if b.flag() else [branch, x]
    if b.integer(0, 3) == 0:
        extra, _ = _branch(b, x, shape, None)
        return b.node("Sum", operands + [extra]), shape
    return b.node("Add", operands), shape


def concat(b: Builder, x: str, shape, **_):
    c, h, w = shape
    branch, (bc, _, _) = _branch(b, x, shape, b.integer(1, 4) if b.flag() or c > MAX_CHANNELS else None)
    operands = [x, branch] if b.flag() else [branch, x]
    return b.node("Concat", operands, axis=b.choice([1, -3]) if b.opset >= 11 else 1), (c + bc, h, w)


FEATURE_MAP_OPS = [conv, conv, batchnorm, relu, clip, average_pool, max_pool, residual, concat, pad]


# --- the dense head --------------------------------------------------------------------------------


def flatten(b: Builder, x: str, shape):
    axis = b.choice([1, -3]) if b.opset >= 11 else 1
    attrs = {"axis": axis} if axis != 1 or b.flag() else {}
    return b.node("Flatten", [x], **attrs), (math.prod(shape),)


def dense(b: Builder, x: str, shape):
    features, out = shape[0], b.integer(1, 8)
    weight = b.normal(features, out, scale=1.0 / math.sqrt(features))
    bias = b.normal(out, scale=0.3)
    if b.flag():
        trans_b = b.flag()
        inputs = [x, b.const("B", weight.T.copy() if trans_b else weight)]
        attrs = {"transB": 1} if trans_b else {}
        if b.flag():
            attrs["alpha"] = b.choice([0.5, 2.0])
        if b.opset < 11 or b.flag():
            inputs.append(b.const("C", b.choice([bias, bias.reshape(1, out), bias[:1].copy()])))
            if b.flag():
                attrs["beta"] = b.choice([0.5, 1.5])
        return b.node("Gemm", inputs, **attrs), (out,)
    product = b.node("MatMul", [x, b.const("W", weight)])
    bias_name = b.const("bias", b.choice([bias, bias.reshape(1, out)]))
    return b.node("Add", [product, bias_name] if b.flag() else [bias_name, product]), (out,)


VECTOR_OPS = [relu, clip, batchnorm]


@st.composite
def networks(draw):
    """(model, x, output shape): a random valid model, an input batch for it, the expected output shape."""
    opset = draw(st.sampled_from(OPSETS))
    b = Builder(draw, opset, draw(st.integers(0, 2**32 - 1)))
    if draw(st.integers(0, 9)) == 0:
        input_shape = (draw(st.integers(1, 12)),)
    else:
        input_shape = (draw(st.integers(1, 4)), draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    x, shape = "x", input_shape
    count = draw(st.integers(0, 5)) if len(shape) == 3 else 0
    for _ in range(count):
        x, shape = draw(st.sampled_from(FEATURE_MAP_OPS))(b, x, shape)
    if len(shape) == 1 or count == 0 or draw(st.booleans()):
        if len(shape) == 3:
            x, shape = flatten(b, x, shape)
        for _ in range(draw(st.integers(0 if len(input_shape) == 3 else 1, 2))):
            x, shape = dense(b, x, shape)
            if draw(st.booleans()):
                x, shape = draw(st.sampled_from(VECTOR_OPS))(b, x, shape)
        if draw(st.booleans()):
            op = draw(st.sampled_from(["Softmax", "LogSoftmax"]))
            attrs = {"axis": draw(st.sampled_from([1, -1]))} if draw(st.booleans()) else {}
            x = b.node(op, [x], **attrs)
    last = draw(st.sampled_from(["Identity", "Dropout", "rename"])) if b.nodes else "Identity"
    if last == "rename":  # the last node computes x: it becomes the output
        b.nodes[-1].output[0] = "y"
    else:  # a no-op at the very end, also after a Softmax
        b.nodes.append(helper.make_node(last, [x], ["y"], name="result"))
    batch = draw(st.integers(1, 3))
    model = make_model(b.nodes, (batch, *input_shape), b.inits, opset=opset, output_rank=1 + len(shape))
    sample = np.random.default_rng(b.rng.integers(2**32)).standard_normal((batch, *input_shape))
    note(onnx.printer.to_text(model.graph))
    return model, sample.astype(np.float32), (batch, *shape)


@SETTINGS
@given(case=networks())
def test_random_network_matches_onnxruntime(case):
    model, x, expected_shape = case
    graph = assert_matches_onnxruntime(model, x, TOLERANCE)
    assert graph.input.shape == x.shape[1:]
    assert (x.shape[0], *graph.output.shape) == expected_shape


@SETTINGS
@given(case=networks(), batch=st.integers(1, 4))
def test_random_network_takes_any_batch_size(case, batch):
    """The graph is built once; a batch of another size evaluates per sample like the first."""
    model, x, _ = case
    graph = snnconv.load_onnx(model).validate()
    other = np.random.default_rng(batch).standard_normal((batch, *x.shape[1:])).astype(np.float32)
    whole = snnconv.ann.evaluate(graph, np.concatenate([x, other]))
    np.testing.assert_allclose(whole[: len(x)], snnconv.ann.evaluate(graph, x), rtol=0, atol=TOLERANCE)
    one_by_one = np.concatenate([snnconv.ann.evaluate(graph, other[i: i + 1]) for i in range(batch)])
    np.testing.assert_allclose(whole[len(x):], one_by_one, rtol=0, atol=TOLERANCE)


H = helper.make_node
DUPLICATE_READS = {  # layers that read one tensor twice, which the generator makes only now and then
    "add_x_x": [H("Add", ["x", "x"], ["y"])],
    "concat_x_x": [H("Concat", ["x", "x"], ["y"], axis=1)],
    "sum_r_r_x": [H("Relu", ["x"], ["r"]), H("Sum", ["r", "r", "x"], ["y"])],
    "add_x_x_then_relu": [H("Add", ["x", "x"], ["a"]), H("Relu", ["a"], ["y"])],
}


@pytest.mark.parametrize("name", sorted(DUPLICATE_READS))
def test_layer_reading_one_tensor_twice(name):
    model = make_model(DUPLICATE_READS[name], (2, 3, 4, 5))
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    assert_matches_onnxruntime(model, x)


@pytest.mark.parametrize("opset", [10, 19, 22])
@pytest.mark.parametrize("op", ["AveragePool", "MaxPool"])
def test_ceil_mode_window_that_would_start_in_the_end_padding(op, opset):
    """Kernel 2, stride 2, pads 1 on 5 columns: the fourth ceil_mode window would start in the
    end padding; onnxruntime drops it at every opset, the ONNX spec from opset 22 on (the
    generator above avoids it below 22, where onnx's shape inference still counts it)."""
    nodes = [H(op, ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
             H("Relu", ["p"], ["y"])]
    inits = {}
    if opset >= 22:  # a dense layer sized for the 3x3 output pins the shape
        nodes[-1] = H("Relu", ["p"], ["r"])
        nodes += [H("Flatten", ["r"], ["f"]), H("MatMul", ["f", "W"], ["y"])]
        inits["W"] = np.random.default_rng(1).standard_normal((2 * 3 * 3, 4)).astype(np.float32)
    model = make_model(nodes, (2, 2, 5, 5), inits, opset=opset, output_rank=2 if inits else 4)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    graph = assert_matches_onnxruntime(model, x)
    assert next(layer for layer in graph if layer.kind == "pool").shape == (2, 3, 3)
