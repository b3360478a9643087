"""Fixtures of the reliability tests: the good files that they break."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from reliability.inputs import LENET_SHAPE, lenet

import snnconv


@pytest.fixture(scope="session")
def lenet_path(tmp_path_factory):
    """The ``lenet`` model as a file."""
    path = tmp_path_factory.mktemp("models") / "lenet.onnx"
    onnx.save_model(lenet(), str(path))
    return path


@pytest.fixture(scope="session")
def lenet_calibration() -> np.ndarray:
    return np.random.default_rng(1).random((16, *LENET_SHAPE)).astype(np.float32)


@pytest.fixture(scope="session")
def artifact_path(lenet_path, lenet_calibration, tmp_path_factory):
    """A small compiled network (``lenet`` on loihi, T = 4) as a ``.snn`` file."""
    net = snnconv.compile(str(lenet_path), "loihi", lenet_calibration, timesteps=4, percentile=99.9)
    return net.save(tmp_path_factory.mktemp("artifact") / "lenet.snn")


@pytest.fixture(scope="session")
def artifact_bytes(artifact_path) -> bytes:
    return artifact_path.read_bytes()
