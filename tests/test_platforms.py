"""The ANN on reference platforms: operators, traffic, latency and energy against hand computations."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import ann_cost, platforms
from snnconv.ir import Conv, Dense, Graph, Input, Output

MODELS = resources.files("snnconv.models")
# Round numbers, so that every figure below can be worked out by hand.
TOY = platforms.Platform("toy", "a platform with round numbers", bytes_per_value=4, mac_pj=1.0, macs_per_s=1e9,
                         sram_bytes=1_000_000, sram_pj_per_byte=10.0, dram_pj_per_byte=100.0, dram_bytes_per_s=1e9,
                         dispatch_s=1e-6, static_w=2.0)


def dense_graph(n_in: int, n_out: int) -> Graph:
    weight, bias = np.zeros((n_out, n_in), np.float32), np.zeros(n_out, np.float32)
    return Graph.from_layers([Input(name="x", inputs=(), shape=(n_in,)),
                              Dense(name="fc", inputs=("x",), shape=(n_out,), weight=weight, bias=bias),
                              Output(name="y", inputs=("fc",), shape=(n_out,))])


def test_a_dense_layer_too_big_for_sram_reads_its_weights_from_dram():
    """1000 x 1000 weights + 1000 biases = 1,001,000 floats = 4,004,000 bytes: beyond 1 MB of SRAM, so every
    inference reads them from DRAM at 100 pJ a byte; the 2,000 activations (8,000 bytes) stay on chip."""
    result = platforms.model(dense_graph(1000, 1000), TOY)
    assert not result["weights_on_chip"] and result["activations_on_chip"]
    split = result["energy_split_uj"]
    assert split["dram"] == pytest.approx(4_004_000 * 100 / 1e6)  # 400.4 uJ
    assert split["sram"] == pytest.approx(8_000 * 10 / 1e6)
    assert split["arithmetic"] == pytest.approx(1_000_000 * 1.0 / 1e6)
    seconds = max(1_000_000 / 1e9, 4_004_000 / 1e9) + 1e-6  # memory-bound: 4.004 ms + 1 us dispatch
    assert result["latency_us"] == pytest.approx(seconds * 1e6)
    assert split["static"] == pytest.approx(2.0 * seconds * 1e6)  # W x s = J, in uJ
    assert result["energy_uj"] == pytest.approx(sum(split.values()))
    assert result["edp_js"] == pytest.approx(result["energy_uj"] / 1e6 * seconds)


def test_the_horowitz_dram_figure_by_hand():
    """The server CPU core reads a 100 x 1000 layer's weights (400,400 bytes) from its 32 MiB L3; shrunk to 64 KiB
    of on-chip memory it reads them from DRAM at 640 pJ per 32-bit word."""
    graph = dense_graph(1000, 100)
    cpu = platforms.PLATFORMS["server-cpu"]
    assert platforms.model(graph, cpu)["energy_split_uj"]["dram"] == 0
    small = platforms.model(graph, dataclasses.replace(cpu, sram_bytes=64 * 1024))
    assert small["energy_split_uj"]["dram"] == pytest.approx(100_100 * 640e-6)  # words x 640 pJ, in uJ
    assert small["energy_split_uj"]["arithmetic"] == pytest.approx(100_000 * (3.7 + 0.9) / 1e6)


def test_activations_too_big_for_sram_go_to_dram_too():
    result = platforms.model(dense_graph(400_000, 1), TOY)  # 1.6 MB of input activations
    assert not result["activations_on_chip"] and not result["weights_on_chip"]
    assert result["bytes"]["dram"] == result["bytes"]["weights"] + result["bytes"]["activations"]
    assert result["energy_split_uj"]["sram"] == 0


def test_small_layers_stay_on_chip_and_are_compute_bound():
    result = platforms.model(dense_graph(100, 10), TOY)
    assert result["weights_on_chip"] and result["activations_on_chip"] and result["bytes"]["dram"] == 0
    assert result["latency_us"] == pytest.approx((1000 / 1e9 + 1e-6) * 1e6)
    assert result["energy_split_uj"]["sram"] == pytest.approx((1010 + 110) * 4 * 10 / 1e6)


def test_a_convolution_counts_its_kernel_once_and_its_feature_maps():
    """conv 3 -> 4 channels, 3x3, pad 1 on 8x8: 4*3*3*3 + 4 = 112 parameters; 3*64 + 4*64 = 448 activations;
    4*64 outputs x 27 MACs = 6,912 MACs."""
    conv = Conv(name="c", inputs=("x",), shape=(4, 8, 8), weight=np.zeros((4, 3, 3, 3), np.float32),
                bias=np.zeros(4, np.float32), pads=(1, 1, 1, 1))
    graph = Graph.from_layers([Input(name="x", inputs=(), shape=(3, 8, 8)), conv,
                               Output(name="y", inputs=("c",), shape=(4, 8, 8))])
    (op,) = platforms.operators(graph, 1)
    assert (op.macs, op.weight_bytes, op.activation_bytes) == (6912, 112, 448)


def test_operators_of_the_bundled_cnn_are_its_kernels_and_all_its_macs():
    graph = snnconv.load_onnx(str(MODELS / "mnist_cnn.onnx"))
    ops = platforms.operators(graph, 4)
    assert [graph[op.name].kind for op in ops] == ["conv", "pool", "conv", "pool", "dense"]  # BN, ReLU fused
    assert sum(op.macs for op in ops) == ann_cost.macs(graph)
    conv_and_dense = [layer for layer in graph if layer.kind in ("conv", "dense")]
    assert sum(op.weight_bytes for op in ops) == 4 * sum(layer.params() for layer in conv_and_dense)


@pytest.mark.parametrize("name", list(platforms.PLATFORMS))
def test_every_parameter_of_every_platform_has_a_source(name):
    platform = platforms.PLATFORMS[name]
    parameters = {f.name for f in dataclasses.fields(platform)} - {"name", "description", "sources", "bytes_per_value"}
    assert parameters <= set(platform.sources)
    assert "precision" in platform.sources and all(platform.sources.values())
    assert name in platforms.__doc__ or name.replace("-", " ") in platforms.__doc__


@pytest.mark.parametrize("name", list(platforms.PLATFORMS))
def test_every_platform_models_every_bundled_network(name):
    for model in ("mnist_mlp", "mnist_cnn", "mnist_resnet", "mnist_mobilenet"):
        result = platforms.model(snnconv.load_onnx(str(MODELS / f"{model}.onnx")), platforms.PLATFORMS[name])
        assert result["latency_us"] > 0 and result["energy_uj"] > result["dynamic_energy_uj"] > 0
