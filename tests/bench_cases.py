"""One small benchmark shared by the benchmark's tests, computed once per test process (compiling is the slow part)."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources

import numpy as np

import snnconv
from snnconv import targets

MODELS = resources.files("snnconv.models")
MLP = str(MODELS / "mnist_mlp.onnx")
SAMPLES = 60
TIMESTEPS = 8


def tiny_loihi():
    """Loihi with one core of 64 neurons on one chip: the bundled MLP's 394 neurons do not fit it."""
    loihi = targets.get("loihi")
    return dataclasses.replace(loihi, name="tiny", core=dataclasses.replace(loihi.core, neurons=64),
                               chip=dataclasses.replace(loihi.chip, cores=1, mesh=(1, 1), chips=1))


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibration digits, and the test digits with their labels."""
    test = np.load(MODELS / "mnist_test.npz")
    return np.load(MODELS / "mnist_calib.npz")["x"], test["x"][:SAMPLES], test["y"][:SAMPLES]


@functools.cache
def mlp_bench():
    """The bundled MLP at T = 8 on loihi and spinnaker2, rate-coded and graded, and on a target it does not fit."""
    calibration, x, y = data()
    return snnconv.bench(MLP, ["loihi", "spinnaker2", tiny_loihi()], codings=["if", "graded"], timesteps=[TIMESTEPS],
                         data=(x, y), calibration=calibration, budget_s=0.2)
