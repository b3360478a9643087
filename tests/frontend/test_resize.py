"""Resize and Upsample (nearest, integer factors) against onnxruntime.

For every combination of coordinate transformation and nearest mode, at several sizes
and factors, snnconv converts the node exactly when onnxruntime's result is a repetition
of each value (``y[i] = x[i // f]``), and then computes what onnxruntime computes; where
it refuses, onnxruntime's result is indeed not such a repetition.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import TOLERANCE, make_model, onnxruntime_output
from onnx import helper

import snnconv
from snnconv.errors import UnsupportedOpError
from snnconv.ir import Upsample

H = helper.make_node
COORDINATES = ("half_pixel", "pytorch_half_pixel", "asymmetric", "tf_half_pixel_for_nn", "align_corners")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _repeated(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return x.repeat(rows, axis=2).repeat(cols, axis=3)


def _resize(shape, scales, opset=13, **attrs):
    return make_model([H("Resize", ["x", "", "scales"], ["y"], name="up", mode="nearest", **attrs)], shape,
                      {"scales": np.array(scales, np.float32)}, opset=opset)


@pytest.mark.parametrize("coordinates, nearest, size, factor",
                         list(itertools.product(COORDINATES, NEAREST, (3, 4, 5), (2, 3))))
def test_converts_exactly_when_onnxruntime_repeats_each_value(coordinates, nearest, size, factor):
    model = _resize((2, 3, size, size + 1), [1, 1, factor, factor], coordinate_transformation_mode=coordinates,
                    nearest_mode=nearest)
    x = np.random.default_rng(size * factor).standard_normal((2, 3, size, size + 1)).astype(np.float32)
    expected = onnxruntime_output(model, x)
    repeats = np.array_equal(expected, _repeated(x, factor, factor))
    try:
        graph = snnconv.load_onnx(model).validate()
    except UnsupportedOpError as error:
        assert not repeats, f"refused, yet onnxruntime repeats each value: {error}"
        assert "\n" not in str(error) and f"{coordinates!r} with nearest_mode {nearest!r}" in str(error)
        return
    assert repeats, "converted, yet onnxruntime does not repeat each value"
    np.testing.assert_array_equal(snnconv.ann.evaluate(graph, x), expected)


@pytest.mark.parametrize("name, model, shape, factor", [
    ("resize10", make_model([H("Resize", ["x", "scales"], ["y"], mode="nearest")], (1, 2, 3, 4),
                            {"scales": np.array([1, 1, 2, 3], np.float32)}, opset=10), (1, 2, 3, 4), (2, 3)),
    ("resize11_sizes", make_model([H("Resize", ["x", "roi", "scales", "sizes"], ["y"], mode="nearest")],
                                  (1, 2, 3, 4), {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                                 "sizes": np.array([1, 2, 6, 4], np.int64)}, opset=11),
     (1, 2, 3, 4), (2, 1)),
    ("resize13_empty_scales", make_model([H("Resize", ["x", "roi", "scales", "sizes"], ["y"], mode="nearest")],
                                         (1, 2, 3, 4), {"roi": np.zeros(0, np.float32),
                                                        "scales": np.zeros(0, np.float32),
                                                        "sizes": np.array([1, 2, 9, 8], np.int64)}),
     (1, 2, 3, 4), (3, 2)),
    ("resize18_axes", make_model([H("Resize", ["x", "", "scales"], ["y"], mode="nearest", axes=[2, 3])],
                                 (1, 2, 3, 4), {"scales": np.array([2, 2], np.float32)}, opset=18), (1, 2, 3, 4),
     (2, 2)),
    ("resize19", _resize((1, 2, 3, 4), [1, 1, 4, 2], opset=19, coordinate_transformation_mode="half_pixel_symmetric"),
     (1, 2, 3, 4), (4, 2)),
    ("upsample7", make_model([H("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0])], (1, 2, 3, 4), opset=7),
     (1, 2, 3, 4), (2, 2)),
    ("upsample9", make_model([H("Upsample", ["x", "scales"], ["y"])], (1, 2, 3, 4),
                             {"scales": np.array([1, 1, 3, 1], np.float32)}, opset=9), (1, 2, 3, 4), (3, 1)),
    ("one_d", make_model([H("Conv", ["x", "W"], ["c"]), H("Resize", ["c", "", "scales"], ["y"], mode="nearest")],
                         (1, 2, 5), {"W": np.arange(12, dtype=np.float32).reshape(3, 2, 2) - 6,
                                     "scales": np.array([1, 1, 3], np.float32)}), (1, 2, 5), (1, 3)),
])
def test_each_version_and_form_converts_and_matches_onnxruntime(name, model, shape, factor):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    graph = snnconv.load_onnx(model).validate()
    (layer,) = [layer for layer in graph if isinstance(layer, Upsample)]
    assert layer.factor == factor
    expected = onnxruntime_output(model, x)
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x).reshape(expected.shape), expected, rtol=0,
                               atol=TOLERANCE)  # the 1-D case's conv rounds differently from onnxruntime's
