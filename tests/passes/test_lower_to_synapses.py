"""Lower to synapses: exact rewrites, one weighted layer per source-to-population path, clear refusals."""

from __future__ import annotations

from importlib import resources

import networkx as nx
import numpy as np
import pytest

import snnconv
from snnconv import ann
from snnconv.errors import UnsupportedOpError
from snnconv.geometry import is_integrator, is_spike_source, is_weighted
from snnconv.ir import IF, Add, Affine, Conv, Dense, Flatten, Graph, Input, Output, Pool, Upsample
from snnconv.passes.lower_to_synapses import LowerToSynapses
from snnconv.pipeline import convert
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
CALIB_X = np.load(MODELS.joinpath("mnist_calib.npz"))["x"]
R = np.random.default_rng(1)
FACTS = (("spiking", True), ("encoding", "rate"))


def _weighted_layers_per_path(graph: Graph) -> set[int]:
    """Independent check: enumerate every source-to-population path with networkx and count weighted layers."""
    dag = graph.to_networkx()
    counts = set()
    for source in (layer for layer in graph if is_spike_source(layer)):
        for target in (layer for layer in graph if is_integrator(layer) and layer is not source):
            for path in nx.all_simple_paths(dag, source.name, target.name):
                inner = [graph[name] for name in path[1:-1]]
                if any(is_spike_source(layer) or is_integrator(layer) for layer in inner):
                    continue
                counts.add(sum(is_weighted(layer) for layer in inner))
    return counts


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_bundled_models_lower_exactly_with_one_weighted_layer_per_path(model):
    graph = convert(snnconv.load_onnx(str(MODELS.joinpath(f"mnist_{model}.onnx"))), CALIB_X,
                    encoding="rate").graph
    lowered = LowerToSynapses().run(graph).graph
    assert _weighted_layers_per_path(lowered) == {1}
    assert not any(isinstance(layer, Pool) and layer.mode == "avg" for layer in lowered)
    x = CALIB_X[:100]
    np.testing.assert_allclose(ann.evaluate(lowered, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-5)
    before, after = simulate(graph, x, 8), simulate(lowered, x, 8)
    np.testing.assert_allclose(after.outputs[8], before.outputs[8], rtol=1e-4, atol=1e-4)


def _conv(name, src, c_in, c_out, size, groups=1):
    return Conv(name=name, inputs=(src,), shape=(c_out, size, size), pads=(1, 1, 1, 1), groups=groups,
                weight=R.normal(size=(c_out, c_in // groups, 3, 3)).astype(np.float32),
                bias=R.normal(size=c_out).astype(np.float32))


def _neurons(name, src, shape):
    return IF(name=name, inputs=(src,), shape=shape)


def _spiking_input(shape):
    return [Input(name="x", inputs=(), shape=shape), _neurons("s0", "x", shape)]


def test_identity_shortcut_gets_a_unit_synapse_and_stays_exact():
    layers = _spiking_input((4, 6, 6)) + [
        _conv("c1", "s0", 4, 4, 6), _neurons("s1", "c1", (4, 6, 6)),
        Add(name="sum", inputs=("s0", "s1"), shape=(4, 6, 6)), _neurons("s2", "sum", (4, 6, 6)),
        Flatten(name="f", inputs=("s2",), shape=(144,)),
        Dense(name="d", inputs=("f",), shape=(3,), weight=R.normal(size=(3, 144)).astype(np.float32),
              bias=np.zeros(3, np.float32)),
        Output(name="out", inputs=("d",), shape=(3,))]
    graph = Graph.from_layers(layers, facts=FACTS)
    result = LowerToSynapses().run(graph)
    assert result.notes["rewrites"]["identity_synapses"] == 3  # x -> s0 (input spikes), s0 -> sum, s1 -> sum
    assert _weighted_layers_per_path(result.graph) == {1}
    x = R.random(size=(5, 4, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(simulate(result.graph, x, 6).outputs[6], simulate(graph, x, 6).outputs[6])


def test_average_pools_with_border_windows_keep_their_per_position_divisor():
    layers = _spiking_input((2, 5, 5)) + [
        Pool(name="p", inputs=("s0",), shape=(2, 3, 3), mode="avg", kernel=(3, 3), stride=(2, 2),
             pads=(1, 1, 1, 1), count_include_pad=False),
        _neurons("s1", "p", (2, 3, 3)), Flatten(name="f", inputs=("s1",), shape=(18,)),
        Dense(name="d", inputs=("f",), shape=(2,), weight=R.normal(size=(2, 18)).astype(np.float32),
              bias=np.zeros(2, np.float32)),
        Output(name="out", inputs=("d",), shape=(2,))]
    graph = Graph.from_layers(layers, facts=FACTS)
    lowered = LowerToSynapses().run(graph).graph
    scale = lowered["p"].scale
    np.testing.assert_allclose(scale[0], [[1 / 4, 1 / 6, 1 / 4], [1 / 6, 1 / 9, 1 / 6], [1 / 4, 1 / 6, 1 / 4]])
    x = R.random(size=(3, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(lowered, x), ann.evaluate(graph, x), rtol=1e-6)


def test_grouped_conv_after_a_sum_pool_takes_the_divisor_per_input_channel():
    layers = _spiking_input((4, 8, 8)) + [
        Pool(name="p", inputs=("s0",), shape=(4, 4, 4), mode="avg", kernel=(2, 2), stride=(2, 2)),
        _conv("c", "p", 4, 6, 4, groups=2), _neurons("s1", "c", (6, 4, 4)),
        Flatten(name="f", inputs=("s1",), shape=(96,)),
        Dense(name="d", inputs=("f",), shape=(2,), weight=R.normal(size=(2, 96)).astype(np.float32),
              bias=np.zeros(2, np.float32)),
        Output(name="out", inputs=("d",), shape=(2,))]
    graph = Graph.from_layers(layers, facts=FACTS)
    lowered = LowerToSynapses().run(graph).graph
    assert "p" not in lowered  # the 1/4 divisor went into the conv
    x = R.random(size=(3, 4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(lowered, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-6)


def test_two_weighted_layers_without_neurons_between_are_refused_by_name():
    layers = _spiking_input((2, 4, 4)) + [
        _conv("first", "s0", 2, 3, 4), _conv("second", "first", 3, 3, 4), _neurons("s1", "second", (3, 4, 4)),
        Flatten(name="f", inputs=("s1",), shape=(48,)),
        Dense(name="d", inputs=("f",), shape=(2,), weight=R.normal(size=(2, 48)).astype(np.float32),
              bias=np.zeros(2, np.float32)),
        Output(name="out", inputs=("d",), shape=(2,))]
    with pytest.raises(UnsupportedOpError, match=r"'s1'.*through 2 weighted layers \(first, second\).*put a ReLU "
                                                 r"between first and second"):
        LowerToSynapses().run(Graph.from_layers(layers, facts=FACTS))


def _head(src, features):
    return [Flatten(name="f", inputs=(src,), shape=(features,)),
            Dense(name="d", inputs=("f",), shape=(2,), weight=R.normal(size=(2, features)).astype(np.float32),
                  bias=np.zeros(2, np.float32)),
            Output(name="out", inputs=("d",), shape=(2,))]


def _channel_affine(name, src, shape):
    per_channel = (shape[0], 1, 1)
    return Affine(name=name, inputs=(src,), shape=shape, scale=R.uniform(0.5, 2, per_channel).astype(np.float32),
                  shift=R.normal(size=per_channel).astype(np.float32))


def test_a_per_channel_affine_after_an_upsample_folds_back_into_the_conv_before_it():
    layers = _spiking_input((2, 3, 3)) + [
        _conv("c", "s0", 2, 3, 3), Upsample(name="up", inputs=("c",), shape=(3, 6, 6), factor=(2, 2)),
        _channel_affine("bn", "up", (3, 6, 6)), _neurons("s1", "bn", (3, 6, 6))] + _head("s1", 108)
    graph = Graph.from_layers(layers, facts=FACTS)
    lowered = LowerToSynapses().run(graph).graph
    assert "bn" not in lowered and _weighted_layers_per_path(lowered) == {1}
    x = R.random(size=(3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(lowered, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-5)


def test_a_shifted_affine_after_a_shared_pool_folds_into_its_own_copy_of_conv_and_pool():
    """DenseNet's transition: conv -> 2x2 average pool, read by a shortcut and by a BatchNorm (scale and shift)."""
    layers = _spiking_input((2, 4, 4)) + [
        _conv("c", "s0", 2, 3, 4), Pool(name="p", inputs=("c",), shape=(3, 2, 2), mode="avg", kernel=(2, 2),
                                        stride=(2, 2)),
        _channel_affine("bn", "p", (3, 2, 2)), _neurons("s1", "bn", (3, 2, 2)), _neurons("s2", "p", (3, 2, 2)),
        Add(name="sum", inputs=("s1", "s2"), shape=(3, 2, 2)), _neurons("s3", "sum", (3, 2, 2))] + _head("s3", 12)
    graph = Graph.from_layers(layers, facts=FACTS)
    result = LowerToSynapses().run(graph)
    assert result.notes["rewrites"]["copy_for_affine"] == 1 and _weighted_layers_per_path(result.graph) == {1}
    x = R.random(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(result.graph, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-5)


def test_an_upsample_shared_by_a_conv_and_a_shortcut_is_copied_so_only_the_shortcut_gets_a_unit_synapse():
    layers = _spiking_input((2, 3, 3)) + [
        Upsample(name="up", inputs=("s0",), shape=(2, 6, 6), factor=(2, 2)), _conv("c", "up", 2, 2, 6),
        _neurons("s1", "c", (2, 6, 6)), Add(name="sum", inputs=("up", "s1"), shape=(2, 6, 6)),
        _neurons("s2", "sum", (2, 6, 6))] + _head("s2", 72)
    graph = Graph.from_layers(layers, facts=FACTS)
    lowered = LowerToSynapses().run(graph).graph
    assert "up/for_sum" in lowered and _weighted_layers_per_path(lowered) == {1}
    x = R.random(size=(3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(simulate(lowered, x, 6).outputs[6], simulate(graph, x, 6).outputs[6])


def test_a_border_counting_average_pool_before_a_conv_is_refused_naming_pool_conv_and_workaround():
    """Inception's 3x3 average pool (count_include_pad=0, pads 1) read by a 1x1 conv."""
    layers = _spiking_input((2, 4, 4)) + [
        Pool(name="p", inputs=("s0",), shape=(2, 4, 4), mode="avg", kernel=(3, 3), stride=(1, 1),
             pads=(1, 1, 1, 1), count_include_pad=False),
        Conv(name="c", inputs=("p",), shape=(3, 4, 4), weight=R.normal(size=(3, 2, 1, 1)).astype(np.float32),
             bias=np.zeros(3, np.float32)), _neurons("s1", "c", (3, 4, 4))] + _head("s1", 48)
    with pytest.raises(UnsupportedOpError, match=r"^layer 's1' \(if\) receives spikes through average pool 'p', .*"
                                                 r"count_include_pad=0.*then through c, .*export the pool with "
                                                 r"count_include_pad=1") as info:
        LowerToSynapses().run(Graph.from_layers(layers, facts=FACTS))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["dense", "conv1x1"])
def test_a_linear_bottleneck_of_two_pointwise_layers_composes_into_one(kind):
    """MobileNet-v2's projection without ReLU read by the next 1x1 conv; an MLP's linear bottleneck."""
    def layer(name, src, c_in, c_out):
        weight = R.normal(size=(c_out, c_in) if kind == "dense" else (c_out, c_in, 1, 1)).astype(np.float32)
        cls, shape = (Dense, (c_out,)) if kind == "dense" else (Conv, (c_out, 4, 4))
        return cls(name=name, inputs=(src,), shape=shape, weight=weight, bias=R.normal(size=c_out).astype(np.float32))

    shape = (6,) if kind == "dense" else (6, 4, 4)
    size = int(np.prod(shape[1:], dtype=int)) if kind != "dense" else 1
    layers = _spiking_input(shape) + [layer("project", "s0", 6, 2), layer("expand", "project", 2, 5),
                                      _neurons("s1", "expand", (5,) if kind == "dense" else (5, 4, 4))]
    layers += _head("s1", 5 * size) if kind != "dense" else [
        Dense(name="d", inputs=("s1",), shape=(2,), weight=R.normal(size=(2, 5)).astype(np.float32),
              bias=np.zeros(2, np.float32)), Output(name="out", inputs=("d",), shape=(2,))]
    graph = Graph.from_layers(layers, facts=FACTS)
    result = LowerToSynapses().run(graph)
    assert result.notes["rewrites"]["compose"] == 1 and "project" not in result.graph
    assert _weighted_layers_per_path(result.graph) == {1}
    x = R.random(size=(4, *shape)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(result.graph, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-5)


def _in_order(layers) -> bool:
    """Every layer after all the layers it reads: the order ``_reaches_population_unweighted`` walks backwards."""
    seen = set()
    for layer in layers:
        if any(src not in seen for src in layer.inputs):
            return False
        seen.add(layer.name)
    return True


def test_copying_an_affine_per_reader_and_moving_it_past_a_sum_pool_keep_the_layers_in_order():
    """The rules rewrite a list that later walks read in order; before, the copy for the second reader and the
    moved pool went to the end of the list, after the layers reading them."""
    from snnconv.passes.lower_to_synapses import _one_affine_per_reader, _past_sum_pool

    scale = Affine(name="a", inputs=("s0",), shape=(2, 4, 4), scale=R.uniform(0.5, 2, (2, 1, 1)).astype(np.float32),
                   shift=np.zeros((2, 1, 1), np.float32))
    layers = _spiking_input((2, 4, 4)) + [
        scale, Pool(name="p", inputs=("a",), shape=(2, 2, 2), mode="sum", kernel=(2, 2), stride=(2, 2)),
        Upsample(name="up", inputs=("p",), shape=(2, 4, 4), factor=(2, 2)), _conv("c", "a", 2, 2, 4),
        Add(name="sum", inputs=("up", "c"), shape=(2, 4, 4)), _neurons("s1", "sum", (2, 4, 4))] + _head("s1", 32)
    copied = _one_affine_per_reader(layers, set())
    assert [layer.name for layer in copied if layer.name.startswith("a")] == ["a", "a/for_c"] and _in_order(copied)
    moved = _past_sum_pool(copied, set())
    assert [layer.name for layer in moved].index("p") < [layer.name for layer in moved].index("up")
    assert _in_order(moved)
    graph = Graph.from_layers(layers, facts=FACTS)
    lowered = LowerToSynapses().run(graph).graph
    x = R.random(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ann.evaluate(lowered, x), ann.evaluate(graph, x), rtol=1e-5, atol=1e-5)


def test_a_negative_scale_before_a_max_pool_is_refused_saying_so():
    """BN after a ReLU folds forward through a max pool only where every scale is >= 0; a negative one reached the
    pool and was refused as 'not spikes', without a word about the sign."""
    import torch

    import snnconv

    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -0.5]))
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), bn, torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3)).eval()
    x = R.random((8, 1, 8, 8)).astype(np.float32)
    with pytest.raises(UnsupportedOpError, match=r"max pool .* scales by negative factors .* move the scaling after "
                                                 r"the pool, or use an average pool"):
        snnconv.compile(model, "loihi", x, example=torch.zeros(1, 1, 8, 8), tune="off")
