"""Recurrent ops: ONNX ``RNN`` with ``Relu`` -> a ``Recurrent`` layer; LSTM and GRU refused with why.

What ``torch.nn.RNN(nonlinearity="relu", batch_first=True)`` exports, and what converts:
``Transpose(perm=[1, 0, 2])`` of the graph input ``[N, L, F]`` (to the RNN's time-major
``[L, N, F]``), ``RNN`` (forward, one layer, no clip, zero initial state), and the last
hidden state ``Y_h`` read through ``Gather(axis=0)`` of its one direction (``h[-1]``).
The IR has no time axis: the ``Recurrent`` layer reads the whole ``(L, F)`` sequence of a
sample and gives ``h_L``; the spiking form streams it item by item (``snnconv.recurrent``).

Stacked layers (``num_layers > 1``, legacy export): the next ``RNN`` reads ``Squeeze(Y, axis
1)`` of the one below, and the head reads ``Gather(Concat(Y_h of every layer), -1)``. The
layer below then becomes ``Recurrent(sequence=True)`` (it gives every ``h_t``), the Concat
is only a list of the layers' last states, and only the top one (index -1 or L-1) may be
read: a head on a lower layer's state is refused.

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
_BELOW = "hidden state of a layer with one stacked above"  # pending (_BELOW, layer): its Y_h, no longer a value
_Y = "rnn every hidden state"  # pending (_Y, layer): an RNN's Y, [L, directions, N, H]
_STACKED_INPUT = "time-major hidden states"  # pending (.., layer): Squeeze(Y, 1), [L, N, H]: a stacked RNN's X
_STATES = "stacked last hidden states"  # pending (_STATES, [Y_h tensors]): Concat of every layer's Y_h
_BATCH_FIRST = "batch-first hidden states"  # pending (.., layer): Transpose(Squeeze(Y, 1)), [N, L, H]: torch's output o


@converter("Transpose", 1, 13, 21, 23, 24, 25)
def transpose(node: Node, ctx: Context) -> None:
    """Only the swap of batch and items of a sequence input in front of an RNN, or of an RNN's hidden states after
    it (torch's batch-first output ``o``, read as ``o[:, -1]``): the IR has no time axis."""
    perm = list(node.attr("perm", []))
    below = ctx.pending.get(node.inputs[0])
    if isinstance(below, tuple) and below[0] == _STACKED_INPUT and perm == [1, 0, 2]:
        ctx.pending[node.outputs[0]] = (_BATCH_FIRST, below[1])  # no value: only o[:, -1] (a Gather) reads it
        return
    layer = ctx.layer_of(node.inputs[0], node)
    if not (isinstance(layer, Input) and len(layer.shape) == 2 and perm == [1, 0, 2]):
        raise node.unsupported(f"perm {perm} of a tensor of sample shape {layer.shape}; snnconv converts a Transpose "
                               "only as the [N, L, F] -> [L, N, F] swap of a sequence input in front of an RNN")
    ctx.alias(node, node.inputs[0])
    ctx.pending[node.outputs[0]] = _TIME_MAJOR


@converter("RNN", 7, 14, 22)
def rnn(node: Node, ctx: Context) -> None:
    """``h_t = relu(W x_t + R h_{t-1} + Wb + Rb)`` -> ``Recurrent(weight=W, recurrent=R, bias=Wb + Rb)``; ``Y_h``.
    Reading the hidden states of the RNN below (a stacked layer), that one becomes ``sequence``."""
    source = ctx.pending.get(node.inputs[0])
    below = source[1] if isinstance(source, tuple) and source[0] == _STACKED_INPUT else None
    if source != _TIME_MAJOR and below is None:
        raise node.unsupported("X is neither the graph input transposed to [L, N, F] nor the hidden states of the "
                               "RNN below; snnconv streams a sequence input [N, L, F] (torch.nn.RNN with "
                               "batch_first=True, any num_layers)")
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
    if below is not None:
        _give_sequence(ctx, below)
    layer = ctx.emit(node, Recurrent, [node.inputs[0]], output=node.outputs[1], weight=weight, recurrent=recurrent,
                     bias=bias)
    ctx.pending[node.outputs[1]] = (_HIDDEN, layer.name)
    if node.outputs[0]:
        ctx.pending[node.outputs[0]] = (_Y, layer.name)


def _give_sequence(ctx: Context, name: str) -> None:
    """The layer ``name`` gives every ``h_t`` (L, H) from now on: its ``Y_h`` is no longer a value anyone reads."""
    import dataclasses

    old = ctx.layer(name)
    new = dataclasses.replace(old, sequence=True, shape=(ctx.layer(old.inputs[0]).shape[0], old.shape[0]))
    ctx.layers[ctx.layers.index(old)] = new
    ctx._by_name[name] = new
    for tensor, pending in list(ctx.pending.items()):
        if pending == (_HIDDEN, name):
            ctx.pending[tensor] = (_BELOW, name)


def stacked(node: Node, ctx: Context) -> bool:
    """Claim a ``Squeeze(Y, axis 1)`` (a stacked RNN's input) or a ``Concat`` of the layers' ``Y_h`` (torch's
    ``h_n``); the shape ops call this first. False where the node reads no RNN output."""
    pending = [ctx.pending.get(t) for t in node.inputs if t]
    kinds = [p[0] if isinstance(p, tuple) else p for p in pending]
    if node.op == "Squeeze" and kinds[:1] == [_Y]:
        axes = ctx.optional_const(node, 1, "axes") if node.opset >= 13 else node.attr("axes")
        if axes is None or [int(a) for a in np.ravel(axes)] != [1]:
            raise node.unsupported("squeezes an RNN's Y other than at axis 1 (its one direction); snnconv reads Y "
                                   "only as the input of a stacked RNN")
        ctx.values[node.outputs[0]] = pending[0][1]
        ctx.pending[node.outputs[0]] = (_STACKED_INPUT, pending[0][1])
        return True
    if node.op == "Concat" and kinds and all(k in (_HIDDEN, _BELOW) for k in kinds):
        if node.attr("axis", 0) != 0:
            raise node.unsupported("concatenates RNN hidden states along an axis other than 0 (layers)")
        ctx.pending[node.outputs[0]] = (_STATES, [t for t in node.inputs if t])
        return True
    if any(k in (_Y, _HIDDEN, _BELOW, _STATES, _BATCH_FIRST) for k in kinds):
        raise node.unsupported("reads an RNN's outputs other than as a stacked RNN's input or the top layer's last "
                               "hidden state h[-1]; snnconv streams out only the top layer's h[-1]")
    return False


@converter("Gather", 1, 11, 13)
def gather(node: Node, ctx: Context) -> None:
    """Only ``Y_h[0]`` / ``Y_h[-1]`` (``h[-1]`` in torch): the one direction's last hidden state; of stacked layers'
    ``Y_h`` (a Concat), the top layer's."""
    index = ctx.const(node.inputs[1])
    pending = ctx.pending.get(node.inputs[0])
    kind = pending[0] if isinstance(pending, tuple) else pending
    if kind == _BATCH_FIRST:
        return _last_output(node, ctx, pending[1], index)
    if (kind not in (_HIDDEN, _STATES) or node.attr("axis", 0) != 0 or index is None or index.size != 1):
        raise node.unsupported("snnconv converts a Gather of computed values only as h[-1] of an RNN's Y_h "
                               "(axis 0, index 0 or -1)")
    states = pending[1] if kind == _STATES else [node.inputs[0]]
    position = int(index.ravel()[0])
    if position not in (len(states) - 1, -1):
        raise node.unsupported(f"reads h[{position}], the last hidden state of recurrent layer {position} of "
                               f"{len(states)}; snnconv streams out only the top layer's (h[-1])")
    top = ctx.pending.get(states[-1])
    if not (isinstance(top, tuple) and top[0] == _HIDDEN):
        raise node.unsupported("the last state of the Concat is not the top RNN's Y_h; snnconv streams out only the "
                               "top layer's last hidden state (h[-1])")
    ctx.alias(node, states[-1])


def _last_output(node: Node, ctx: Context, name: str, index) -> None:
    """``o[:, -1]`` of torch's batch-first output: the last item's hidden state, which is the layer's ``Y_h``."""
    layer = ctx.layer(name)
    if layer.sequence:
        raise node.unsupported("reads the output o of a recurrent layer that feeds a stacked one; snnconv streams out "
                               "only the top layer's last hidden state")
    items = ctx.layer(layer.inputs[0]).shape[0]
    if node.attr("axis", 0) != 1 or index is None or index.size != 1 or int(index.ravel()[0]) not in (-1, items - 1):
        raise node.unsupported(f"reads the RNN's output o other than as o[:, -1] (axis 1, index -1 or {items - 1}); "
                               "snnconv streams out only the last item's hidden state")
    ctx.values[node.outputs[0]] = name


@refusal("LSTM", "GRU")
def gated(node: Node, ctx: Context) -> None:
    raise node.unsupported(f"{node.op} gates multiply one activation by another (sigmoid gates times the cell or "
                           "candidate state), and a spiking neuron only sums weighted spikes, so there is no sound "
                           "rate-coded equivalent; train an RNN with nonlinearity='relu' instead")
