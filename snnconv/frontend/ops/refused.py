"""Ops snnconv knows it cannot convert, each refused with why and what to do instead.

A spiking neuron's rate is a ReLU of its input, capped at one spike per step: it is never
negative. Activations that pass negative values (LeakyRelu, PRelu, Elu, Selu, Celu) have
no one-neuron equivalent; Tanh converts only as the model's last op (``output.py``).
(LeakyRelu is ``relu(x) - alpha * relu(-x)``, which two populations of opposite sign
could carry; the IR has no such pair yet.)

Resize and Upsample: nearest upsampling by an integer factor is exact routing (every
output neuron repeats one input neuron), but no existing layer expresses it: a Conv or
Pool maps a window at ``i * stride`` to output ``i`` and so cannot make a map larger than
its padded input with ``out[i] = x[i // s]``; a Dense after a Flatten could, but nothing
turns the vector back into a feature map. It needs an upsampling layer in the IR.

Pre-quantized models: QDQ models convert (constant weights under DequantizeLinear fold
to float weights; activation quantizer pairs, ``quantization.py``). QOperator models
(QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger) compute on integer codes with
integer accumulators and requantize between layers; they are refused by name: quantize
the float model with QuantFormat.QDQ instead. DynamicQuantizeLinear picks its scale per
input at run time, which no fixed network does.
"""

from __future__ import annotations

import numpy as np

from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import refusal

_RELU_RATE = ("a spiking neuron's rate is a ReLU of its input (never negative), so there is no spiking "
              "equivalent")


@refusal("LeakyRelu", "PRelu")
def leaky_relu(node: Node, ctx: Context) -> None:
    raise node.unsupported(f"{node.op} passes negative inputs with a slope; {_RELU_RATE}; retrain (or fine-tune) "
                           "the model with ReLU in its place")


@refusal("Elu", "Selu", "Celu")
def exponential_linear(node: Node, ctx: Context) -> None:
    raise node.unsupported(f"{node.op} is negative for negative inputs; {_RELU_RATE}; retrain (or fine-tune) the "
                           "model with ReLU in its place")


@refusal("LRN")
def local_response_normalization(node: Node, ctx: Context) -> None:
    raise node.unsupported("LRN divides each value by a power of a sum over neighbouring channels, which no neuron "
                           "computes from its synapses; retrain without it (BatchNormalization converts), or check "
                           "the ANN's accuracy with it removed from the model")


def _scales(node: Node, ctx: Context) -> list[float] | None:
    """Resize's or Upsample's factor per axis (batch first), or None where they are not constants."""
    full = ctx.full_shape(node.inputs[0], node)
    if node.op == "Upsample" and node.opset < 9:
        return list(node.attr("scales"))
    scales_at = 1 if node.op == "Upsample" or node.opset < 11 else 2
    scales = ctx.const(node.inputs[scales_at]) if len(node.inputs) > scales_at and node.inputs[scales_at] else None
    if scales is not None and scales.size:
        return scales.astype(np.float64).ravel().tolist()
    sizes = ctx.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    if sizes is None or sizes.size != len(full):  # opset 18's ``axes`` leave out axes; not read here
        return None
    return [out / size for out, size in zip(sizes.ravel().tolist(), full)]


@refusal("Resize", "Upsample")
def resize(node: Node, ctx: Context) -> None:
    mode = node.attr("mode", "nearest")
    scales = _scales(node, ctx)
    workaround = ("convert the network up to this node (onnx.utils.extract_model) and resize on the host, or retrain "
                  "without it")
    if mode != "nearest":
        raise node.unsupported(f"{node.op} mode {mode!r} interpolates between neighbours, which snnconv does not "
                               f"support; {workaround}")
    spatial = scales[2:] if scales is not None else None
    if scales is not None and scales[:2] == [1.0, 1.0] and all(s >= 1 and float(s).is_integer() for s in spatial):
        factors = "x".join(str(int(s)) for s in spatial)
        raise node.unsupported(f"nearest upsampling by {factors} is not supported yet (the IR has no upsampling "
                               f"layer); {workaround}")
    raise node.unsupported(f"{node.op} by factors {scales} (only nearest upsampling by integer factors is planned); "
                           f"{workaround}")


@refusal("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")
def qoperator(node: Node, ctx: Context) -> None:
    raise node.unsupported(f"{node.op} is a QOperator op (integer codes in, integer accumulators, requantized "
                           "outputs), which snnconv does not read; quantize the float model with QuantFormat.QDQ "
                           "(onnxruntime's default) instead, or convert the float model")


@refusal("DynamicQuantizeLinear")
def dynamic_quantization(node: Node, ctx: Context) -> None:
    raise node.unsupported("DynamicQuantizeLinear picks each input's scale at run time, which no fixed spiking "
                           "network can; quantize the float model statically (quantize_static, QuantFormat.QDQ) "
                           "or convert the float model")
