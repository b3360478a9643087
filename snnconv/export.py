"""Export a compiled network to NIR, the Neuromorphic Intermediate Representation (``nir`` on PyPI).

The graph is written at the chip's precision: the integer weights, biases and
thresholds of the quantized program, unscaled (``r = 1``), so a NIR IF node's membrane
is the chip's membrane in the same integer units. Host-computed layers (those that read
only a constant-current input) stay float, as the host computes them. Each IR layer kind
maps to NIR nodes by one function in ``_EXPORTERS``:

- input -> ``Input``; dense -> ``Affine``; flatten -> ``Flatten`` (the whole sample);
- conv -> ``Conv2d``. NIR pads symmetrically, so asymmetric pads ``(p0, p1)`` on an axis
  become ``p = max(p0, p1)`` with ``(p - p0) / d`` zero taps added in front of the kernel
  and ``(p - p1) / d`` behind (``d`` the dilation): the same reads, the same size.
  Groups become a block-diagonal kernel and every kernel is made square (``_square``),
  as NIR 1.0's type inference reads channels and kernel size from ``weight.shape[1:3]``;
- sum pool -> ``SumPool2d`` (average pool -> ``AvgPool2d``) where NIR's floor arithmetic
  gives the same size, else the same window sum as a ``Conv2d`` of ones;
- affine ``x * s + t`` -> a diagonal ``Affine`` (vectors), a diagonal 1x1 ``Conv2d``
  (one value per channel) or ``Scale`` (a scale per position, no shift);
- zero pad -> an identity ``Conv2d`` with that padding;
- add -> no node: NIR sums all edges into a node, so the addends feed the readers;
- concat -> per input a 1x1 ``Conv2d`` (``Affine`` for vectors) placing its channels at
  their offset, summed at the readers like an add;
- a spiking population -> its neuron model's node (``snnconv.neurons``): IF -> ``IF`` with
  ``r = 1``, ``v_threshold = theta``, ``v_reset = 0``; leaky IF -> ``LIF`` with
  ``tau = r = 4096 / decay``;
- round (the host's integer encoding of an input current) -> no node;
- output -> ``Output`` of the last layer's current.

What NIR cannot say goes to the nodes' ``metadata`` and into the returned warnings:
subtractive reset and firing at ``v >= theta`` (NIR's IF fires at ``v > theta`` and sets
``v = v_reset``), the initial membrane ``round(v_init * theta)``, saturating state bits,
spiking max pooling, the output integrator (prediction = argmax of the output current
summed over the T steps), per-neuron conv biases, the constant-current input, and the
host's rounding of the currents it computes.

A recurrent network (``snnconv.recurrent``) exports through ``write_recurrent_nir``: its
hidden population reads itself through NIR's ``Delay`` node (the K-step delay, stated
exactly) and a ``Linear`` of the recurrent weights.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from snnconv import files, neurons
from snnconv.errors import MissingDependencyError, UnsupportedOpError
from snnconv.geometry import host_computed
from snnconv.ir import IF, Add, Affine, Concat, Conv, Dense, Flatten, Graph, Input, Layer, Output, Pad, Pool, Round
from snnconv.ir.layers import conv_output_size
from snnconv.recurrent_program import RecurrentProgram

__all__ = ["recurrent_nir_graph", "to_nir_graph", "write_nir", "write_recurrent_nir"]

log = logging.getLogger(__name__)


def write_nir(network, path: str | Path) -> list[str]:
    """Write ``network`` (a ``CompiledNetwork``) as a NIR file at ``path``, atomically.

    Returns the warnings about what NIR cannot express (each also logged).
    """
    nir = _nir()
    files.check_outputs({"the NIR file": path})
    graph, warnings = _export(network)
    files.atomic_write(path, lambda temporary: nir.write(str(temporary), graph))
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def to_nir_graph(network):
    """``network`` as a ``nir.NIRGraph`` (type-checked by NIR), without writing it or logging."""
    return _export(network)[0]


def _nir():
    """The ``nir`` module, from 1.0.6 on: the first with metadata on every node and ``v_reset`` on IF."""
    try:
        import nir
    except ImportError:
        raise MissingDependencyError("exporting to NIR needs the nir package: pip install 'nir>=1.0.6'") from None
    if "v_reset" not in {f.name for f in fields(nir.IF)}:
        raise MissingDependencyError(f"exporting to NIR needs nir >= 1.0.6, found {getattr(nir, '__version__', '?')}: "
                                     f"pip install -U 'nir>=1.0.6'")
    return nir


@dataclass
class _Context:
    """What the exporters share: the IR, the NIR nodes and edges so far, and the notes for the warnings.

    ``sources[layer]`` are the NIR nodes whose sum is that IR layer's value (NIR sums the
    edges into a node); ``passed_on[layer]`` is metadata for the nodes that read it.
    """

    nir: object  # the nir module
    graph: Graph
    host: set[str]  # layers the host computes (geometry.host_computed)
    timesteps: int
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    passed_on: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, layer: Layer, node, inputs: list[str], suffix: str = "") -> str:
        """Add ``node`` for ``layer``, reading the values of the IR layers ``inputs``; its NIR name."""
        name = _node_name(layer.name + suffix, self.nodes)
        inherited = {key: value for src in inputs for key, value in self.passed_on.get(src, {}).items()}
        node.metadata = {"snnconv_layer": layer.name, "snnconv_kind": layer.kind, **inherited, **node.metadata}
        if layer.name in self.host:
            node.metadata["host_computed"] = True
        self.nodes[name] = node
        self.edges += [(source, name) for src in inputs for source in self.sources[src]]
        return name

    def note(self, message: str, layer: Layer) -> None:
        self.notes.setdefault(message, []).append(layer.name)

    def warnings(self) -> list[str]:
        return [f"{', '.join(layers)}: {message}" for message, layers in self.notes.items()]


def _export(network) -> tuple[object, list[str]]:
    from snnconv.version import __version__

    nir = _nir()
    graph: Graph = network.graph
    timesteps = network.timesteps
    context = _Context(nir, graph, host_computed(graph), timesteps)
    for layer in graph:
        exporter = _EXPORTERS.get(type(layer))
        if exporter is None and graph.fact("spiking"):
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}) has no NIR node (NIR has no upsampling "
                                     "or transposed convolution); the .snn artifact and the chip model still run it")
        if exporter is None:
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}) has no NIR equivalent; only converted "
                                     f"networks export: compile the model with snnconv.compile first")
        try:
            context.sources[layer.name] = exporter(layer, context)
        except UnsupportedOpError as exc:
            raise UnsupportedOpError(f"layer {layer.name!r} ({layer.kind}): {exc}; it cannot be exported to NIR") \
                from None
    metadata = {"snnconv": __version__, "target": network.target.name, "timesteps": timesteps,
                "encoding": graph.fact("encoding", "current")}
    nir_graph = nir.NIRGraph(context.nodes, context.edges, metadata=metadata)
    return nir_graph, context.warnings()


def _node_name(name: str, taken: dict) -> str:
    """An HDF5-safe node name (``/`` would nest groups): word characters only, unique."""
    base = re.sub(r"\W+", "_", name).strip("_") or "layer"
    candidate, count = base, 1
    while candidate in taken:
        count += 1
        candidate = f"{base}_{count}"
    return candidate


def _f32(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def _scalar_or_array(values: np.ndarray) -> float | np.ndarray:
    """Metadata as NIR's writer takes it: a 0-d array cannot be a compressed HDF5 dataset."""
    return float(values) if values.ndim == 0 else _f32(values)


