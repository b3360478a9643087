"""Every refusal of the ONNX frontend is one ``snnconv.errors`` exception whose one-line
message names the culprit (node, file, initializer, tensor) and says what to do.

Unsupported ops are checked on small, otherwise valid models; malformed files are
written under pytest's ``tmp_path``; external data must stay inside the model's folder.
"""

from __future__ import annotations

import os
import re

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import TensorProto, helper, numpy_helper

import snnconv
from snnconv.errors import BadModelError, SnnconvError, UnsupportedOpError
from snnconv.frontend import supported_ops

H = helper.make_node
OPSET = 13


def ones(*shape):
    return np.ones(shape, np.float32)


def raises(model, error, **kwargs) -> str:
    """Load ``model`` expecting ``error``; the message, checked to be a single line."""
    with pytest.raises(error) as info:
        snnconv.load_onnx(model, **kwargs)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


def assert_mentions(message: str, *needles: str) -> None:
    for needle in needles:
        assert needle in message, f"{needle!r} missing from: {message}"


def assert_advises(message: str, advice: str) -> None:
    assert re.search(advice, message), f"no advice matching {advice!r} in: {message}"


def save(model: onnx.ModelProto, path) -> str:
    onnx.save_model(model, str(path))
    return str(path)


# --- unsupported ops ------------------------------------------------------------------


def _custom_domain():
    model = make_model([H("FancyNorm", ["x"], ["y"], name="fancy", domain="com.example")], (1, 3, 4, 4))
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def _batchnorm_training():
    """A well-formed training-mode BatchNormalization (it must then output the running stats)."""
    node = H("BatchNormalization", ["x", "g", "b", "m", "v"], ["y", "run_mean", "run_var"], name="bn_train",
             training_mode=1)
    return make_model([node], (2, 3, 4, 4), {k: ones(3) for k in "gbmv"}, opset=15)


