"""Quantize: every number lies in its target's format, and the integer SNN keeps the float SNN's accuracy."""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pytest

import snnconv
from snnconv import targets
from snnconv.errors import BadGraphError
from snnconv.ir import IF, Affine, Conv, Dense, Output, Round
from snnconv.passes.quantize import Quantize
from snnconv.pipeline import convert, to_target
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
TEST = np.load(MODELS.joinpath("mnist_test.npz"))
INTEGER_TARGETS = [name for name in targets.names() if not targets.get(name).precision.is_float]


@functools.cache
def compiled(model: str, target: str, timesteps: int | None = None) -> snnconv.Graph:
    graph = snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx")))
    return convert(graph, CALIB_X, target=targets.get(target), timesteps=timesteps).graph


def _is_in_format(values: np.ndarray, bits: int, exponents: tuple[int, int], groups: np.ndarray) -> bool:
    """Every value is ``m * 2^e`` with ``|m| <= 2^(bits-1) - 1`` and one ``e`` in range per group."""
    largest = 2 ** (bits - 1) - 1
    for group in groups:
        if not any(np.all(group % 2.0 ** e == 0) and np.abs(group / 2.0 ** e).max(initial=0) <= largest
                   for e in range(exponents[0], exponents[1] + 1)):
            return False
    return True


def _groups(values: np.ndarray, per_channel: bool) -> np.ndarray:
    return values.reshape(values.shape[0], -1) if per_channel and values.size > 1 and values.ndim else \
        values.reshape(1, -1)


@pytest.mark.parametrize("target", INTEGER_TARGETS)
@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_weights_biases_thresholds_and_state_lie_in_the_targets_formats(model, target):
    p = targets.get(target).precision
    graph = compiled(model, target)
    assert graph.fact("quantized") == target
    per_channel = p.exponent_group == "channel"
    for layer in graph:
        if isinstance(layer, (Conv, Dense, Affine)) and not _host_computed(graph, layer):
            weights = layer.scale if isinstance(layer, Affine) else layer.weight
            biases = layer.shift if isinstance(layer, Affine) else layer.bias
            assert _is_in_format(weights, p.weight_bits, p.weight_exponent, _groups(weights, per_channel)), layer.name
            assert _is_in_format(biases, p.bias_bits, p.bias_exponent, biases.reshape(-1, 1)), layer.name
        if isinstance(layer, IF):
            mantissa = layer.threshold / 2 ** p.threshold_shift
            assert mantissa == int(mantissa) and 1 <= mantissa < 2 ** p.threshold_bits, layer.name
            assert layer.state_bits == p.state_bits
        if isinstance(layer, Round):
            assert (layer.bits, layer.exponent) == (p.bias_bits, p.bias_exponent)
        if isinstance(layer, Output):
            assert layer.state_bits == p.state_bits


def _host_computed(graph: snnconv.Graph, layer) -> bool:
    """Layers fed only by the constant-current input run on the host, in float."""
    sources = list(layer.inputs)
    while sources:
        source = graph[sources.pop()]
        if isinstance(source, IF) or source.kind == "pool" and source.mode == "max":
            return False
        sources += list(source.inputs)
    return True


def test_loihi_integer_snn_is_within_half_a_point_of_the_float_snn_on_the_bundled_cnn():
    """The issue's acceptance figure: T = 32, all 1,000 bundled test digits."""
    graph = snnconv.load_onnx(str(MODELS.joinpath("mnist_cnn.onnx")))
    float_snn = convert(graph, CALIB_X, timesteps=32)
    integer_snn = to_target(float_snn, targets.get("loihi"), 32)
    accuracy = {name: float((simulate(c.graph, TEST["x"], 32).predictions() == TEST["y"]).mean())
                for name, c in (("float", float_snn), ("loihi", integer_snn))}
    assert abs(accuracy["loihi"] - accuracy["float"]) <= 0.005, accuracy


@pytest.mark.parametrize("target", INTEGER_TARGETS)
def test_per_layer_quantization_error_is_recorded_and_small(target):
    graph = snnconv.load_onnx(str(MODELS.joinpath("mnist_resnet.onnx")))
    notes = convert(graph, CALIB_X, target=targets.get(target)).notes["quantize"]
    errors = [e["weights"] for layer in notes["layers"].values() for e in layer["weight_error"].values()]
    # relative RMS error per layer: ~1% at 8 bits; Speck's 16-bit output integrator forces a small threshold
    assert errors and max(errors) > 0 and all(0 <= e < (0.15 if target == "speck" else 0.05) for e in errors), errors


def test_quantize_refuses_a_graph_not_lowered_to_synapses():
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))), CALIB_X).graph
    with pytest.raises(BadGraphError, match="lower_to_synapses"):
        Quantize(targets.get("loihi")).run(graph)


def test_the_ideal_target_leaves_weights_in_float():
    if "ideal" not in targets.names():
        pytest.skip("no ideal target registered")
    float_graph = convert(snnconv.load_onnx(str(MODELS.joinpath("mnist_mlp.onnx"))), CALIB_X).graph
    ideal = compiled("mlp", "ideal")
    np.testing.assert_array_equal(simulate(float_graph, TEST["x"][:200], 16).outputs[16],
                                  simulate(ideal, TEST["x"][:200], 16).outputs[16])


