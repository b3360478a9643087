"""Recurrent ops: ONNX ``RNN`` with ``Relu`` -> a ``Recurrent`` layer; LSTM and GRU refused with why.

What ``torch.nn.RNN(nonlinearity="relu", batch_first=True)`` exports, and what converts:
``Transpose(perm=[1, 0, 2])`` of the graph input ``[N, L, F]`` (to the RNN's time-major
``[L, N, F]``), ``RNN`` (forward, one layer, no clip, zero initial state), and the last
hidden state ``Y_h`` read through ``Gather(axis=0)`` of its one direction (``h[-1]``).
The IR has no time axis: the ``Recurrent`` layer reads the whole ``(L, F)`` sequence of a
sample and gives ``h_L``; the spiking form streams it item by item (``snnconv.recurrent``).

Refused, each with one line: other directions (a ``reverse`` or ``bidirectional`` RNN
needs the whole sequence before its first output, which streaming cannot give),
activations other than Relu (a spiking neuron's rate is a ReLU), ``clip``, sequence
lengths, a nonzero initial state, reading ``Y`` (every hidden state), LSTM and GRU.
"""

from __future__ import annotations

import numpy as np

from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter, refusal
from snnconv.ir import Input, Recurrent

_TIME_MAJOR = "time-major sequence"  # pending: a Transpose of the input to [L, N, F]
_HIDDEN = "rnn hidden state"  # pending: an RNN's Y_h, [directions, N, H]


@converter("Transpose", 1, 13, 21, 23, 24, 25)
def transpose(node: Node, ctx: Context) -> None:
    """Only the swap of batch and items of a sequence input in front of an RNN: the IR has no time axis."""
    layer = ctx.layer_of(node.inputs[0], node)
    perm = list(node.attr("perm", []))
    if not (isinstance(layer, Input) and len(layer.shape) == 2 and perm == [1, 0, 2]):
        raise node.unsupported(f"perm {perm} of a tensor of sample shape {layer.shape}; snnconv converts a Transpose "
                               "only as the [N, L, F] -> [L, N, F] swap of a sequence input in front of an RNN")
    ctx.alias(node, node.inputs[0])
    ctx.pending[node.outputs[0]] = _TIME_MAJOR


@converter("RNN", 7, 14, 22)
def rnn(node: Node, ctx: Context) -> None:
    """``h_t = relu(W x_t + R h_{t-1} + Wb + Rb)`` -> ``Recurrent(weight=W, recurrent=R, bias=Wb + Rb)``; ``Y_h``."""
    if ctx.pending.get(node.inputs[0]) != _TIME_MAJOR:
        raise node.unsupported("X is not the graph input transposed to [L, N, F]; snnconv streams a sequence input "
                               "[N, L, F] (torch.nn.RNN with batch_first=True)")
    direction = node.attr("direction", "forward")
    if direction != "forward":
        raise node.unsupported(f"direction {direction!r}: a {direction} RNN reads the sequence backwards, so its first "
                               "output needs the whole sequence, which a chip streaming one item at a time does not "
                               "have; train a forward (unidirectional) RNN")
    activations = [a.decode() if isinstance(a, bytes) else a for a in node.attr("activations", ["Tanh"])]
    if activations != ["Relu"]:
        raise node.unsupported(f"activations {activations}; a spiking neuron's rate is a ReLU of its input, so only "
                               "Relu converts (torch.nn.RNN(nonlinearity='relu'))")
    if node.attr("clip") is not None or node.attr("layout", 0):
        raise node.unsupported("clip or layout=1; export without a cell clip and with layout 0")
    if len(node.inputs) > 4 and node.inputs[4]:
        raise node.unsupported("sequence_lens: every sequence of a batch must have the model's length")
    initial = ctx.optional_const(node, 5, "initial_h") if len(node.inputs) > 5 else None
    if initial is not None and np.any(initial):
        raise node.unsupported("a nonzero initial_h; the spiking population starts from h_0 = 0")
    weight = ctx.require_const(node, 1, "W")[0].astype(np.float32)
    recurrent = ctx.require_const(node, 2, "R")[0].astype(np.float32)
    hidden = recurrent.shape[0]
    b = ctx.optional_const(node, 3, "B")
    bias = np.zeros(hidden, np.float32) if b is None else (b[0, :hidden] + b[0, hidden:]).astype(np.float32)
    if len(node.outputs) < 2 or not node.outputs[1]:
        raise node.unsupported("Y_h is not an output; snnconv converts the last hidden state Y_h (Y, every hidden "
                               "state, is not streamed out)")
    ctx.emit(node, Recurrent, [node.inputs[0]], output=node.outputs[1], weight=weight, recurrent=recurrent, bias=bias)
    ctx.pending[node.outputs[1]] = _HIDDEN


@converter("Gather", 1, 11, 13)
def gather(node: Node, ctx: Context) -> None:
    """Only ``Y_h[0]`` / ``Y_h[-1]`` (``h[-1]`` in torch): the one direction's last hidden state."""
    index = ctx.const(node.inputs[1])
    if (ctx.pending.get(node.inputs[0]) != _HIDDEN or node.attr("axis", 0) != 0 or index is None
            or index.size != 1 or int(index.ravel()[0]) not in (0, -1)):
        raise node.unsupported("snnconv converts a Gather of computed values only as h[-1] of an RNN's Y_h "
                               "(axis 0, index 0 or -1)")
    ctx.alias(node, node.inputs[0])


@refusal("LSTM", "GRU")
def gated(node: Node, ctx: Context) -> None:
    raise node.unsupported(f"{node.op} gates multiply one activation by another (sigmoid gates times the cell or "
                           "candidate state), and a spiking neuron only sums weighted spikes, so there is no sound "
                           "rate-coded equivalent; train an RNN with nonlinearity='relu' instead")