# id -> (model, node name, op type, opset, advice regex, lists the supported ops)
UNSUPPORTED_OPS = {
    "matmul_over_a_sequence": (make_model([H("MatMul", ["x", "W"], ["y"], name="unrolled_rnn")], (1, 4, 5),
                                          {"W": np.ones((5, 3), np.float32)}),
                               "unrolled_rnn", "MatMul", OPSET,
                               r"sample shape \(4, 5\).*flatten it first, or, for a ReLU RNN .* dynamo=False", False),
    "lrn": (make_model([H("LRN", ["x"], ["y"], name="norm_lrn", size=3)], (1, 3, 4, 4)),
            "norm_lrn", "LRN", OPSET, r"retrain without it \(BatchNormalization converts\)", False),
    "sigmoid_inside": (make_model([H("Sigmoid", ["x"], ["s"], name="gate_sigmoid"),
                                   H("Relu", ["s"], ["y"], name="after_gate")], (1, 5)),
                       "after_gate", "Relu", OPSET,
                       (r"0\.5 at 0 and never reaches 0.*only as the model's last op: inside, retrain with ReLU, "
                        r"ReLU6 or HardSigmoid"), False),
    "tanh_inside": (make_model([H("Tanh", ["x"], ["t"], name="squash_tanh"),
                                H("Relu", ["t"], ["y"], name="after_tanh")], (1, 5)),
                    "after_tanh", "Relu", OPSET, r"negative for negative inputs.*only as the model's last op", False),
    "leaky_relu": (make_model([H("LeakyRelu", ["x"], ["y"], name="leaky", alpha=0.1)], (1, 5)),
                   "leaky", "LeakyRelu", OPSET, r"never negative.*retrain \(or fine-tune\) the model with ReLU", False),
    "prelu": (make_model([H("PRelu", ["x", "slope"], ["y"], name="learned_slope")], (1, 5),
                         {"slope": np.full(5, 0.25, np.float32)}),
              "learned_slope", "PRelu", OPSET, r"never negative.*with ReLU in its place", False),
    "elu": (make_model([H("Elu", ["x"], ["y"], name="smooth_elu")], (1, 5)),
            "smooth_elu", "Elu", OPSET, r"negative for negative inputs.*with ReLU in its place", False),
    "selu": (make_model([H("Selu", ["x"], ["y"], name="self_norm")], (1, 5)),
             "self_norm", "Selu", OPSET, r"with ReLU in its place", False),
    "qlinear_conv": (make_model([H("QuantizeLinear", ["x", "scale", "zero"], ["xq"], name="q_in"),
                                 H("QLinearConv", ["xq", "scale", "zero", "w", "scale", "wzero", "scale", "zero"],
                                   ["yq"], name="int_conv"),
                                 H("DequantizeLinear", ["yq", "scale", "zero"], ["y"], name="dq_out")], (1, 3, 4, 4),
                                {"scale": np.array(0.5, np.float32), "zero": np.array(0, np.uint8),
                                 "w": np.ones((2, 3, 3, 3), np.int8), "wzero": np.array(0, np.int8)}),
                     "int_conv", "QLinearConv", OPSET, r"a QOperator op.*quantize the float model with QuantFormat.QDQ",
                     False),
    "quantize_activation_per_channel": (
        make_model([H("QuantizeLinear", ["x", "scale", "zero"], ["q"], name="q_channels", axis=1),
                    H("DequantizeLinear", ["q", "scale", "zero"], ["y"], name="dq_channels", axis=1)], (1, 3, 4, 4),
                   {"scale": np.array([0.5, 0.25, 1.0], np.float32), "zero": np.zeros(3, np.uint8)}),
        "q_channels", "QuantizeLinear", OPSET, r"per channel.*quantize activations per tensor", False),
    "resize_asymmetric_ceil": (make_model([H("Resize", ["x", "", "scales"], ["y"], name="up_corners",
                                             coordinate_transformation_mode="asymmetric",
                                             nearest_mode="round_prefer_ceil")],
                                         (1, 3, 4, 4), {"scales": np.array([1, 1, 2, 2], np.float32)}),
                              "up_corners", "Resize", OPSET,
                              (r"'asymmetric' with nearest_mode 'round_prefer_ceil' by 2 does not repeat each "
                               r"value 2 times.*export with 'asymmetric' \+ 'floor' or 'half_pixel'"), False),
    "resize_fractional": (make_model([H("Resize", ["x", "", "scales"], ["y"], name="up_half")],
                                     (1, 3, 4, 4), {"scales": np.array([1, 1, 1.5, 1.5], np.float32)}),
                          "up_half", "Resize", OPSET, (r"only nearest upsampling of the spatial axes by constant "
                                                       r"integer factors converts; convert the network up to"), False),
    "resize_channels": (make_model([H("Resize", ["x", "", "scales"], ["y"], name="up_channels")],
                                   (1, 3, 4, 4), {"scales": np.array([1, 2, 1, 1], np.float32)}),
                        "up_channels", "Resize", OPSET, r"factors \[1.0, 2.0, 1.0, 1.0\]", False),
    "resize_linear": (make_model([H("Resize", ["x", "", "scales"], ["y"], name="smooth_up", mode="linear")],
                                 (1, 3, 4, 4), {"scales": np.array([1, 1, 2, 2], np.float32)}),
                      "smooth_up", "Resize", OPSET, r"mode 'linear' interpolates", False),
    "conv_transpose": (make_model([H("ConvTranspose", ["x", "W"], ["y"], name="upconv")], (1, 3, 4, 4),
                                  {"W": ones(3, 2, 3, 3)}),
                       "upconv", "ConvTranspose", OPSET, r"replace it", True),
    "custom_domain": (_custom_domain(), "fancy", "FancyNorm", OPSET, r"default ONNX domain", True),
    "matmul_two_activations": (make_model([H("MatMul", ["x", "x"], ["y"], name="self_product")], (6, 6),
                                          declared_input_shape=[6, 6]),
                               "self_product", "MatMul", OPSET, r"must be a constant", False),
    "mul_two_activations": (make_model([H("Relu", ["x"], ["r"]), H("Mul", ["x", "r"], ["y"], name="gating")],
                                       (1, 5)),
                            "gating", "Mul", OPSET, r"only scaling by a constant", False),
    "sub_two_activations": (make_model([H("Relu", ["x"], ["r"]), H("Sub", ["x", "r"], ["y"], name="difference")],
                                       (1, 5)),
                            "difference", "Sub", OPSET, r"only sums of activations", False),
    "clip_min_minus_one": (make_model([H("Clip", ["x", "lo", "hi"], ["y"], name="hardtanh")], (1, 5),
                                      {"lo": np.float32(-1), "hi": np.float32(1)}),
                           "hardtanh", "Clip", OPSET, r"only min 0", False),
    "pad_reflect": (make_model([H("Pad", ["x", "p"], ["y"], name="mirror", mode="reflect")], (1, 3, 4, 4),
                               {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}),
                    "mirror", "Pad", OPSET, r"only zero padding", False),
    "concat_axis_2": (make_model([H("Relu", ["x"], ["r"]), H("Concat", ["x", "r"], ["y"], name="stack_rows", axis=2)],
                                 (1, 3, 4, 4)),
                      "stack_rows", "Concat", OPSET, r"only channel concatenation", False),
    "softmax_not_last": (make_model([H("Softmax", ["x"], ["probs"], name="scores"),
                                     H("Relu", ["probs"], ["y"], name="after_softmax")], (1, 5)),
                         "after_softmax", "Relu", OPSET,
                         r"normalizes across all features.*Softmax and LogSoftmax only as the model's last op", False),
    "reshape_nchw_to_n_ch_w": (make_model([H("Reshape", ["x", "s"], ["y"], name="fold_rows")], (1, 3, 4, 5),
                                          {"s": np.array([0, 12, 5], np.int64)}, output_rank=3),
                               "fold_rows", "Reshape", OPSET, r"only flattening", False),
    "batchnorm_training_mode": (_batchnorm_training(), "bn_train", "BatchNormalization", 15, r"eval mode", False),
    "conv_1d_with_2d_weights": (make_model([H("Conv", ["x", "W"], ["y"], name="temporal")], (1, 3, 8),
                                           {"W": ones(2, 3, 3, 3)}),
                "temporal", "Conv", OPSET, r"weights of shape \[2, 3, 3, 3\] for a 1-D input", False),
    "div_by_activation": (make_model([H("Relu", ["x"], ["r"]), H("Div", ["x", "r"], ["y"], name="ratio")], (1, 5)),
                          "ratio", "Div", OPSET, r"only division by a constant", False),
    "flatten_axis_2": (make_model([H("Flatten", ["x"], ["y"], name="flat2", axis=2)], (1, 3, 4, 4), output_rank=2),
                       "flat2", "Flatten", OPSET, r"only flattening to \(batch, features\)", False),
    "maxpool_indices": (make_model([H("MaxPool", ["x"], ["y", "idx"], name="argpool", kernel_shape=[2, 2])],
                                   (1, 3, 4, 4)),
                        "argpool", "MaxPool", OPSET, r"only the pooled values", False),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED_OPS))
