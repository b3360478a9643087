"""Each supported op, at each of its opset variants, against onnxruntime (max abs 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import snnconv

H = helper.make_node
R = np.random.default_rng(0)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32) * 0.3


def conv_case(opset=13, **attrs):
    nodes = [H("Conv", ["x", "W", "B"], ["y"], name="conv", **attrs)]
    groups = attrs.get("group", 1)
    return make_model(nodes, (2, 4, 9, 10), {"W": w(8, 4 // groups, 3, 3), "B": w(8)}, opset=opset)


def pool_case(op, opset, **attrs):
    return make_model([H(op, ["x"], ["y"], name="pool", **attrs)], (2, 3, 9, 10), opset=opset)


def dense_case(op_nodes, inits, opset=13):
    return make_model(op_nodes, (3, 6), inits, opset=opset)


CASES = {
    "conv_plain": conv_case(),
    "conv_opset9_strided_dilated": conv_case(9, strides=[2, 1], dilations=[1, 2], pads=[1, 0, 2, 1]),
    "conv_same_upper_stride2": conv_case(auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv_same_lower_stride2": conv_case(auto_pad="SAME_LOWER", strides=[2, 2]),
    "conv_valid": conv_case(22, auto_pad="VALID"),
    "conv_groups": conv_case(group=2, pads=[1, 1, 1, 1]),
    "conv_depthwise": make_model([H("Conv", ["x", "W"], ["y"], group=4, pads=[1, 1, 1, 1])], (2, 4, 8, 8),
                                 {"W": w(4, 1, 3, 3)}),
    "gemm_alpha_beta_transB": dense_case([H("Gemm", ["x", "W", "C"], ["y"], alpha=0.5, beta=2.0, transB=1)],
                                         {"W": w(5, 6), "C": w(5)}),
    "gemm_opset9_row_bias": dense_case([H("Gemm", ["x", "W", "C"], ["y"])], {"W": w(6, 5), "C": w(1, 5)}, opset=9),
    "gemm_scalar_bias_no_c": dense_case([H("Gemm", ["x", "W"], ["y"], transB=1)], {"W": w(5, 6)}),
    "matmul_add": dense_case([H("MatMul", ["x", "W"], ["h"]), H("Add", ["h", "B"], ["y"])],
                             {"W": w(6, 5), "B": w(5)}),
    "sub_mul_div_constants": make_model(
        [H("Sub", ["x", "m"], ["a"]), H("Div", ["a", "s"], ["b"]), H("Mul", ["k", "b"], ["c"]),
         H("Sub", ["k", "c"], ["y"])],
        (2, 3, 4, 4), {"m": w(3, 1, 1), "s": np.abs(w(1, 3, 1, 1)) + 0.5, "k": np.float32(2.0)}),
    "add_full_constant": make_model([H("Add", ["x", "c"], ["y"])], (2, 3, 4, 4), {"c": w(3, 4, 4)}),
    "relu": make_model([H("Relu", ["x"], ["y"])], (2, 3, 4, 4)),
    "max_zero_opset13": make_model([H("Max", ["x", "z"], ["y"])], (2, 3, 4, 4), {"z": np.float32(0)}),
    "max_zero_first_opset8": make_model([H("Max", ["z", "x"], ["y"])], (2, 5), {"z": np.float32(0)}, opset=8),
    "clip_opset6_relu6": make_model([H("Clip", ["x"], ["y"], min=0.0, max=0.5)], (2, 3, 4, 4), opset=9),
    "clip_opset13_inputs": make_model([H("Clip", ["x", "lo", "hi"], ["y"])], (2, 3, 4, 4),
                                      {"lo": np.float32(0), "hi": np.float32(0.4)}),
    "clip_min_only": make_model([H("Clip", ["x", "lo"], ["y"])], (2, 5), {"lo": np.float32(0)}, opset=12),
    "avgpool_pads_exclude": pool_case("AveragePool", 9, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "avgpool_pads_include": pool_case("AveragePool", 9, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                      count_include_pad=1),
    "avgpool_ceil_include": pool_case("AveragePool", 10, kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 1, 0],
                                      ceil_mode=1, count_include_pad=1),
    "avgpool_ceil_exclude": pool_case("AveragePool", 11, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "avgpool_same_upper": pool_case("AveragePool", 11, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    "avgpool_dilated_opset19": pool_case("AveragePool", 19, kernel_shape=[2, 2], dilations=[2, 2]),
    "maxpool_pads_ceil": pool_case("MaxPool", 10, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                   ceil_mode=1),
    "maxpool_dilated": pool_case("MaxPool", 12, kernel_shape=[2, 2], strides=[1, 2], dilations=[2, 2]),
    "maxpool_opset9": pool_case("MaxPool", 9, kernel_shape=[2, 2], strides=[2, 2]),
    "global_average_pool": pool_case("GlobalAveragePool", 13),
    "global_max_pool": pool_case("GlobalMaxPool", 13),
    "reducemean_keepdims_opset13": pool_case("ReduceMean", 13, axes=[2, 3]),
    "reducemax_keepdims_opset13": pool_case("ReduceMax", 13, axes=[2, 3]),
    "reducemax_flat_opset18": make_model([H("ReduceMax", ["x", "ax"], ["y"], keepdims=0)], (2, 3, 5, 5),
                                         {"ax": np.array([-1, -2], np.int64)}, opset=18, output_rank=2),
    "reducemean_flat_opset18": make_model([H("ReduceMean", ["x", "ax"], ["y"], keepdims=0)], (2, 3, 5, 5),
                                          {"ax": np.array([-1, -2], np.int64)}, opset=18, output_rank=2),
    "batchnorm_opset15": make_model([H("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3)],
                                    (2, 3, 4, 4), {"g": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1},
                                    opset=15),
    "pad_opset11": make_model([H("Pad", ["x", "p"], ["y"])], (2, 3, 4, 4),
                              {"p": np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64)}, opset=11),
    "pad_opset18_axes": make_model([H("Pad", ["x", "p", "", "ax"], ["y"])], (2, 3, 4, 4),
                                   {"p": np.array([1, 2, 0, 1], np.int64), "ax": np.array([2, 3], np.int64)},
                                   opset=18),
    "pad_opset9_attr": make_model([H("Pad", ["x"], ["y"], pads=[0, 0, 1, 1, 0, 0, 1, 1])], (2, 3, 4, 4), opset=9),
    "residual_add_sum_concat": make_model(
        [H("Relu", ["x"], ["a"]), H("Conv", ["a", "W"], ["b"], pads=[1, 1, 1, 1]), H("Add", ["a", "b"], ["c"]),
         H("Sum", ["a", "b", "c"], ["d"]), H("Concat", ["c", "d"], ["y"], axis=1)],
        (2, 3, 5, 5), {"W": w(3, 3, 3, 3)}),
    "sum_with_constant": make_model([H("Relu", ["x"], ["a"]), H("Sum", ["a", "x", "k"], ["y"])], (2, 4),
                                    {"k": w(4)}, opset=9),
    "flatten_reshape_softmax_opset13": make_model(
        [H("Flatten", ["x"], ["f"]), H("Reshape", ["f", "s"], ["r"]), H("Identity", ["r"], ["i"]),
         H("Dropout", ["i"], ["d"]), H("Softmax", ["d"], ["y"])],
        (2, 2, 3, 3), {"s": np.array([0, -1], np.int64)}, output_rank=2),
    "reshape_flatten_logsoftmax_opset11": make_model(
        [H("Reshape", ["x", "s"], ["r"]), H("LogSoftmax", ["r"], ["y"], axis=1)], (2, 2, 3, 3),
        {"s": np.array([-1, 18], np.int64)}, opset=11, output_rank=2),
    "dropout_opset12_ratio_input": make_model([H("Dropout", ["x", "ratio"], ["y"])], (2, 4),
                                              {"ratio": np.float32(0.3)}, opset=12),
    "gap_softmax_opset11_rank4_head": make_model(
        [H("Conv", ["x", "W"], ["c"]), H("Relu", ["c"], ["r"]), H("GlobalAveragePool", ["r"], ["g"]),
         H("Softmax", ["g"], ["y"])], (2, 3, 5, 5), {"W": w(6, 3, 3, 3)}, opset=11),
    "gap_softmax_opset13_axis1_squeeze": make_model(
        [H("Conv", ["x", "W"], ["c"]), H("GlobalAveragePool", ["c"], ["g"]), H("Softmax", ["g"], ["s"], axis=1),
         H("Squeeze", ["s", "ax"], ["y"])], (2, 3, 5, 5), {"W": w(6, 3, 3, 3), "ax": np.array([2, 3], np.int64)},
        output_rank=2),
    "gap_logsoftmax_reshape_identity": make_model(
        [H("Conv", ["x", "W"], ["c"]), H("GlobalMaxPool", ["c"], ["g"]), H("LogSoftmax", ["g"], ["s"], axis=-3),
         H("Identity", ["s"], ["i"]), H("Reshape", ["i", "t"], ["y"])],
        (2, 3, 5, 5), {"W": w(6, 3, 3, 3), "t": np.array([0, -1], np.int64)}, output_rank=2),
    "rank4_sigmoid_flatten": make_model(
        [H("Conv", ["x", "W"], ["c"]), H("Sigmoid", ["c"], ["s"]), H("Flatten", ["s"], ["y"])],
        (2, 3, 5, 5), {"W": w(2, 3, 3, 3)}, output_rank=2),
    "hard_sigmoid_inside": make_model(
        [H("Conv", ["x", "W"], ["c"]), H("HardSigmoid", ["c"], ["h"], alpha=0.3, beta=0.4),
         H("Conv", ["h", "W2"], ["y"])], (2, 3, 6, 6), {"W": w(4, 3, 3, 3) * 4, "W2": w(2, 4, 1, 1)}),
    "hard_sigmoid_opset22_defaults": make_model([H("HardSigmoid", ["x"], ["y"])], (2, 7), opset=22),
    "reshape_minus1_by_features": make_model(
        [H("Relu", ["x"], ["r"]), H("Reshape", ["r", "t"], ["y"])], (2, 2, 3, 3), {"t": np.array([-1, 18], np.int64)},
        output_rank=2),
    "reshape_batch1_model_1_minus1": make_model(
        [H("Relu", ["x"], ["r"]), H("Reshape", ["r", "t"], ["y"])], (1, 2, 3, 3), {"t": np.array([1, -1], np.int64)},
        declared_input_shape=[1, 2, 3, 3], output_rank=2),
    "tanh_regression_head": make_model(
        [H("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), H("Relu", ["c"], ["r"]), H("Flatten", ["r"], ["f"]),
         H("Gemm", ["f", "G"], ["g"], transB=1), H("Tanh", ["g"], ["y"])],
        (2, 3, 4, 4), {"W": w(4, 3, 3, 3), "G": w(5, 64)}, output_rank=2),
    "multi_label_sigmoid_head": make_model(
        [H("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), H("Relu", ["c"], ["r"]), H("Flatten", ["r"], ["f"]),
         H("Gemm", ["f", "G"], ["g"], transB=1), H("Sigmoid", ["g"], ["y"])],
        (2, 3, 4, 4), {"W": w(4, 3, 3, 3), "G": w(5, 64)}, output_rank=2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_onnxruntime(name, matches_onnxruntime):
    model = CASES[name]
    shape = [2 if d.dim_param else d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = R.standard_normal(shape).astype(np.float32)
    matches_onnxruntime(model, x)


def test_a_sigmoid_head_is_recorded_on_the_output_and_survives_compiling(tmp_path):
    """The chip integrates the values before the sigmoid; the artifact keeps the head for the host."""
    graph = snnconv.load_onnx(CASES["multi_label_sigmoid_head"])
    assert graph.output.activation == "sigmoid"
    calibration = R.standard_normal((16, 3, 4, 4)).astype(np.float32)
    net = snnconv.compile(CASES["multi_label_sigmoid_head"], "loihi", calibration, timesteps=8)
    assert snnconv.load(net.save(tmp_path / "head.snn")).graph.output.activation == "sigmoid"


@pytest.mark.parametrize("name, activation", [
    ("gap_softmax_opset11_rank4_head", "softmax"), ("gap_softmax_opset13_axis1_squeeze", "softmax"),
    ("gap_logsoftmax_reshape_identity", "log_softmax"), ("rank4_sigmoid_flatten", "sigmoid"),
])
def test_a_head_after_a_global_pool_is_recorded_on_the_output(name, activation):
    """The flatten after the head moves before it: the output layer integrates the flat values."""
    graph = snnconv.load_onnx(CASES[name])
    assert graph.output.activation == activation
    assert [layer.kind for layer in graph][-2:] == (["pool", "output"] if name.startswith("gap_softmax_opset11")
                                                     else ["flatten", "output"])


@pytest.mark.parametrize("nodes, inits, advice", [
    ([H("GlobalAveragePool", ["x"], ["g"]), H("Softmax", ["g"], ["y"], name="head")], {},
     r"'head'.*over axis -1 of a tensor of shape \[1, 3, 1, 1\]; only over the class scores"),
    ([H("Softmax", ["x"], ["y"], name="head", axis=1)], {}, r"'head'.*over axis 1 of a tensor of shape \[1, 3, 4, 4\]"),
    ([H("Sigmoid", ["x"], ["s"]), H("Reshape", ["s", "t"], ["y"], name="regroup")],
     {"t": np.array([0, 12, 4], np.int64)}, r"'regroup'.*only flattening to \(batch, features\) converts"),
], ids=["softmax_opset13_default_axis_on_a_pooled_map", "softmax_over_channels_per_pixel", "head_then_reshape"])
def test_heads_that_do_not_convert_are_refused(nodes, inits, advice):
    model = make_model(nodes, (1, 3, 4, 4), inits)
    with pytest.raises(snnconv.errors.UnsupportedOpError, match=advice):
        snnconv.load_onnx(model)


@pytest.mark.parametrize("nodes, inits", [
    ([H("Max", ["x", "z"], ["y"], name="top")], {"z": np.float32(0.5)}),
    ([H("Relu", ["x"], ["r"]), H("Max", ["x", "r"], ["y"], name="top")], {}),
], ids=["against_another_constant", "of_two_activations"])
def test_a_maximum_other_than_a_relu_is_refused(nodes, inits):
    model = make_model(nodes, (1, 3, 4, 4), inits)
    with pytest.raises(snnconv.errors.UnsupportedOpError, match=r"'top'.*only Max\(x, 0\), a ReLU, converts"):
        snnconv.load_onnx(model)


def test_hard_sigmoid_is_an_affine_and_a_relu_capped_at_one():
    graph = snnconv.load_onnx(CASES["hard_sigmoid_inside"])
    affine, relu = graph.layers[2:4]
    assert (affine.kind, float(affine.scale), float(affine.shift)) == ("affine", pytest.approx(0.3), pytest.approx(0.4))
    assert (relu.kind, relu.max_value) == ("relu", 1.0)


def test_softmax_is_recorded_on_the_output_layer():
    graph = snnconv.load_onnx(CASES["flatten_reshape_softmax_opset13"])
    assert graph.output.activation == "softmax"
    assert [layer.kind for layer in graph] == ["input", "flatten", "output"]


def test_model_zoo_opset9_style(matches_onnxruntime):
    """Initializers listed as graph inputs, weights made by ConstantOfShape, and a reshape
    target computed by Shape -> Gather -> Unsqueeze -> Concat (torch's ``x.view(x.size(0), -1)``)."""
    from onnx import TensorProto, numpy_helper

    nodes = [
        H("Constant", [], ["wshape"], value=numpy_helper.from_array(np.array([4, 3, 3, 3], np.int64))),
        H("ConstantOfShape", ["wshape"], ["W0"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.05])),
        H("Add", ["W0", "Wd"], ["W"]),
        H("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        H("Relu", ["c"], ["r"]),
        H("Shape", ["r"], ["shape"]),
        H("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        H("Gather", ["shape", "zero"], ["n"], axis=0),
        H("Unsqueeze", ["n"], ["n1"], axes=[0]),
        H("Constant", [], ["minus1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        H("Concat", ["n1", "minus1"], ["target"], axis=0),
        H("Reshape", ["r", "target"], ["flat"]),
        H("Gemm", ["flat", "F", "FB"], ["y"], transB=1),
    ]
    inits = {"Wd": w(4, 3, 3, 3), "B": w(4), "F": w(10, 4 * 5 * 5), "FB": w(10)}
    model = make_model(nodes, (2, 3, 5, 5), inits, opset=9, output_rank=2)
    for name, value in inits.items():  # the old exporters listed every initializer as an input too
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = matches_onnxruntime(model, R.standard_normal((2, 3, 5, 5)).astype(np.float32))
    assert [layer.kind for layer in graph] == ["input", "conv", "relu", "flatten", "dense", "output"]


def test_dynamic_spatial_dims_need_input_shape(matches_onnxruntime):
    model = make_model([H("Relu", ["x"], ["y"])], (1, 3, 4, 4), declared_input_shape=["N", 3, "H", "W"])
    with pytest.raises(snnconv.errors.BadModelError, match="--input-shape"):
        snnconv.load_onnx(model)
    graph = snnconv.load_onnx(model, input_shape=(3, 4, 6))
    assert graph.input.shape == (3, 4, 6)
