"""Fixtures shared by the tests; the oracles themselves live in helpers.py."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_matches_onnxruntime


@pytest.fixture
def matches_onnxruntime():
    return assert_matches_onnxruntime


@pytest.fixture
def rng():
    return np.random.default_rng(0)
