"""The evaluator's kernels for graphs at chip precision: sum pooling and the bias format."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnconv import ann
from snnconv.ir import Pool, Round
from snnconv.passes.quantize import quantize_bias
from snnconv.targets import get


@pytest.mark.parametrize("kernel, stride, pad, ceil_mode", [((2, 2), (2, 2), 0, False), ((3, 3), (2, 2), 1, False),
                                                            ((3, 2), (1, 2), 1, True), ((7, 7), (1, 1), 0, False)])
def test_sum_pool_matches_torch_average_pool_with_divisor_one(kernel, stride, pad, ceil_mode, rng):
    x = torch.from_numpy(rng.normal(size=(2, 3, 7, 9)))
    layer = Pool(name="p", inputs=("x",), shape=(1,), mode="sum", kernel=kernel, stride=stride,
                 pads=(pad, pad, pad, pad), ceil_mode=ceil_mode)
    layer = dataclasses.replace(layer, shape=layer.infer_shape([tuple(x.shape[1:])]))
    expected = F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode, count_include_pad=True, divisor_override=1)
    torch.testing.assert_close(ann.apply_layer(layer, [x]), expected, rtol=0, atol=1e-12)


def _nearest_in_format(value: float, bits: int, exponents: range) -> float:
    """Brute force: the representable value nearest ``value``, preferring the smallest exponent."""
    largest = 2 ** (bits - 1) - 1
    best = None
    for e, m in itertools.product(exponents, range(-largest, largest + 1)):
        candidate = m * 2.0 ** e
        if best is None or abs(candidate - value) < abs(best - value):
            best = candidate
    return best


def test_round_and_bias_quantization_agree_with_brute_force(rng):
    bits, exponents = 5, (0, 3)
    values = np.concatenate([rng.normal(scale=30, size=300), [0.0, 0.5, -0.5, 15.5, 1e6, -1e6, 119.0, 121.0]])
    layer = Round(name="q", inputs=("x",), shape=(1,), bits=bits, exponent=exponents)
    rounded = ann.apply_layer(layer, [torch.from_numpy(values)]).numpy()
    precision = dataclasses.replace(get("loihi").precision, bias_bits=bits, bias_exponent=exponents)
    np.testing.assert_array_equal(rounded, quantize_bias(values, precision))
    for value, got in zip(values, rounded):
        best = _nearest_in_format(value, bits, range(exponents[0], exponents[1] + 1))
        assert abs(got - value) <= abs(best - value) + 1e-9, (value, got, best)
