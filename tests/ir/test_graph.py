"""``Graph.from_layers`` / ``Graph.validate`` enforce the IR's invariants, layers are
immutable values, and every layer kind's ``infer_shape`` agrees with torch's shapes."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnconv.errors import BadGraphError
from snnconv.ir import (
    IF,
    LAYER_KINDS,
    Add,
    Affine,
    BatchNorm,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    Input,
    Output,
    Pad,
    Pool,
    Recurrent,
    ReLU,
    Round,
    Upsample,
)
from snnconv.ir.layers import ShapeError

R = np.random.default_rng(0)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


def inp(shape=(4,), name="in"):
    return Input(name=name, inputs=(), shape=shape)


def relu(name, src, shape=(4,)):
    return ReLU(name=name, inputs=(src,), shape=shape)


def dense(name, src, n_in=4, n_out=3, shape=None):
    return Dense(name=name, inputs=(src,), shape=shape or (n_out,), weight=w(n_out, n_in), bias=w(n_out))


def out(src, shape=(3,), name="out"):
    return Output(name=name, inputs=(src,), shape=shape)


def mlp():
    return [inp(), dense("fc1", "in", 4, 5), relu("act", "fc1", (5,)), dense("fc2", "act", 5, 3), out("fc2")]


def diamond():
    """in -> left, right -> join -> out."""
    return [inp(), relu("left", "in"), relu("right", "in"), Add(name="join", inputs=("left", "right"), shape=(4,)),
            out("join", (4,))]


def bad_graph(layers, name="g") -> str:
    with pytest.raises(BadGraphError) as info:
        Graph.from_layers(layers, name=name)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- invariants -----------------------------------------------------------------------


def test_valid_graph_builds():
    graph = Graph.from_layers(mlp(), name="mlp")
    assert [layer.name for layer in graph] == ["in", "fc1", "act", "fc2", "out"]
    assert graph.input.name == "in" and graph.output.name == "out"
    assert graph.validate() is graph


def test_cycle_names_the_layers():
    layers = [inp(), Add(name="loop_add", inputs=("in", "loop_relu"), shape=(4,)), relu("loop_relu", "loop_add"),
              out("loop_relu", (4,))]
    message = bad_graph(layers, name="cyclic")
    assert "cycle" in message and "'cyclic'" in message
    assert re.search(r"loop_add -> loop_relu|loop_relu -> loop_add", message), message


def test_self_loop_is_a_cycle():
    message = bad_graph([inp(), Add(name="selfie", inputs=("in", "selfie"), shape=(4,)), out("selfie", (4,))])
    assert "cycle" in message and "selfie" in message


def test_reading_a_missing_layer():
    message = bad_graph([inp(), relu("reader", "ghost"), out("reader", (4,))])
    assert "'reader'" in message and "'ghost'" in message


def test_duplicate_names_name_the_duplicate():
    layers = [inp(), relu("twin", "in"), relu("twin", "in"), out("twin", (4,))]
    message = bad_graph(layers)
    assert "'twin'" in message, message


def test_validate_catches_what_from_layers_would_reorder_or_merge():
    """A Graph built directly (not through from_layers) is still checked by validate."""
    twins = Graph(layers=(inp(), relu("twin", "in"), relu("twin", "twin"), out("twin", (4,))))
    with pytest.raises(BadGraphError, match=r"'twin'.*twice"):
        twins.validate()
    backwards = Graph(layers=(inp(), relu("late", "early"), relu("early", "in"), out("late", (4,))))
    with pytest.raises(BadGraphError, match=r"'late'.*'early'.*not an earlier layer"):
        backwards.validate()


@pytest.mark.parametrize("layers, needles", [
    ([inp(), dense("fc", "in", n_in=5), out("fc")], ["'fc'", "dense", "5", "4"]),
    ([inp(), dense("fc", "in", shape=(7,)), out("fc", (7,))], ["'fc'", "(7,)", "(3,)"]),
    ([inp(), relu("act", "in", (5,)), out("act", (5,))], ["'act'", "(5,)", "(4,)"]),
    ([inp(), dense("fc", "in"), out("fc", (2,))], ["'out'", "(2,)", "(3,)"]),
    ([inp((3, 8, 8)), Conv(name="conv", inputs=("in",), shape=(4, 8, 8), weight=w(4, 3, 3, 3), bias=w(4)),
      out("conv", (4, 8, 8))], ["'conv'", "(4, 8, 8)", "(4, 6, 6)"]),
    ([inp((3, 8, 8)), Conv(name="conv", inputs=("in",), shape=(4, 6, 6), weight=w(4, 2, 3, 3), bias=w(4)),
      out("conv", (4, 6, 6))], ["'conv'", "3 input channels"]),
    ([inp(), dense("widen", "in", n_out=5), Add(name="sum", inputs=("in", "widen"), shape=(4,)),
      out("sum", (4,))], ["'sum'", "(4,)", "(5,)"]),
    ([inp((0, 4)), out("in", (0, 4))], ["'in'", "empty"]),
], ids=["dense_weight_vs_input", "dense_stored_shape", "relu_stored_shape", "output_stored_shape",
        "conv_stored_shape", "conv_channels", "add_mismatch", "zero_dim"])
def test_shape_disagreements(layers, needles):
    message = bad_graph(layers)
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["weight", "bias"])
def test_non_finite_parameters(field, bad):
    fc = dense("fc", "in")
    values = getattr(fc, field).copy()
    values.flat[0] = bad
    message = bad_graph([inp(), dataclasses.replace(fc, **{field: values}), out("fc")])
    assert "'fc'" in message and field in message and re.search(r"NaN|infinite", message)


def test_non_finite_batchnorm_statistic():
    bn = BatchNorm(name="bn", inputs=("in",), shape=(4,), gamma=w(4), beta=w(4), mean=w(4),
                   var=np.array([1, np.nan, 1, 1], np.float32))
    message = bad_graph([inp(), bn, out("bn", (4,))])
    assert "'bn'" in message and "var" in message


def test_unused_result():
    layers = [inp(), relu("used", "in"), relu("dead_end", "in"), out("used", (4,))]
    message = bad_graph(layers)
    assert "'dead_end'" in message and "never used" in message


@pytest.mark.parametrize("layers, needle", [
    ([relu("first", "in0"), out("first", (4,))], "reads 'in0'"),
    ([ReLU(name="first", inputs=(), shape=(4,)), out("first", (4,))], "input layer"),
    ([inp(), relu("last", "in")], "output layer"),
    ([inp()], "input and an output"),
    ([], "input and an output"),
    ([inp(), inp(name="second_in"), Add(name="sum", inputs=("in", "second_in"), shape=(4,)), out("sum", (4,))],
     "'second_in'"),
    ([inp(), out("in", (4,), name="out1"), out("in", (4,), name="out2")], "'out1'"),
], ids=["no_input_reads_missing", "missing_input", "missing_output", "input_only", "empty", "two_inputs",
        "two_outputs"])
def test_input_and_output_layers(layers, needle):
    assert needle in bad_graph(layers)


def test_input_must_take_no_inputs():
    layers = [inp(), Input(name="fed", inputs=("in",), shape=(4,)), out("fed", (4,))]
    assert "'fed'" in bad_graph(layers)


# --- topological order ----------------------------------------------------------------


def stable_topological_order(layers):
    """Kahn's algorithm, always taking the ready layer that came first in ``layers``."""
    position = {layer.name: i for i, layer in enumerate(layers)}
    waiting = {layer.name: len(set(layer.inputs)) for layer in layers}
    readers = {layer.name: [] for layer in layers}
    for layer in layers:
        for src in set(layer.inputs):
            readers[src].append(layer.name)
    ready = [position[n] for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = layers[heapq.heappop(ready)].name
        order.append(name)
        for reader in readers[name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, position[reader])
    return order


def test_order_is_topological_and_stable():
    layers = diamond()
    assert [l.name for l in Graph.from_layers(layers)] == ["in", "left", "right", "join", "out"]
    backwards = list(reversed(layers))
    assert [l.name for l in Graph.from_layers(backwards)] == ["in", "right", "left", "join", "out"]


def _branchy():
    """A residual network with branches of different lengths and a concat."""
    c = (2, 4, 4)
    return [
        inp(c), ReLU(name="a", inputs=("in",), shape=c), ReLU(name="b", inputs=("a",), shape=c),
        ReLU(name="c", inputs=("in",), shape=c), Add(name="d", inputs=("b", "c"), shape=c),
        ReLU(name="e", inputs=("d",), shape=c), ReLU(name="f", inputs=("a",), shape=c),
        Concat(name="g", inputs=("e", "f", "c"), shape=(6, 4, 4)), Flatten(name="h", inputs=("g",), shape=(96,)),
        out("h", (96,)),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_any_given_order_comes_out_topological_and_stable(seed):
    layers = _branchy()
    shuffled = [layers[i] for i in np.random.default_rng(seed).permutation(len(layers))]
    graph = Graph.from_layers(shuffled)
    names = [layer.name for layer in graph]
    assert names == stable_topological_order(shuffled)
    seen = set()
    for layer in graph:
        assert set(layer.inputs) <= seen
        seen.add(layer.name)
    assert all(a is b for a, b in zip(graph, (next(l for l in layers if l.name == n) for n in names)))


def test_rebuilding_an_ordered_graph_keeps_its_order():
    graph = Graph.from_layers(_branchy())
    assert [l.name for l in Graph.from_layers(graph.layers)] == [l.name for l in graph]


# --- immutability ---------------------------------------------------------------------


def test_layer_arrays_are_read_only_copies():
    weight, bias = w(3, 4), w(3)
    fc = Dense(name="fc", inputs=("in",), shape=(3,), weight=weight, bias=bias)
    with pytest.raises(ValueError):
        fc.weight[0, 0] = 1.0
    with pytest.raises(ValueError):
        fc.bias += 1.0
    before = fc.weight.copy()
    weight[0, 0] += 100.0  # the caller's array is not shared
    np.testing.assert_array_equal(fc.weight, before)
    for layer in Graph.from_layers([inp(), fc, out("fc")]):
        for array in layer.arrays().values():
            assert not array.flags.writeable


@pytest.mark.parametrize("layer", [
    BatchNorm(name="bn", inputs=("in",), shape=(4,), gamma=w(4), beta=w(4), mean=w(4), var=np.abs(w(4))),
    Affine(name="aff", inputs=("in",), shape=(4,), scale=w(4), shift=w(1)),
    Conv(name="conv", inputs=("in",), shape=(2, 1, 1), weight=w(2, 4, 1, 1), bias=w(2)),
], ids=["batchnorm", "affine", "conv"])
def test_every_array_field_is_read_only(layer):
    assert layer.arrays()
    for field, array in layer.arrays().items():
        with pytest.raises(ValueError):
            array[...] = 0.0


def test_layers_are_frozen():
    fc = dense("fc", "in")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fc.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fc.weight = w(3, 4)
    graph = Graph.from_layers(mlp())
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.layers = ()


def test_replace_makes_a_new_layer_and_leaves_the_old_alone():
    fc = dense("fc", "in")
    old_weight, old_bias = fc.weight.copy(), fc.bias.copy()
    new_weight = w(3, 4)
    changed = dataclasses.replace(fc, weight=new_weight, name="fc2")
    assert changed is not fc and type(changed) is Dense
    assert (fc.name, changed.name) == ("fc", "fc2")
    np.testing.assert_array_equal(fc.weight, old_weight)
    np.testing.assert_array_equal(fc.bias, old_bias)
    np.testing.assert_array_equal(changed.weight, new_weight)
    assert not changed.weight.flags.writeable and not np.shares_memory(changed.weight, new_weight)
    assert changed.inputs == fc.inputs and changed.shape == fc.shape


def test_replacing_a_layer_in_a_graph_leaves_the_graph_alone():
    graph = Graph.from_layers(mlp())
    old = graph["fc1"]
    new_layers = [dataclasses.replace(l, bias=np.zeros(5, np.float32)) if l.name == "fc1" else l for l in graph]
    rebuilt = Graph.from_layers(new_layers)
    assert graph["fc1"] is old and not np.all(old.bias == 0)
    assert np.all(rebuilt["fc1"].bias == 0)


def test_replace_is_validated_by_the_graph():
    graph = Graph.from_layers(mlp())
    broken = [dataclasses.replace(l, weight=w(5, 6)) if l.name == "fc1" else l for l in graph]
    message = bad_graph(broken)
    assert "'fc1'" in message


def test_shape_and_inputs_are_normalized_to_int_tuples():
    layer = ReLU(name="r", inputs=["in"], shape=[np.int64(4)])
    assert layer.inputs == ("in",) and layer.shape == (4,) and type(layer.shape[0]) is int


# --- infer_shape against torch --------------------------------------------------------


def torch_shape(fn, *shapes):
    """The output sample shape of ``fn`` on zero tensors of these sample shapes (batch 1 added)."""
    with torch.no_grad():
        return tuple(fn(*(torch.zeros((1, *s)) for s in shapes)).shape[1:])


def conv_case(in_shape, out_c, kernel, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    c = in_shape[0]
    weight, bias = w(out_c, c // groups, *kernel), w(out_c)
    layer = Conv(name="conv", inputs=("x",), shape=(1,), weight=weight, bias=bias, stride=stride, pads=pads,
                 dilation=dilation, groups=groups)
    top, left, bottom, right = pads

    def oracle(x):
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), stride=stride, dilation=dilation,
                        groups=groups)

    return layer, [in_shape], oracle


def pool_case(in_shape, mode, kernel, stride, pad=(0, 0), dilation=(1, 1), ceil_mode=False):
    layer = Pool(name="pool", inputs=("x",), shape=(1,), mode=mode, kernel=kernel, stride=stride,
                 pads=(pad[0], pad[1], pad[0], pad[1]), dilation=dilation, ceil_mode=ceil_mode)
    if mode == "max":
        def oracle(x):
            return F.max_pool2d(x, kernel, stride, pad, dilation, ceil_mode=ceil_mode)
    else:
        assert dilation == (1, 1)

        def oracle(x):
            return F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode)
    return layer, [in_shape], oracle


def recurrent_case(items, features, hidden):
    """A ReLU Elman layer against torch's ``nn.RNN(nonlinearity="relu")``: its last hidden state."""
    weight, recurrent, bias = w(hidden, features), w(hidden, hidden), w(hidden)
    layer = Recurrent(name="rnn", inputs=("x",), shape=(1,), weight=weight, recurrent=recurrent, bias=bias)
    rnn = torch.nn.RNN(features, hidden, nonlinearity="relu", batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in (("weight_ih_l0", weight), ("weight_hh_l0", recurrent), ("bias_ih_l0", bias),
                            ("bias_hh_l0", np.zeros_like(bias))):
            getattr(rnn, name).copy_(torch.from_numpy(value))

    def oracle(x):
        return rnn(x.double())[1][0]

    return layer, [(items, features)], oracle


def simple(layer, in_shapes, oracle):
    return layer, in_shapes, oracle


_dense_w, _dense_b = w(7, 12), w(7)
_bn = [np.abs(w(5)) + 0.1 for _ in range(4)]
_scale, _shift = w(5, 1, 1), w(6)

ORACLE_CASES = {
    "input": (inp((3, 5, 5)), [], None),
    "dense": simple(Dense(name="d", inputs=("x",), shape=(1,), weight=_dense_w, bias=_dense_b), [(12,)],
                    lambda x: F.linear(x, torch.from_numpy(_dense_w), torch.from_numpy(_dense_b))),
    "conv_plain": conv_case((3, 9, 10), 8, (3, 3)),
    "conv_stride_pad_dilation": conv_case((3, 9, 10), 8, (3, 3), (2, 1), (1, 0, 2, 1), (1, 2)),
    "conv_big_stride_asymmetric_kernel": conv_case((4, 17, 11), 6, (5, 2), (3, 4), (2, 2, 0, 1), (2, 1), groups=2),
    "conv_depthwise": conv_case((6, 7, 7), 6, (3, 3), (1, 1), (1, 1, 1, 1), groups=6),
    "conv_1x1_stride": conv_case((2, 8, 5), 3, (1, 1), (3, 2)),
    "maxpool_basic": pool_case((3, 8, 8), "max", (2, 2), (2, 2)),
    "maxpool_ceil": pool_case((3, 9, 10), "max", (3, 3), (2, 2), ceil_mode=True),
    "maxpool_ceil_window_in_padding": pool_case((2, 5, 5), "max", (2, 2), (2, 2), (1, 1), ceil_mode=True),
    "maxpool_ceil_pad_dilation": pool_case((2, 11, 13), "max", (3, 2), (2, 3), (1, 1), (2, 2), ceil_mode=True),
    "maxpool_floor_pad_dilation": pool_case((2, 11, 13), "max", (3, 2), (2, 3), (1, 1), (2, 2)),
    "avgpool_pad": pool_case((3, 7, 6), "avg", (3, 3), (2, 2), (1, 1)),
    "avgpool_ceil": pool_case((3, 7, 6), "avg", (2, 3), (2, 2), (1, 0), ceil_mode=True),
    "avgpool_ceil_window_in_padding": pool_case((1, 6, 6), "avg", (2, 2), (2, 2), (1, 1), ceil_mode=True),
    "avgpool_global": pool_case((4, 5, 7), "avg", (5, 7), (1, 1)),
    "batchnorm": simple(BatchNorm(name="bn", inputs=("x",), shape=(1,), gamma=_bn[0], beta=_bn[1], mean=_bn[2],
                                  var=_bn[3]), [(5, 3, 4)],
                        lambda x: F.batch_norm(x, *(torch.from_numpy(a) for a in (_bn[2], _bn[3], _bn[0], _bn[1])))),
    "affine": simple(Affine(name="a", inputs=("x",), shape=(1,), scale=_scale, shift=_shift), [(5, 4, 6)],
                     lambda x: x * torch.from_numpy(_scale) + torch.from_numpy(_shift)),
    "relu": simple(ReLU(name="r", inputs=("x",), shape=(1,), max_value=6.0), [(3, 4, 4)],
                   lambda x: F.relu6(x)),
    "if": simple(IF(name="n", inputs=("x",), shape=(1,)), [(10,)], lambda x: (x >= 1.0).float()),
    "add": simple(Add(name="s", inputs=("x", "y", "z"), shape=(1,)), [(2, 3, 3)] * 3, lambda *xs: sum(xs)),
    "concat": simple(Concat(name="c", inputs=("x", "y", "z"), shape=(1,)), [(2, 3, 3), (5, 3, 3), (1, 3, 3)],
                     lambda *xs: torch.cat(xs, dim=1)),
    "flatten": simple(Flatten(name="f", inputs=("x",), shape=(1,)), [(3, 4, 5)], lambda x: torch.flatten(x, 1)),
    "pad": simple(Pad(name="p", inputs=("x",), shape=(1,), pads=(1, 2, 3, 0)), [(3, 4, 5)],
                  lambda x: F.pad(x, (2, 0, 1, 3))),
    "upsample": simple(Upsample(name="u", inputs=("x",), shape=(1,), factor=(2, 3)), [(3, 4, 5)],
                       lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
    "output": simple(out("x", (1,)), [(10,)], lambda x: F.softmax(x, 1)),
    "round": simple(Round(name="q", inputs=("x",), shape=(1,), bits=8, exponent=(0, 3)), [(3, 4)], torch.round),
    "recurrent": recurrent_case(items=6, features=4, hidden=5),
}


@pytest.mark.parametrize("case", sorted(ORACLE_CASES))
def test_infer_shape_matches_torch(case):
    layer, in_shapes, oracle = ORACLE_CASES[case]
    expected = layer.shape if oracle is None else torch_shape(oracle, *in_shapes)
    assert layer.infer_shape(in_shapes) == expected


def test_every_layer_kind_has_an_oracle_case():
    covered = {layer.kind for layer, _, _ in ORACLE_CASES.values()}
    assert covered == set(LAYER_KINDS)


def _torch_accepts(size, kernel, stride, pad, dilation, ceil_mode):
    return pad <= kernel // 2 and dilation * (kernel - 1) + 1 <= size + 2 * pad


POOL_SWEEP = [case for case in itertools.product(range(4, 10), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2), (False, True))
              if _torch_accepts(*case)]


@pytest.mark.parametrize("size, kernel, stride, pad, dilation, ceil_mode", POOL_SWEEP)
def test_pool_output_size_sweep(size, kernel, stride, pad, dilation, ceil_mode):
    layer, in_shapes, oracle = pool_case((1, size, size + 1), "max", (kernel, kernel), (stride, stride),
                                         (pad, pad), (dilation, dilation), ceil_mode)
    assert layer.infer_shape(in_shapes) == torch_shape(oracle, *in_shapes)


def test_conv_bias_per_output_neuron_is_accepted():
    layer = Conv(name="c", inputs=("x",), shape=(1,), weight=w(4, 3, 3, 3), bias=w(4, 5, 5), pads=(1, 1, 1, 1))
    assert layer.infer_shape([(3, 5, 5)]) == (4, 5, 5)


@pytest.mark.parametrize("layer, in_shapes, needle", [
    (Dense(name="d", inputs=("x",), shape=(1,), weight=w(3, 4), bias=w(3)), [(5,)], "4 features"),
    (Dense(name="d", inputs=("x",), shape=(1,), weight=w(3, 4), bias=w(4)), [(4,)], "bias"),
    (Dense(name="d", inputs=("x",), shape=(1,), weight=w(3, 4), bias=w(3)), [(1, 4)], "rank 1"),
    (Dense(name="d", inputs=("x",), shape=(1,), weight=w(3, 4), bias=w(3)), [(4,), (4,)], "1 input"),
    (Conv(name="c", inputs=("x",), shape=(1,), weight=w(4, 3, 3, 3), bias=w(4)), [(2, 5, 5)], "input channels"),
    (Conv(name="c", inputs=("x",), shape=(1,), weight=w(4, 3, 3, 3), bias=w(4)), [(3, 2, 5)], "larger"),
    (Conv(name="c", inputs=("x",), shape=(1,), weight=w(4, 3, 3, 3), bias=w(4, 2, 2)), [(3, 5, 5)], "bias"),
    (Conv(name="c", inputs=("x",), shape=(1,), weight=w(4, 3, 3, 3), bias=w(4)), [(3, 5)], "rank 3"),
    (Conv(name="c", inputs=("x",), shape=(1,), weight=w(6, 2, 1, 1), bias=w(6), groups=4), [(8, 5, 5)], "groups"),
    (Pool(name="p", inputs=("x",), shape=(1,), mode="min", kernel=(2, 2), stride=(2, 2)), [(3, 4, 4)], "mode"),
    (Pool(name="p", inputs=("x",), shape=(1,), mode="max", kernel=(2, 2), stride=(2, 2)), [(16,)], "rank 3"),
    (Pool(name="p", inputs=("x",), shape=(1,), mode="avg", kernel=(5, 5), stride=(1, 1)), [(3, 4, 4)], "larger"),
    (BatchNorm(name="b", inputs=("x",), shape=(1,), gamma=w(3), beta=w(3), mean=w(3), var=w(4)), [(3, 2, 2)],
     "var"),
    (Affine(name="a", inputs=("x",), shape=(1,), scale=w(4), shift=w(1)), [(3, 2, 2)], "scale"),
    (Affine(name="a", inputs=("x",), shape=(1,), scale=w(1), shift=w(2, 3, 2, 2)), [(3, 2, 2)], "shift"),
    (IF(name="n", inputs=("x",), shape=(1,), threshold=0.0), [(3,)], "threshold"),
    (IF(name="n", inputs=("x",), shape=(1,), reset="hard"), [(3,)], "reset"),
    (Add(name="s", inputs=("x",), shape=(1,)), [(3,)], "at least 2"),
    (Add(name="s", inputs=("x", "y"), shape=(1,)), [(3,), (4,)], "differ"),
    (Concat(name="c", inputs=("x", "y"), shape=(1,)), [(3, 2, 2), (3, 2, 3)], "differ"),
    (Concat(name="c", inputs=("x", "y"), shape=(1,)), [(3, 2), (3, 2, 1)], "differ"),
    (Pad(name="p", inputs=("x",), shape=(1,), pads=(0, -1, 0, 0)), [(3, 4, 4)], "negative"),
    (Pad(name="p", inputs=("x",), shape=(1,), pads=(1, 1, 1, 1)), [(12,)], "rank 3"),
    (Upsample(name="u", inputs=("x",), shape=(1,), factor=(0, 2)), [(3, 4, 4)], ">= 1"),
    (Upsample(name="u", inputs=("x",), shape=(1,), factor=(2, 2)), [(12,)], "rank 3"),
    (Output(name="o", inputs=("x",), shape=(1,), activation="gelu"), [(3,)], "activation"),
    (Input(name="i", inputs=(), shape=(3,)), [(3,)], "0 input"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_infer_shape_refuses_what_does_not_fit(layer, in_shapes, needle):
    with pytest.raises(ShapeError, match=re.escape(needle)):
        layer.infer_shape(in_shapes)


# --- 1-D networks: the source shape of the input -------------------------------------


def test_a_1d_input_records_its_source_shape_and_shows_it():
    graph = Graph.from_layers([Input(name="in", inputs=(), shape=(2, 1, 6), source_shape=(2, 6)),
                               ReLU(name="act", inputs=("in",), shape=(2, 1, 6)), Flatten(name="f", inputs=("act",),
                                                                                          shape=(12,)),
                               out("f", (12,))])
    assert graph.input.one_d and graph.input.source_shape == (2, 6)
    assert graph.user_shape((2, 1, 6)) == (2, 6) and graph.user_shape((12,)) == (12,)
    plain = Graph.from_layers(mlp())
    assert not plain.input.one_d and plain.user_shape((3, 1, 5)) == (3, 1, 5)


def test_a_source_shape_must_be_a_reshape_of_the_shape():
    message = bad_graph([Input(name="in", inputs=(), shape=(2, 1, 6), source_shape=(2, 5)), out("in", (2, 1, 6))])
    assert "'in' (input)" in message and "source shape (2, 5) is not a reshape of the shape (2, 1, 6)" in message
