"""The ANN modeled on reference platforms at batch size 1, memory traffic included.

Why: a spiking chip's modeled energy (static power plus every synaptic operation, neuron
update and hop) compared with the ANN's arithmetic alone (MACs x 4.6 pJ) says nothing
about who wins: fetching the weights costs more than multiplying them, and a processor
draws power for as long as it runs. Each platform here is a small roofline model with
the same accounting for every network:

- **Work**, per operator: the MACs of dense and convolution layers (``ann_cost.macs``);
  the bytes of its weights and biases; the bytes of the activations it reads and writes.
  Operators are dense, conv, pool, add and concat; batch norm and constant scalings are
  folded into the weights and ReLU and padding fused into their operator, as inference
  runtimes do. A recurrent layer runs at batch 1 as a stream does: one cell step per
  item of the sequence, each its own operator of ``H (F + H)`` MACs that reads the item,
  ``h_{t-1}`` and the cell's weights and writes ``h_t`` (the weights are stored once, read
  at every step).
- **Where data lives**, by size: activations stay on chip when the largest operator's
  inputs and output fit in the platform's on-chip memory (``sram_bytes``); the weights
  stay on chip between inferences when they fit in what is left, else every inference
  reads them from DRAM. Each byte is touched once per inference (ideal reuse within an
  operator), so the traffic is a lower bound.
- **Latency**: operators run one after another, each taking
  ``max(MACs / peak MAC rate, DRAM bytes / DRAM bandwidth) + dispatch overhead``: the
  fastest the platform could go, a lower bound.
- **Energy**: ``MACs x E_MAC + on-chip bytes x E_SRAM + DRAM bytes x E_DRAM``
  (dynamic) ``+ static power x latency`` (static).

The parameters and where each comes from (``Platform.sources`` carries them into every
output). Horowitz's figures are for 45 nm at 0.9 V: newer processes spend less per
operation, so they overstate the arithmetic of today's parts and understate nothing.

=============  =======================  ============  ============  ===========================================
parameter      server-cpu               gpu           edge          source
=============  =======================  ============  ============  ===========================================
precision      float32 (4 B)            float32 (4 B) int8 (1 B)    onnxruntime / CUDA cores run float32; the
                                                                    Edge TPU runs only 8-bit models (coral.ai)
E_MAC          4.6 pJ                   4.6 pJ        0.3 pJ        Horowitz, ISSCC 2014: fp32 mult 3.7 + add
                                                                    0.9 pJ; int8 mult 0.2 + int32 add 0.1 pJ
peak MACs/s    59.2 G (one core)        9.75 T        2 T           AMD EPYC 9654: boost 3.7 GHz, Zen 4 core
                                                                    2 x 256-bit FMA = 16 fp32 MACs/cycle;
                                                                    NVIDIA A100 datasheet 19.5 TFLOPS fp32;
                                                                    coral.ai FAQ 4 TOPS (2 ops per MAC)
on-chip        32 MiB (L3 of a CCD)     40 MiB (L2)   8 MiB         AMD EPYC 9004: 32 MB L3 per 8-core CCD;
                                                                    NVIDIA A100 whitepaper: 40 MB L2; coral.ai
                                                                    compiler docs: about 8 MB of SRAM caches
                                                                    the model's parameters
E_SRAM         12.5 pJ/B                12.5 pJ/B     12.5 pJ/B     Horowitz 2014: 1 MB SRAM, 64-bit read
                                                                    100 pJ (larger memories cost more)
E_DRAM         160 pJ/B                 160 pJ/B      160 pJ/B      Horowitz 2014 as tabulated by Han et al.,
                                                                    EIE, ISCA 2016: 32-bit DRAM read 640 pJ
                                                                    (HBM costs less per bit: not modeled)
DRAM bandwidth 460.8 GB/s               1,555 GB/s    0.625 GB/s    AMD: 12 channels DDR5-4800 per socket (one
                                                                    core reaches less); A100 datasheet; USB 3.0
                                                                    5 Gbit/s link of the Coral USB Accelerator
dispatch       1 us per operator        5 us          0             assumed: an inference runtime's operator
                                                                    dispatch on a CPU; a CUDA kernel launch;
                                                                    the Edge TPU runs the model as one program
                                                                    (host invoke and USB transfer not modeled)
static power   3.75 W                   50 W          0.2 W         derived: 360 W TDP of the EPYC 9654 over
                                                                    its 96 cores; assumed: an idle A100 SXM
                                                                    (NVIDIA publishes none); assumed: the order
                                                                    of an idle USB accelerator (Blouw et al.
                                                                    2019 measured 0.21 W for a Movidius NCS)
=============  =======================  ============  ============  ===========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from snnconv.ann_cost import E_MAC_PJ
from snnconv.ir import Add, Concat, Conv, Dense, Graph, Pool, Recurrent

__all__ = ["PLATFORMS", "Operator", "Platform", "model", "operators"]

# what runs as its own kernel (a recurrent layer: one per item); the rest is folded, fused or a view
_OPERATORS = (Conv, Dense, Pool, Add, Concat, Recurrent)
_HOROWITZ = "Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm"
_SRAM = f"{_HOROWITZ}: 1 MB SRAM, 64-bit read 100 pJ = 12.5 pJ/byte (larger memories cost more: a lower bound)"
_DRAM = (f"{_HOROWITZ}, as tabulated by Han et al., EIE, ISCA 2016: 32-bit DRAM read 640 pJ = 160 pJ/byte "
         "(HBM and LPDDR cost less per bit: not modeled)")
_TRAFFIC = "modeled: each weight and activation byte touched once per inference (ideal reuse, a lower bound)"


@dataclass(frozen=True)
class Platform:
    """A reference platform for the ANN: its arithmetic, memories, overheads and power, with sources."""

    name: str
    description: str
    bytes_per_value: int  # weights and activations
    mac_pj: float  # energy of one multiply-accumulate
    macs_per_s: float  # peak multiply-accumulates per second
    sram_bytes: int  # on-chip memory that can hold weights and activations
    sram_pj_per_byte: float
    dram_pj_per_byte: float
    dram_bytes_per_s: float
    dispatch_s: float  # per operator: launch or dispatch overhead
    static_w: float  # power drawn for as long as an inference runs, beyond the modeled accesses
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operator:
    """One kernel of the ANN at batch 1: its MACs and the bytes it touches."""

    name: str
    macs: int
    weight_bytes: int
    activation_bytes: int  # inputs read plus output written
    weights_of: str = ""  # the layer whose weights it reads, where several operators read the same (cell steps)


PLATFORMS = {platform.name: platform for platform in (
    Platform("server-cpu", "one core of an AMD EPYC 9654 server CPU (Zen 4), float32", 4, E_MAC_PJ,
             2 * 8 * 3.7e9, 32 * 2**20, 12.5, 160.0, 460.8e9, 1e-6, 360 / 96, {
                 "precision": "float32, as onnxruntime runs the ONNX model",
                 "mac_pj": f"{_HOROWITZ}: float32 multiply 3.7 pJ + add 0.9 pJ",
                 "macs_per_s": "AMD EPYC 9654 boost clock 3.7 GHz x Zen 4 core's two 256-bit FMA pipes "
                               "(16 float32 MACs per cycle): one core, as at batch 1",
                 "sram_bytes": "AMD EPYC 9004: 32 MB of L3 per 8-core CCD",
                 "sram_pj_per_byte": _SRAM, "dram_pj_per_byte": _DRAM,
                 "dram_bytes_per_s": "AMD EPYC 9004: 12 channels of DDR5-4800, 460.8 GB/s per socket "
                                     "(one core reaches less: optimistic)",
                 "dispatch_s": "assumed: 1 us per operator, an inference runtime's dispatch on a CPU",
                 "static_w": "derived: AMD's 360 W default TDP of the EPYC 9654 shared by its 96 cores",
                 "traffic": _TRAFFIC}),
    Platform("gpu", "NVIDIA A100 SXM4 40 GB GPU, float32 on CUDA cores", 4, E_MAC_PJ,
             19.5e12 / 2, 40 * 2**20, 12.5, 160.0, 1555e9, 5e-6, 50.0, {
                 "precision": "float32 on CUDA cores (no tensor cores), the ANN as exported",
                 "mac_pj": f"{_HOROWITZ}: float32 multiply 3.7 pJ + add 0.9 pJ",
                 "macs_per_s": "NVIDIA A100 datasheet: 19.5 TFLOPS float32 = 9.75 T MACs/s",
                 "sram_bytes": "NVIDIA A100 architecture whitepaper: 40 MB L2 cache",
                 "sram_pj_per_byte": _SRAM, "dram_pj_per_byte": _DRAM,
                 "dram_bytes_per_s": "NVIDIA A100 datasheet (40 GB HBM2): 1,555 GB/s",
                 "dispatch_s": "assumed: 5 us per operator, the order of a CUDA kernel launch at batch 1",
                 "static_w": "assumed: 50 W, the order of an idle A100 SXM (NVIDIA publishes no idle power)",
                 "traffic": _TRAFFIC}),
    Platform("edge", "Google Edge TPU (Coral USB Accelerator), int8", 1, 0.3,
             4e12 / 2, 8 * 2**20, 12.5, 160.0, 5e9 / 8, 0.0, 0.2, {
                 "precision": "int8: the Edge TPU runs only 8-bit quantized models (coral.ai docs)",
                 "mac_pj": f"{_HOROWITZ}: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ (int32 accumulator)",
                 "macs_per_s": "coral.ai Edge TPU FAQ: 4 TOPS (2 W), 2 operations per MAC",
                 "sram_bytes": "coral.ai Edge TPU compiler docs: about 8 MB of SRAM caches the parameters",
                 "sram_pj_per_byte": _SRAM, "dram_pj_per_byte": _DRAM,
                 "dram_bytes_per_s": "parameters beyond the SRAM stream from the host over USB 3.0 (5 Gbit/s)",
                 "dispatch_s": "assumed: none; the model runs as one program (host invoke and USB transfer of "
                               "inputs not modeled)",
                 "static_w": "assumed: 0.2 W, the order Blouw et al. 2019 (arXiv:1812.01739, Table 1) measured "
                             "for an idle USB accelerator (Movidius NCS, 0.21 W); Google publishes no idle power",
                 "traffic": _TRAFFIC}),
)}


def operators(graph: Graph, bytes_per_value: int) -> list[Operator]:
    """The kernels of ``graph`` at batch 1, with their MACs and the bytes they touch."""
    result = []
    for layer in graph:
        if not isinstance(layer, _OPERATORS):
            continue
        if isinstance(layer, Recurrent):
            result += _cell_steps(layer, graph.input_shapes(layer)[0], bytes_per_value)
            continue
        shapes = graph.input_shapes(layer)
        weighted = isinstance(layer, (Conv, Dense))  # pooling and adds: traffic, no MACs (as ann_cost counts)
        activations = sum(math.prod(shape) for shape in shapes) + math.prod(layer.shape)
        result.append(Operator(layer.name, layer.macs(shapes) if weighted else 0,
                               (layer.params() if weighted else 0) * bytes_per_value, activations * bytes_per_value))
    return result


def _cell_steps(layer: Recurrent, in_shape: tuple[int, ...], bytes_per_value: int) -> list[Operator]:
    """A recurrent layer over ``in_shape`` (L, F) at batch 1: per item, ``h_t = relu(W x_t + U h_{t-1} + b)`` as
    one kernel of ``H (F + H)`` MACs reading ``x_t``, ``h_{t-1}`` and the weights and writing ``h_t``."""
    items, features = in_shape
    hidden = len(layer.bias)
    per_item = layer.macs([(1, features)])
    return [Operator(f"{layer.name}[{t}]", per_item, layer.params() * bytes_per_value,
                     (features + 2 * hidden) * bytes_per_value, layer.name) for t in range(items)]


def model(graph: Graph, platform: Platform) -> dict:
    """Latency, energy (split into arithmetic, on-chip and DRAM traffic, static) and EDP of one inference of the
    ANN ``graph`` on ``platform`` (see the module docstring for the model and its sources)."""
    ops = operators(graph, platform.bytes_per_value)
    weights = sum(op.weight_bytes for op in ops)  # read: a recurrent cell's at every step
    stored = sum({op.weights_of or op.name: op.weight_bytes for op in ops}.values())  # held: each layer's once
    peak = max((op.activation_bytes for op in ops), default=0)
    activations_on_chip = peak <= platform.sram_bytes
    weights_on_chip = stored + (peak if activations_on_chip else 0) <= platform.sram_bytes
    dram = [(0 if weights_on_chip else op.weight_bytes) + (0 if activations_on_chip else op.activation_bytes)
            for op in ops]
    seconds = sum(max(op.macs / platform.macs_per_s, moved / platform.dram_bytes_per_s) + platform.dispatch_s
                  for op, moved in zip(ops, dram))
    macs = sum(op.macs for op in ops)
    touched = weights + sum(op.activation_bytes for op in ops)
    split_pj = {"arithmetic": macs * platform.mac_pj,
                "sram": (touched - sum(dram)) * platform.sram_pj_per_byte,
                "dram": sum(dram) * platform.dram_pj_per_byte,
                "static": platform.static_w * seconds * 1e12}
    energy_uj = sum(split_pj.values()) / 1e6
    return {"platform": platform.name, "description": platform.description, "macs": macs,
            "latency_us": seconds * 1e6, "energy_uj": energy_uj,
            "dynamic_energy_uj": (energy_uj - split_pj["static"] / 1e6),
            "energy_split_uj": {key: value / 1e6 for key, value in split_pj.items()},
            "edp_js": energy_uj * 1e-6 * seconds,
            "bytes": {"weights": weights, "activations": touched - weights, "dram": sum(dram)},
            "weights_on_chip": weights_on_chip, "activations_on_chip": activations_on_chip,
            "sources": dict(platform.sources)}