def test_unsupported_op_names_node_op_and_opset(case):
    model, node, op, opset, advice, lists_supported = UNSUPPORTED_OPS[case]
    onnx.checker.check_model(model)  # the model itself is valid ONNX: only snnconv refuses it
    message = raises(model, UnsupportedOpError)
    assert_mentions(message, f"'{node}'", op, f"opset {opset}")
    assert_advises(message, advice)
    if lists_supported:
        assert_mentions(message, "Relu", "Conv", "Gemm")
        assert set(supported_ops()) <= set(re.findall(r"\w+", message))


def test_unnamed_node_is_named_by_op_and_index():
    model = make_model([H("Relu", ["x"], ["r"]), H("Elu", ["r"], ["y"])], (1, 5))
    assert_mentions(raises(model, UnsupportedOpError), "'Elu_1'", "opset 13")


def _two_inputs():
    graph = helper.make_graph(
        [H("Add", ["left", "right"], ["y"], name="join")], "two_in",
        [helper.make_tensor_value_info("left", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("right", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), ("'left'", "'right'")


def _two_outputs():
    graph = helper.make_graph(
        [H("Relu", ["x"], ["logits"], name="r1"), H("Relu", ["logits"], ["features"], name="r2")], "two_out",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), ("'logits'", "'features'")


@pytest.mark.parametrize("build, count, what", [(_two_inputs, 2, "input"), (_two_outputs, 2, "output")],
                         ids=["two_inputs", "two_outputs"])
def test_graph_with_several_inputs_or_outputs(tmp_path, build, count, what):
    model, names = build()
    onnx.checker.check_model(model)
    path = save(model, tmp_path / f"multi_{what}.onnx")
    message = raises(path, UnsupportedOpError)
    assert_mentions(message, path, f"{count} {what}s", *names)
    assert_advises(message, rf"one {what}")


# --- malformed files ------------------------------------------------------------------


def _valid_model():
    nodes = [H("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             H("Relu", ["c"], ["r"], name="relu"), H("Flatten", ["r"], ["f"], name="flat"),
             H("Gemm", ["f", "F", "FB"], ["y"], name="fc", transB=1)]
    inits = {"W": ones(4, 3, 3, 3) * 0.1, "B": ones(4), "F": ones(10, 4 * 5 * 5) * 0.01, "FB": ones(10)}
    return make_model(nodes, (1, 3, 5, 5), inits, output_rank=2)


def test_the_valid_model_loads(tmp_path):
    """The baseline the malformed files are made from does import."""
    graph = snnconv.load_onnx(save(_valid_model(), tmp_path / "ok.onnx"))
    assert [layer.kind for layer in graph] == ["input", "conv", "relu", "flatten", "dense", "output"]


def test_missing_path(tmp_path):
    path = str(tmp_path / "nowhere" / "model.onnx")
    message = raises(path, BadModelError)
    assert_mentions(message, path, "no such file")
    assert_advises(message, r"pass the path")


def test_directory_instead_of_file(tmp_path):
    message = raises(tmp_path, BadModelError)
    assert_mentions(message, str(tmp_path))
    assert_advises(message, r"pass the path")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    message = raises(path, BadModelError)
    assert_mentions(message, str(path), "empty")
    assert_advises(message, r"export")


def _bytes_cases():
    valid = _valid_model().SerializeToString()
    return {
        "truncated_half": valid[: len(valid) // 2],
        "truncated_one_byte_short": valid[:-1],
        "text": b"This is a README, not a network.\nIt has two lines.\n",
        "csv": b"a,b,c\n1,2,3\n",
        "random_bytes": np.random.default_rng(0).bytes(4096),
        "zeros": bytes(64),
    }


BYTES_CASES = _bytes_cases()


@pytest.mark.parametrize("case", sorted(BYTES_CASES))
def test_file_that_is_not_a_complete_onnx_model(tmp_path, case):
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(BYTES_CASES[case])
    message = raises(path, BadModelError)
    assert_mentions(message, str(path))
    assert_advises(message, r"export|right file|download")


def _cycle():
    nodes = [H("Add", ["x", "loop_back"], ["a"], name="adder_node"),
             H("Relu", ["a"], ["loop_back"], name="feedback_relu"),
             H("Relu", ["a"], ["y"], name="head")]
    return make_model(nodes, (1, 3)), ("{path}", "'loop_back'", "adder_node")


def _dangling():
    return make_model([H("Add", ["x", "ghost_tensor"], ["y"], name="haunted_add")], (1, 3)), \
        ("{path}", "'ghost_tensor'", "haunted_add")


def _bad_raw_data():
    tensor = numpy_helper.from_array(ones(3), "short_weights")
    tensor.raw_data = tensor.raw_data[:8]  # 2 floats for a declared 3
    model = make_model([H("Add", ["x", "short_weights"], ["y"], name="add")], (1, 3))
    model.graph.initializer.append(tensor)
    return model, ("{path}", "short_weights")


# id -> (model, needles, advice regex); "{path}" stands for the file's path. Node-level errors name
# the node instead of the file; the checker's rejections should still name the node it complains of.
MALFORMED_GRAPHS = {
    "cycle": (*_cycle(), r"export|fix"),
    "dangling_input": (*_dangling(), r"export|fix"),
    "raw_data_wrong_size": (*_bad_raw_data(), r"export|fix"),
    "initializer_nan": (make_model([H("Add", ["x", "offsets"], ["y"])], (1, 3),
                                   {"offsets": np.array([1, np.nan, 2], np.float32)}),
                        ("{path}", "'offsets'", "NaN"), r"retrain|fix"),
    "initializer_inf": (make_model([H("Mul", ["x", "gain"], ["y"])], (1, 3),
                                   {"gain": np.array([1, -np.inf, 2], np.float32)}),
                        ("{path}", "'gain'", "infinite"), r"retrain|fix"),
    "input_dim_zero": (make_model([H("Relu", ["x"], ["y"])], (1, 0, 4), declared_input_shape=["N", 0, 4]),
                       ("{path}", "'x'", "dimension 1"), r"input.shape|export|fix"),
    "input_dynamic_non_batch_dim": (make_model([H("Relu", ["x"], ["y"])], (1, 3, 4),
                                               declared_input_shape=["N", 3, "width"]),
                                    ("{path}", "'x'", "dimension 2", "dynamic"), r"input.shape"),
    "constant_of_shape_2_pow_40": (make_model([H("ConstantOfShape", ["huge_shape"], ["huge"], name="balloon"),
                                               H("Relu", ["x"], ["y"])], (1, 3),
                                              {"huge_shape": np.array([2**40], np.int64)}),
                                   ("'balloon'", "ConstantOfShape", str(2**40)), r"malformed|export"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_GRAPHS))
def test_malformed_graph(tmp_path, case):
    model, needles, advice = MALFORMED_GRAPHS[case]
    path = save(model, tmp_path / f"{case}.onnx")
    message = raises(path, BadModelError)
    assert_mentions(message, *(needle.format(path=path) for needle in needles))
    assert_advises(message, advice)


def test_dynamic_non_batch_dim_loads_with_input_shape():
    """The counterpart of ``input_dynamic_non_batch_dim``: with the shape given it imports."""
    model, _, _ = MALFORMED_GRAPHS["input_dynamic_non_batch_dim"]
    assert snnconv.load_onnx(model, input_shape=(3, 7)).input.shape == (3, 7)


@pytest.mark.parametrize("input_shape, needle", [((3, 5, 5), "3 dims"), ((4, 5), "axis 1"), ((3, 0), "axis 2")],
                         ids=["wrong_rank", "contradicts_model", "zero"])
def test_bad_input_shape_override(input_shape, needle):
    model = make_model([H("Relu", ["x"], ["y"])], (1, 3, 4), declared_input_shape=["N", 3, "width"])
    assert_mentions(raises(model, BadModelError, input_shape=input_shape), "'x'", needle, "--input-shape")


def test_opset_newer_than_onnx_knows(tmp_path):
    path = save(make_model([H("Relu", ["x"], ["y"])], (1, 3), opset=99), tmp_path / "future.onnx")
    message = raises(path, UnsupportedOpError)  # a sound model snnconv's onnx cannot read yet
    assert_mentions(message, path, "opset 99", onnx.__version__)
    assert_advises(message, r"upgrade onnx")


@pytest.mark.parametrize("build", [
    lambda: make_model([H("Pad", ["x"], ["y"], name="old_pad", paddings=[0, 0, 1, 1, 0, 0, 1, 1])], (1, 3, 4, 4),
                       opset=1),
    lambda: make_model([H("Scatter", ["x", "i", "x"], ["y"], name="old_scatter")], (1, 3),
                       {"i": np.zeros((1, 3), np.int64)}, opset=8),
], ids=["pad_opset1", "scatter_opset8"])
def test_opset_too_old_for_the_version_converter(tmp_path, build):
    path = save(build(), tmp_path / "ancient.onnx")
    message = raises(path, UnsupportedOpError)  # sound but too old for the version converter
    assert_mentions(message, path, "older than 9")
    assert_advises(message, r"re-export the model at opset 9 or newer")


OLD_MODELS = {
    "relu_opset6": make_model([H("Relu", ["x"], ["y"])], (1, 3), opset=6),
    "batchnorm_opset6": make_model([H("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], is_test=1)],
                                   (1, 3, 4, 4), {k: ones(3) for k in "gbmv"}, opset=6),
    "gemm_opset6_fixed_batch": make_model([H("Gemm", ["x", "W", "C"], ["y"], broadcast=1, transB=1)], (1, 3),
                                          {"W": ones(4, 3), "C": ones(4)}, opset=6, declared_input_shape=[1, 3]),
    # the batch dimension is symbolic ("N"), as every exporter writes it
    "gemm_opset6_symbolic_batch": make_model([H("Gemm", ["x", "W", "C"], ["y"], broadcast=1, transB=1)], (1, 3),
                                             {"W": ones(4, 3), "C": ones(4)}, opset=6),
    "add_constant_opset6_symbolic_batch": make_model([H("Add", ["x", "k"], ["y"], broadcast=1)], (1, 3),
                                                     {"k": ones(3)}, opset=6),
}
OLD_KINDS = {
    "relu_opset6": ["input", "relu", "output"],
    "batchnorm_opset6": ["input", "batchnorm", "output"],
    "gemm_opset6_fixed_batch": ["input", "dense", "output"],
    "gemm_opset6_symbolic_batch": ["input", "dense", "output"],
    "add_constant_opset6_symbolic_batch": ["input", "affine", "output"],
}


@pytest.mark.parametrize("case", sorted(OLD_MODELS))
def test_old_opset_is_upgraded_and_imports(case, matches_onnxruntime):
    model = OLD_MODELS[case]
    shape = [1 if d.dim_param else d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    graph = matches_onnxruntime(model, x)
    assert [layer.kind for layer in graph] == OLD_KINDS[case]


def test_model_without_default_opset():
    model = make_model([H("Relu", ["x"], ["y"])], (1, 3))
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    message = raises(model, BadModelError)
    assert_mentions(message, "<ModelProto>", "opset")
    assert_advises(message, r"re-export")


def test_input_without_shape():
    model = make_model([H("Relu", ["x"], ["y"])], (1, 3))
    model.graph.input[0].type.tensor_type.ClearField("shape")
    assert_mentions(raises(model, BadModelError), "'x'", "--input-shape")


# --- external data --------------------------------------------------------------------


def _external_model(folder, location="weights.bin"):
    """``folder/model.onnx`` with every initializer in ``folder/location``; its path and proto (data unloaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(_valid_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path, onnx.load(str(path), load_external_data=False)


def _relocated(proto: onnx.ModelProto, location: str) -> onnx.ModelProto:
    moved = onnx.ModelProto()
    moved.CopyFrom(proto)
    for tensor in moved.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    return moved


def test_external_data_beside_the_model_loads(tmp_path):
    path, proto = _external_model(tmp_path / "model")
    assert all(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert (tmp_path / "model" / "weights.bin").is_file()
    graph = snnconv.load_onnx(path)
    expected = snnconv.load_onnx(_valid_model())
    assert [layer.kind for layer in graph] == [layer.kind for layer in expected]
    for mine, theirs in zip(graph, expected):
        for field, array in theirs.arrays().items():
            np.testing.assert_array_equal(mine.arrays()[field], array)


def test_external_data_in_a_subfolder_loads(tmp_path):
    path, proto = _external_model(tmp_path / "model")
    (tmp_path / "model" / "data").mkdir()
    os.replace(tmp_path / "model" / "weights.bin", tmp_path / "model" / "data" / "weights.bin")
    save(_relocated(proto, "data/../data/weights.bin"), path)
    assert len(snnconv.load_onnx(path)) == 6


def _outside(tmp_path):
    """A real copy of the weights outside the model's folder, so only the location check refuses it."""
    (tmp_path / "outside.bin").write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    return tmp_path / "outside.bin"


def _dotdot(tmp_path):
    _outside(tmp_path)
    return "../outside.bin"


def _absolute(tmp_path):
    return str(_outside(tmp_path).resolve())


def _absolute_inside(tmp_path):
    return str((tmp_path / "model" / "weights.bin").resolve())


def _symlink(tmp_path):
    os.symlink(_outside(tmp_path), tmp_path / "model" / "innocent.bin")
    return "innocent.bin"


def _deep_dotdot(tmp_path):
    _outside(tmp_path)
    (tmp_path / "model" / "sub").mkdir()
    return "sub/../../outside.bin"


@pytest.mark.parametrize("relocate, needle", [
    (_dotdot, "out of"),
    (_deep_dotdot, "out of"),
    (_absolute, "absolute"),
    (_absolute_inside, "absolute"),
    (_symlink, "out of"),
], ids=["dotdot", "nested_dotdot", "absolute_outside", "absolute_inside", "symlink_out"])
def test_external_data_outside_the_folder_is_refused(tmp_path, relocate, needle):
    path, proto = _external_model(tmp_path / "model")
    location = relocate(tmp_path)
    save(_relocated(proto, location), path)
    message = raises(path, BadModelError)
    assert_mentions(message, str(path), "'W'", needle, repr(location))
    assert re.search(r"refused|absolute|out of", message)


def test_external_data_file_missing(tmp_path):
    path, _ = _external_model(tmp_path / "model")
    os.remove(tmp_path / "model" / "weights.bin")
    message = raises(path, BadModelError)
    assert_mentions(message, str(path), "'W'", "'weights.bin'", "missing")


def test_external_data_without_location(tmp_path):
    path, proto = _external_model(tmp_path / "model")
    for tensor in proto.graph.initializer:
        kept = [entry for entry in tensor.external_data if entry.key != "location"]
        del tensor.external_data[:]
        tensor.external_data.extend(kept)
    save(proto, path)
    assert_mentions(raises(path, BadModelError), str(path), "'W'", "no location")


def test_external_data_shorter_than_declared(tmp_path):
    path, _ = _external_model(tmp_path / "model")
    weights = tmp_path / "model" / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    message = raises(path, BadModelError)
    assert_mentions(message, str(path), "'W'")


def test_model_proto_with_unloaded_external_data_is_refused(tmp_path):
    _, proto = _external_model(tmp_path / "model")
    message = raises(proto, BadModelError)
    assert_mentions(message, "<ModelProto>", "'W'", "external")
    assert_advises(message, r"pass the model's path")


def test_every_frontend_error_is_a_snnconv_error():
    assert issubclass(BadModelError, SnnconvError) and issubclass(UnsupportedOpError, SnnconvError)
    assert not issubclass(BadModelError, UnsupportedOpError) and not issubclass(UnsupportedOpError, BadModelError)