# --- one exporter per IR layer kind: (layer, context) -> the NIR nodes whose sum is its value ---


def _input(layer: Input, ctx: _Context) -> list[str]:
    encoding = ctx.graph.fact("encoding", "current")
    if encoding == "current":
        ctx.note(f"NIR has no input encoding; the chip receives the sample as a constant current, and the host "
                 f"computes the layers that read only it once (metadata 'host_computed'): feed the sample at "
                 f"every one of the {ctx.timesteps} timesteps (metadata 'encoding')", layer)
    else:
        ctx.note(f"NIR has no input encoding; the chip receives spikes drawn with probability clip(x, 0, 1) at "
                 f"every one of the {ctx.timesteps} timesteps (metadata 'encoding')", layer)
    node = ctx.nir.Input(input_type=np.array(layer.shape), metadata={"encoding": encoding})
    return [ctx.add(layer, node, [])]


def _dense(layer: Dense, ctx: _Context) -> list[str]:
    return [ctx.add(layer, ctx.nir.Affine(weight=_f32(layer.weight), bias=_f32(layer.bias)), list(layer.inputs))]


def _flatten(layer: Flatten, ctx: _Context) -> list[str]:
    in_shape = ctx.graph.input_shapes(layer)[0]
    node = ctx.nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)
    return [ctx.add(layer, node, list(layer.inputs))]


