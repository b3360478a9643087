"""A 1-D network (audio, time series: data [N, C, L]) end to end, with data as the source model takes it.

snnconv holds 1-D data as 2-D of height 1 (``Input.shape == (C, 1, L)``) and records the
source's ``(C, L)`` (``Input.source_shape``): ``compile``, ``net.run`` and ``evaluate``
take ``(N, C, L)`` (and still ``(N, C, 1, L)``), onnxruntime times the ANN on ``(1, C, L)``,
the artifact keeps the source shape, and the layer table and partition report show (C, L)
and kernels ``k``. Predictions are checked against onnxruntime's.
"""

from __future__ import annotations

import functools
import json
import logging
import zipfile

import numpy as np
import pytest
from helpers import make_model, onnxruntime_output
from onnx import helper

import snnconv
from snnconv.errors import BadDataError
from snnconv.report import PartitionReport
from snnconv.summary import render_summary, summary_dict

H = helper.make_node
R = np.random.default_rng(7)
C, L, CLASSES = 3, 24, 4


def w(*shape):
    return R.standard_normal(shape).astype(np.float32) * 0.5


MODEL = make_model(
    [H("Conv", ["x", "W1", "B1"], ["c1"], pads=[2, 2]), H("Relu", ["c1"], ["r1"]),
     H("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
     H("Conv", ["p1", "W2"], ["c2"], strides=[2], pads=[1, 1]), H("Relu", ["c2"], ["r2"]),
     H("Flatten", ["r2"], ["f"]), H("Gemm", ["f", "G"], ["y"], transB=1)],
    (2, C, L), {"W1": w(8, C, 5), "B1": w(8) * 0.2, "W2": w(6, 8, 3) * 0.5, "G": w(CLASSES, 36) * 0.5},
    output_rank=2)
X = R.standard_normal((96, C, L)).astype(np.float32)


@functools.cache
def compiled() -> snnconv.CompiledNetwork:
    return snnconv.compile(MODEL, "loihi", X, timesteps=32)


@functools.cache
def ann_predictions() -> np.ndarray:
    return onnxruntime_output(MODEL, X).argmax(axis=1)


def test_compile_keeps_the_source_shape_and_times_the_ann_on_it(caplog):
    with caplog.at_level(logging.WARNING):
        net = snnconv.compile(MODEL, "loihi", X[:16], timesteps=8, tune="off")
    assert (net.graph.input.shape, net.graph.input.source_shape, net.graph.input.one_d) == ((C, 1, L), (C, L), True)
    assert "could not run" not in caplog.text
    assert net.ann["latency_us"] is not None and net.ann["latency_us"] > 0, net.ann["latency_source"]


def test_run_takes_n_c_l_and_agrees_with_onnxruntime():
    net = compiled()
    result = net.run(X)
    assert result.outputs.shape == (len(X), CLASSES)
    assert np.mean(result.predictions == ann_predictions()) >= 0.85
    held = net.run(X.reshape(len(X), C, 1, L))  # the held shape is still taken, with the same result
    np.testing.assert_array_equal(held.outputs, result.outputs)


def test_wrong_shapes_are_refused_naming_both_forms():
    with pytest.raises(BadDataError, match=rf"\(N, {C}, {L}\) or \(N, {C}, 1, {L}\)"):
        compiled().run(X[:, :, :-1])


def test_evaluate_takes_n_c_l_and_agrees_with_onnxruntime():
    labels = ann_predictions()
    table = snnconv.evaluate(MODEL, (X, labels), target="loihi", timesteps=(16, 32))
    assert table.ann == 1.0  # the IR's ANN predicts what onnxruntime does
    assert table.agreement[32] >= 0.85 and table.snn[32] >= 0.85


def test_artifact_round_trip_keeps_the_source_shape(tmp_path):
    net = compiled()
    path = net.save(tmp_path / "one_d.snn")
    loaded = snnconv.load(path)
    assert (loaded.graph.input.shape, loaded.graph.input.source_shape) == ((C, 1, L), (C, L))
    np.testing.assert_array_equal(loaded.run(X[:32]).outputs, net.run(X[:32]).outputs)
    with zipfile.ZipFile(path) as archive:
        program = json.loads(archive.read("manifest.json"))["program"]
    assert program[0]["source_shape"] == [C, L]


def test_a_2d_artifact_does_not_write_the_field(tmp_path):
    """2-D networks' artifacts stay as before: readable by an snnconv without ``source_shape``; absent, it is None."""
    model = make_model([H("Conv", ["x", "W"], ["c"]), H("Relu", ["c"], ["r"]), H("Flatten", ["r"], ["f"]),
                        H("Gemm", ["f", "G"], ["y"], transB=1)], (2, 1, 5, 5), {"W": w(2, 1, 3, 3), "G": w(3, 18)},
                       output_rank=2)
    x = R.standard_normal((16, 1, 5, 5)).astype(np.float32)
    path = snnconv.compile(model, "loihi", x, timesteps=8, tune="off").save(tmp_path / "two_d.snn")
    with zipfile.ZipFile(path) as archive:
        program = json.loads(archive.read("manifest.json"))["program"]
    assert "source_shape" not in program[0]
    loaded = snnconv.load(path)
    assert loaded.graph.input.source_shape is None and not loaded.graph.input.one_d


def test_a_feature_map_output_comes_back_as_n_c_l():
    model = make_model([H("Conv", ["x", "W"], ["c"], pads=[1, 1]), H("Relu", ["c"], ["y"])], (2, C, L),
                       {"W": w(5, C, 3)})
    net = snnconv.compile(model, "loihi", X[:32], timesteps=8, tune="off")
    result = net.run(X[:4])
    assert result.outputs.shape == (4, 5, L) and result.predictions.shape == (4, L)


def test_layer_table_and_partition_report_show_1d():
    net = compiled()
    summary = summary_dict(snnconv.load_onnx(MODEL), "one_d")
    rows = {row["kind"]: row for row in reversed(summary["layers"])}  # the first of each kind
    assert summary["layers"][0]["shape"] == [C, L]
    assert rows["conv"]["shape"] == [8, L] and rows["conv"]["details"] == "5 s1 p2,2"
    assert rows["pool"]["details"] == "max 2 s2"
    text = render_summary(summary)
    assert f"8x{L}" in text and "1x5" not in text and f"8x1x{L}" not in text
    report = net.report
    assert isinstance(report, PartitionReport) and report.one_d
    rendered = report.render()
    assert "tile (c,l)" in rendered and "tile (c,h,w)" not in rendered
    convs = [row for row in report.to_dict()["layers"] if len(row["shape"]) == 2]
    assert convs and all(row["tile"][1] == 1 for row in convs)  # the core map's box keeps its (c, h, w)
    for row in convs:
        assert "x".join(map(str, (row["tile"][0], row["tile"][2]))) in rendered


def test_a_2d_network_shows_2d():
    graph = snnconv.load_onnx(make_model([H("Conv", ["x", "W"], ["y"], strides=[1, 2])], (1, 2, 6, 6),
                                         {"W": w(3, 2, 1, 3)}))
    rows = summary_dict(graph, "two_d")["layers"]
    assert rows[1]["shape"] == [3, 6, 2] and rows[1]["details"] == "1x3 s1,2"
