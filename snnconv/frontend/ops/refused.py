"""Ops snnconv knows it cannot convert, each refused with why and what to do instead.

A spiking neuron's rate is a ReLU of its input, capped at one spike per step: it is never
negative. Activations that pass negative values (LeakyRelu, PRelu, Elu, Selu, Celu) have
no one-neuron equivalent; Tanh converts only as the model's last op (``output.py``).
(LeakyRelu is ``relu(x) - alpha * relu(-x)``, which two populations of opposite sign
could carry; the IR has no such pair yet.)

Resize and Upsample with mode nearest by integer factors convert (``resize.py``).

Pre-quantized models: QDQ models convert (constant weights under DequantizeLinear fold
to float weights; activation quantizer pairs, ``quantization.py``). QOperator models
(QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger) compute on integer codes with
integer accumulators and requantize between layers; they are refused by name: quantize
the float model with QuantFormat.QDQ instead. DynamicQuantizeLinear picks its scale per
input at run time, which no fixed network does.
"""

from __future__ import annotations

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