def _integer_weight_graph(q: np.ndarray, step: float) -> snnconv.Graph:
    """input -> dense -> capped ReLU -> dense of weights ``q * step`` -> output: the second layer's weights are a
    QDQ model's integers under one scale, and the ReLU its activation quantizer's ceiling, which gives it one
    normalization scale (the first layer, fed by the input current, stays on the host); the graph fact
    ``fake_quant`` says so, as the frontend records it for a QDQ model."""
    from snnconv.ir import Graph, Input, ReLU

    rng = np.random.default_rng(5)
    layers = [Input(name="x", inputs=(), shape=(6,)),
              Dense(name="hidden", inputs=("x",), shape=(q.shape[1],),
                    weight=rng.normal(0, 1, (q.shape[1], 6)).astype(np.float32), bias=np.zeros(q.shape[1], np.float32)),
              ReLU(name="relu", inputs=("hidden",), shape=(q.shape[1],), max_value=2.0),
              Dense(name="classes", inputs=("relu",), shape=(q.shape[0],), weight=(q * step).astype(np.float32),
                    bias=np.zeros(q.shape[0], np.float32)),
              Output(name="out", inputs=("classes",), shape=(q.shape[0],))]
    return Graph.from_layers(layers, facts=(("fake_quant", ({"tensor": "relu", "action": "ceiling"},)),))


@pytest.mark.parametrize("target", INTEGER_TARGETS)
def test_integer_weights_under_one_scale_are_kept_as_the_quantizer_set_them(target):
    """One threshold per population makes every chip weight the integer times a power of two, where the format
    holds the integers: ``theta`` near ``2^j / c`` with ``max|q| * |theta c / 2^j - 1| < 1/2``."""
    rng = np.random.default_rng(6)
    q = rng.integers(-127, 128, (4, 16))
    q[0, :2] = (127, 1)  # the full int8 range, and the step itself
    graph = _integer_weight_graph(q, 0.0123)
    calibration = rng.random((64, 6), dtype=np.float32)
    converted = convert(graph, calibration, target=targets.get(target), timesteps=16, tune="off", correct_bias=False)
    weight = converted.graph["classes"].weight
    ratio = weight[0, 1] / q[0, 1]
    assert converted.notes["quantize"]["layers"]["out"]["integer_grid"]
    assert ratio == 2.0 ** round(np.log2(ratio))
    np.testing.assert_array_equal(weight, q * ratio)


def test_float_weights_have_no_integer_grid():
    from snnconv.passes.quantize import _integer_grid

    assert _integer_grid(np.random.default_rng(7).normal(0, 1, (8, 8)), 127) is None
    assert _integer_grid(np.array([[0.5, -1.5, 0.0]]), 127) == (0.5, 3)


def test_row_grids_find_each_channels_step_and_integers():
    from snnconv.passes.quantize import _row_grids

    q = np.array([[5, -7, 0, 10], [127, 1, -3, 0], [0, 0, 0, 0]])
    steps = np.array([0.25, 0.003, 1.0])
    found, integers = _row_grids((q * steps[:, None]).astype(np.float32), 127)
    np.testing.assert_allclose(found[:2], steps[:2], rtol=1e-6)  # 5 and 7: the step is a fifth of the smallest
    np.testing.assert_array_equal(integers, q)
    assert _row_grids(np.random.default_rng(8).normal(0, 1, (4, 9)), 127) is None


@pytest.mark.parametrize("target", INTEGER_TARGETS)
@pytest.mark.parametrize("ratios", [(1, 2, 0.25, 8), (1, 1.3, 0.7, 1.9)])
def test_per_channel_integer_weights_are_kept_exactly_where_the_steps_are_powers_of_two_apart(target, ratios):
    """Channel ``o`` of the chip holds ``round(theta c_o q[o] / 2^e_o)``: its integers times one factor for every
    channel at once only where ``theta c_o`` are all powers of two; the fact says which, and why not."""
    rng = np.random.default_rng(9)
    q = rng.integers(-127, 128, (4, 16))
    q[:, 0] = 127
    graph = _integer_weight_graph(q, 0.0123 * np.array(ratios)[:, None])
    calibration = rng.random((64, 6), dtype=np.float32)
    converted = convert(graph, calibration, target=targets.get(target), timesteps=16, tune="off", correct_bias=False)
    weight = converted.graph["classes"].weight.astype(np.float64)
    factor = weight[:, 0] / 127
    record = converted.graph.fact("integer_weights")["classes"]
    kept = bool(np.array_equal(weight, q * factor[:, None]))
    assert record["kept"] == kept and record["grid"] == "per channel"
    powers_apart = ratios[1] == 2
    widest = targets.get(target).precision.weight_max
    assert kept == (powers_apart and 127 * max(ratios) / min(ratios) <= widest
                    or powers_apart and targets.get(target).precision.exponent_group == "channel")
    if not kept:
        assert record["reason"].startswith("re-rounded")