def _conv(layer: Conv, ctx: _Context) -> list[str]:
    bias = layer.bias
    metadata = {}
    if bias.ndim == 3:
        ctx.note("NIR's Conv2d has one bias per channel, this layer one per neuron: exported with bias 0 and "
                 "the per-neuron bias in metadata 'bias'", layer)
        bias, metadata = np.zeros(layer.weight.shape[0]), {"bias": _f32(layer.bias)}
    node = _conv2d(ctx, ctx.graph.input_shapes(layer)[0], layer.weight, bias, layer.stride, layer.pads,
                   layer.dilation, layer.groups)
    node.metadata.update(metadata)
    return [ctx.add(layer, node, list(layer.inputs))]


def _conv2d(ctx: _Context, in_shape, weight, bias, stride, pads, dilation=(1, 1), groups=1):
    """A NIR ``Conv2d`` of the same reads and size.

    Asymmetric pads become symmetric ones with a kernel extended by zero taps. Groups
    become a block-diagonal kernel: NIR 1.0's type check takes a Conv2d's input
    channels from ``weight.shape[1]``, ignoring ``groups``.
    """
    top, left, bottom, right = pads
    padding, extensions = [], []
    for begin, end, d in ((top, bottom, dilation[0]), (left, right, dilation[1])):
        if (begin - end) % d:
            raise UnsupportedOpError(f"padding ({begin}, {end}) with dilation {d} has no symmetric NIR equivalent")
        pad = max(begin, end)
        padding.append(pad)
        extensions.append(((pad - begin) // d, (pad - end) // d))
    weight = np.pad(_ungrouped(_f32(weight), groups), [(0, 0), (0, 0), *extensions])
    weight, padding = _square(weight, padding, dilation)
    return ctx.nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight, stride=tuple(stride),
                          padding=tuple(padding), dilation=tuple(dilation), groups=1, bias=_f32(bias))


def _square(weight: np.ndarray, padding: list[int], dilation) -> tuple[np.ndarray, list[int]]:
    """A square kernel of the same reads and output size: NIR 1.0 sizes a Conv2d's output
    along both axes from the kernel's height (``weight.shape[2]``).

    ``g`` zero taps on both sides of an axis with ``g * d`` more padding read the same
    positions: the first read stays at ``-(p + g*d) + g*d = -p`` and the size term
    ``2p - d*(k - 1)`` is unchanged.
    """
    height, width = weight.shape[2:]
    if (height - width) % 2:
        raise UnsupportedOpError(f"a {height}x{width} kernel (after padding is made symmetric) cannot be made "
                                 f"square, and NIR 1.0 sizes a Conv2d's output from its kernel height alone")
    grow = (max(0, width - height) // 2, max(0, height - width) // 2)
    weight = np.pad(weight, [(0, 0), (0, 0), (grow[0], grow[0]), (grow[1], grow[1])])
    return weight, [p + g * d for p, g, d in zip(padding, grow, dilation)]


def _ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped kernel (O, C/g, kh, kw) as the equivalent dense one (O, C, kh, kw), zero across groups."""
    if groups == 1:
        return weight
    out_channels, per_group = weight.shape[:2]
    dense = np.zeros((out_channels, per_group * groups, *weight.shape[2:]), weight.dtype)
    out_per_group = out_channels // groups
    for group in range(groups):
        rows = slice(group * out_per_group, (group + 1) * out_per_group)
        dense[rows, group * per_group:(group + 1) * per_group] = weight[rows]
    return dense


def _pool(layer: Pool, ctx: _Context) -> list[str]:
    in_shape = ctx.graph.input_shapes(layer)[0]
    metadata = {}
    if layer.mode == "max":
        ctx.note("NIR has no spiking max pooling (the chip spikes when the largest spike count in the window "
                 "grows): exported as a window sum with metadata pool = 'max'; a simulator that ignores it sums "
                 "the window's spikes instead", layer)
        metadata = {"pool": "max"}
    if _nir_pool_fits(layer, in_shape):
        kind = ctx.nir.AvgPool2d if layer.mode == "avg" else ctx.nir.SumPool2d
        node = kind(kernel_size=np.array(layer.kernel), stride=np.array(layer.stride),
                    padding=np.array(layer.pads[:2]), metadata=metadata)
    elif layer.mode != "avg" or not layer.ceil_mode and (layer.count_include_pad or not any(layer.pads)):
        node = _window_conv(ctx, layer, in_shape)
        node.metadata.update(metadata)
    else:
        raise UnsupportedOpError("NIR's AvgPool2d cannot divide border windows by their own counts "
                                 "(count_include_pad=False or ceil_mode, with padding)")
    return [ctx.add(layer, node, list(layer.inputs))]


def _nir_pool_fits(layer: Pool, in_shape) -> bool:
    """NIR's pools pad symmetrically with floor arithmetic and no dilation (averages: no padding,
    which NIR does not say whether to count)."""
    top, left, bottom, right = layer.pads
    if (top, left) != (bottom, right) or layer.dilation != (1, 1) or any(layer.pads) and layer.mode == "avg":
        return False
    floor = [conv_output_size(n, k, s, p, p) for n, k, s, p in zip(in_shape[1:], layer.kernel, layer.stride,
                                                                       (top, left))]
    return tuple(floor) == tuple(layer.shape[1:])


def _window_conv(ctx: _Context, layer: Pool, in_shape):
    """A pool's window sum (or average, over the whole kernel) as a depthwise convolution.

    With ``ceil_mode`` the windows overhanging the end read nothing there, like zero padding
    at the end: the extra end pads make the floor arithmetic give the ceil sizes.
    """
    channels = in_shape[0]
    value = 1.0 / math.prod(layer.kernel) if layer.mode == "avg" else 1.0
    weight = np.full((channels, 1, *layer.kernel), value, np.float32)
    top, left, bottom, right = layer.pads
    extra = [_overhang(n, k, s, p0, p1, d, out) for n, k, s, p0, p1, d, out in
             zip(in_shape[1:], layer.kernel, layer.stride, (top, left), (bottom, right), layer.dilation,
                 layer.shape[1:])]
    pads = (top, left, bottom + extra[0], right + extra[1])
    return _conv2d(ctx, in_shape, weight, np.zeros(channels), layer.stride, pads, layer.dilation, channels)


def _overhang(size, kernel, stride, begin, end, dilation, out) -> int:
    """End padding to add so that floor arithmetic gives ``out`` windows (0 without ceil mode)."""
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - (size + begin + end))


def _affine(layer: Affine, ctx: _Context) -> list[str]:
    in_shape = ctx.graph.input_shapes(layer)[0]
    scale = np.broadcast_to(layer.scale, in_shape)
    shift = np.broadcast_to(layer.shift, in_shape)
    if len(in_shape) == 1:
        node = ctx.nir.Affine(weight=np.diag(_f32(scale)), bias=_f32(shift))
    elif _per_channel(scale) and _per_channel(shift):
        weight = scale[:, :1, :1].reshape(-1, 1, 1, 1)
        node = _conv2d(ctx, in_shape, weight, shift[:, 0, 0], (1, 1), (0, 0, 0, 0), groups=in_shape[0])
    elif not shift.any():
        node = ctx.nir.Scale(scale=_f32(scale))
    else:
        raise UnsupportedOpError("a shift that varies within a channel has no NIR equivalent on a feature map")
    return [ctx.add(layer, node, list(layer.inputs))]


def _per_channel(values: np.ndarray) -> bool:
    flat = values.reshape(values.shape[0], -1)
    return bool(np.all(flat == flat[:, :1]))


def _pad(layer: Pad, ctx: _Context) -> list[str]:
    in_shape = ctx.graph.input_shapes(layer)[0]
    channels = in_shape[0]
    node = _conv2d(ctx, in_shape, np.ones((channels, 1, 1, 1)), np.zeros(channels), (1, 1), layer.pads,
                   groups=channels)
    return [ctx.add(layer, node, list(layer.inputs))]


def _add(layer: Add, ctx: _Context) -> list[str]:
    return [source for src in layer.inputs for source in ctx.sources[src]]


def _concat(layer: Concat, ctx: _Context) -> list[str]:
    placed, offset = [], 0
    for index, (src, shape) in enumerate(zip(layer.inputs, ctx.graph.input_shapes(layer))):
        total, channels = layer.shape[0], shape[0]
        block = np.zeros((total, channels), np.float32)
        block[offset + np.arange(channels), np.arange(channels)] = 1
        if len(shape) == 1:
            node = ctx.nir.Affine(weight=block, bias=np.zeros(total, np.float32))
        else:
            node = _conv2d(ctx, shape, block[:, :, None, None], np.zeros(total), (1, 1), (0, 0, 0, 0))
        placed.append(ctx.add(layer, node, [src], suffix=f"_{index}"))
        offset += channels
    return placed


def _if(layer: IF, ctx: _Context) -> list[str]:
    model = neurons.of(layer)
    v_init = model.initial(layer)
    metadata = {"model": layer.model, "reset": layer.reset, "fires_at": "v >= v_threshold",
                "v_init": _scalar_or_array(v_init), "compartments": layer.compartments}
    if layer.decay:
        metadata["decay"] = layer.decay
    resets = "subtracts the threshold" if layer.reset == "subtract" else "sets v = 0"
    ctx.note(f"NIR's neurons fire when v > v_threshold and set v = v_reset; the chip fires when v >= v_threshold "
             f"and {resets} (metadata 'fires_at', 'reset')", layer)
    if np.any(v_init):
        ctx.note("NIR's neurons start at v = 0; the chip's membrane starts at v_init (metadata 'v_init')", layer)
    if layer.state_bits is not None:
        metadata["state_bits"] = layer.state_bits
        ctx.note(f"the chip's membranes saturate at {layer.state_bits} signed bits, NIR's are unbounded "
                 f"(metadata 'state_bits')", layer)
    node, notes = model.nir(layer, ctx.nir, np.full(layer.shape, layer.threshold, np.float32), metadata)
    for note in notes:
        ctx.note(note, layer)
    return [ctx.add(layer, node, list(layer.inputs))]


def _round(layer: Round, ctx: _Context) -> list[str]:
    rounding = f"m * 2^e, m of {layer.bits} signed bits, e in {layer.exponent[0]}..{layer.exponent[1]}"
    ctx.note(f"the host computes this current once and sends it to the chip rounded to {rounding}; NIR computes "
             f"it in float (metadata 'input_rounding' on its reader)", layer)
    ctx.passed_on[layer.name] = {"input_rounding": rounding}
    return ctx.sources[layer.inputs[0]]


def _output(layer: Output, ctx: _Context) -> list[str]:
    metadata = {"readout": "argmax of the output summed over the timesteps", "scale": float(layer.scale)}
    saturating = ""
    if layer.state_bits is not None:
        metadata["state_bits"] = layer.state_bits
        saturating = f" (saturating at {layer.state_bits} signed bits)"
    if layer.activation is not None:
        metadata["activation"] = layer.activation
    steps, divisor = f"the {ctx.timesteps} steps", "T"
    if layer.burn_in is not None and layer.burn_in < ctx.timesteps:
        metadata["readout"] = f"argmax of the output summed over the timesteps after the first {layer.burn_in}"
        metadata["burn_in"] = layer.burn_in
        steps, divisor = f"steps {layer.burn_in + 1} to {ctx.timesteps}", f"(T - {layer.burn_in})"
    ctx.note(f"NIR's Output is the current at each step; the chip integrates it without spiking{saturating} and "
             f"predicts the argmax of the sum over {steps} (metadata 'readout'; sum / {divisor} * "
             f"'scale' approximates the source model's output)", layer)
    node = ctx.nir.Output(output_type=np.array(layer.shape), metadata=metadata)
    return [ctx.add(layer, node, list(layer.inputs))]


_EXPORTERS: dict[type[Layer], Callable[[Layer, _Context], list[str]]] = {
    Input: _input,
    Dense: _dense,
    Flatten: _flatten,
    Conv: _conv,
    Pool: _pool,
    Affine: _affine,
    Pad: _pad,
    Add: _add,
    Concat: _concat,
    IF: _if,
    Round: _round,
    Output: _output,
}


# --- a recurrent program (``snnconv.recurrent``): a population reading itself through a delay ---


def write_recurrent_nir(network, path: str | Path) -> list[str]:
    """Write a recurrent ``network`` (``snnconv.recurrent_network.RecurrentNetwork``) as a NIR file, atomically.

    NIR expresses the recurrent synapses: a graph may hold a cycle (snnTorch exports its
    ``RLeaky`` as a neuron node and a ``Linear`` back into it), and its ``Delay`` node,
    ``y(t) = x(t - tau)``, states the K-step delay exactly, so the hidden population is
    ``IF -> Delay(K) -> Linear(U) -> IF``. With the exporter's unit of time, one step
    (``r = 1``), a spike of step ``s`` reaches the population at step ``s + K``; a
    simulator that breaks every cycle with a one-step lag of its own must take that step off
    (metadata ``delay_steps``). What NIR has no words for goes to metadata and the
    returned warnings, as for a feed-forward network: the item schedule (each item held
    ``K`` steps), the host's rounding of the input currents, the subtractive reset and
    firing at ``v >= theta``, the initial membrane, the clip of the membranes to
    ``[0, theta]`` at each item's first step (a write at the item boundary, like the host's
    bias write), the saturating state bits, and the output integrators read and reset per
    item. A stacked layer ``l`` (``hidden_l``) reads ``hidden_{l-1}`` through an ``Affine``
    (``forward_l``: its weights and constant bias, no delay: the same step) and itself as
    the first layer does (``recurrent_delay_l``, ``recurrent_l``); the head reads the top.
    """
    nir = _nir()
    files.check_outputs({"the NIR file": path})
    graph, warnings = _export_recurrent(network)
    files.atomic_write(path, lambda temporary: nir.write(str(temporary), graph))
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def recurrent_nir_graph(network):
    """A recurrent ``network`` as a ``nir.NIRGraph`` (type-checked by NIR), without writing it or logging."""
    return _export_recurrent(network)[0]


def _export_recurrent(network) -> tuple[object, list[str]]:
    from snnconv.version import __version__

    nir = _nir()
    program: RecurrentProgram = network.program
    k, hidden, classes = program.steps_per_item, program.hidden, len(program.output_weight)
    features = program.input_weight.shape[1]
    rounding = "float" if program.bias_format is None else (
        f"m * 2^e, m of {program.bias_format[0]} signed bits, the smallest e in "
        f"{program.bias_format[1]}..{program.bias_format[2]} that holds it, saturating")
    hidden_meta = {"model": "if", "reset": "subtract", "fires_at": "v >= v_threshold", "v_init": float(program.v_init),
                   "item_boundary": "v = clip(v, 0, v_threshold) at each item's first step",
                   "compartments": program.compartments}
    if program.state_bits is not None:
        hidden_meta["state_bits"] = program.state_bits
    output_meta = {"readout": "per item: the output summed over the item's K steps, then reset; the prediction is "
                              "the last item's argmax", "scale": float(program.output_scale)}
    if program.state_bits is not None:
        output_meta["state_bits"] = program.state_bits
    ones = np.ones(hidden, np.float32)
    nodes = {
        "input": nir.Input(input_type=np.array([features]),
                           metadata={"encoding": "current", "items": program.items, "steps_per_item": k}),
        "input_current": nir.Affine(weight=_f32(program.input_weight), bias=_f32(program.input_bias),
                                    metadata={"host_computed": True, "input_rounding": rounding}),
        "hidden": nir.IF(r=ones, v_threshold=np.full(hidden, program.threshold, np.float32),
                         v_reset=np.zeros(hidden, np.float32), metadata=hidden_meta),
        "recurrent_delay": nir.Delay(delay=np.full(hidden, float(k), np.float32), metadata={"delay_steps": k}),
        "recurrent": nir.Linear(weight=_f32(program.recurrent)),
        "head": nir.Affine(weight=_f32(program.output_weight), bias=_f32(program.output_bias)),
        "output": nir.Output(output_type=np.array([classes]), metadata=output_meta),
    }
    edges = [("input", "input_current"), ("input_current", "hidden"), ("hidden", "recurrent_delay"),
             ("recurrent_delay", "recurrent"), ("recurrent", "hidden")]
    below = "hidden"
    for number, layer in enumerate(program.upper, start=2):  # a stacked layer: the one below in the same step
        size, name = len(layer.recurrent), f"hidden_{number}"
        nodes[f"forward_{number}"] = nir.Affine(weight=_f32(layer.weight), bias=_f32(layer.bias),
                                                metadata={"bias": "a constant current the host writes"})
        nodes[name] = nir.IF(r=np.ones(size, np.float32), v_threshold=np.full(size, layer.threshold, np.float32),
                             v_reset=np.zeros(size, np.float32), metadata={**hidden_meta, "v_init": float(layer.v_init)})
        nodes[f"recurrent_delay_{number}"] = nir.Delay(delay=np.full(size, float(k), np.float32),
                                                       metadata={"delay_steps": k})
        nodes[f"recurrent_{number}"] = nir.Linear(weight=_f32(layer.recurrent))
        edges += [(below, f"forward_{number}"), (f"forward_{number}", name), (name, f"recurrent_delay_{number}"),
                  (f"recurrent_delay_{number}", f"recurrent_{number}"), (f"recurrent_{number}", name)]
        below = name
    edges += [(below, "head"), ("head", "output")]
    metadata = {"snnconv": __version__, "target": network.target.name, "kind": "recurrent", "steps_per_item": k,
                "items": program.items, "timesteps": k * program.items, "encoding": "current"}
    return nir.NIRGraph(nodes, edges, metadata=metadata), _recurrent_warnings(program, rounding)


def _recurrent_warnings(program: RecurrentProgram, rounding: str) -> list[str]:
    k = program.steps_per_item
    notes = [(f"input: NIR has no sequence schedule; hold each of the {program.items} items for {k} steps as a "
             f"constant current (metadata 'items', 'steps_per_item'); the host computes input_current once per item "
             f"and rounds it to {rounding} (metadata 'input_rounding')"),
             ("hidden: NIR's neurons fire when v > v_threshold and set v = v_reset; the chip fires when v >= "
             "v_threshold and subtracts the threshold (metadata 'fires_at', 'reset')"),
             (f"hidden: NIR's neurons start at v = 0; the chip's start at v_init = {program.v_init:g} and are clipped to "
             "[0, v_threshold] at each item's first step (metadata 'v_init', 'item_boundary')"),
             (f"recurrent_delay: a spike reaches the population exactly {k} steps later (metadata 'delay_steps'); a "
             "simulator that adds its own one-step lag to cycles must take it off"),
             (f"output: NIR's Output is the current at each step; the chip integrates it per item and reads and resets "
             f"it at the item's end (metadata 'readout'; sum / {k} * 'scale' approximates the source model's output)")]
    if program.state_bits is not None:
        notes.append(f"hidden, output: the chip's membranes saturate at {program.state_bits} signed bits, NIR's are "
                     "unbounded (metadata 'state_bits')")
    if program.upper:
        notes.append(f"hidden_2..hidden_{len(program.upper) + 1}: stacked layers, each as hidden (its own v_init, "
                     "item-boundary clip and delay); forward_l carries the layer below's spikes in the same step, "
                     "with no delay, and the host's constant bias")
    return notes

