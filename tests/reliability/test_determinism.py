"""Determinism: the same model, data and options give a byte-identical artifact, in this process
and in another one (other hash seed, so no set or dict order can leak into the file); a
simulation with a given seed gives the same outputs every time, on any number of threads,
and another seed gives other spikes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import resources

import numpy as np
import pytest
import torch

import snnconv
from snnconv.snn import simulate

MODELS = resources.files("snnconv.models")
MNIST_MLP = str(MODELS.joinpath("mnist_mlp.onnx"))
CALIBRATION = str(MODELS.joinpath("mnist_calib.npz"))
SAMPLES = 128  # calibration digits: enough for the tuning to choose, few enough to compile in seconds
OPTIONS = {"target": "loihi", "timesteps": 16}


def compile_mlp() -> snnconv.CompiledNetwork:
    calibration = np.load(CALIBRATION)["x"][:SAMPLES]
    return snnconv.compile(MNIST_MLP, calibration=calibration, **OPTIONS)


@pytest.fixture(scope="module")
def network():
    return compile_mlp()


@pytest.fixture(scope="module")
def digits():
    return np.load(MODELS.joinpath("mnist_test.npz"))["x"][:32]


def test_compiling_twice_gives_byte_identical_artifacts(network, tmp_path):
    first = network.save(tmp_path / "first.snn").read_bytes()
    second = compile_mlp().save(tmp_path / "second.snn").read_bytes()
    assert first == second


COMPILE_ELSEWHERE = textwrap.dedent(f"""
    import sys
    import numpy as np
    import snnconv
    calibration = np.load({CALIBRATION!r})["x"][:{SAMPLES}]
    snnconv.compile({MNIST_MLP!r}, calibration=calibration, **{OPTIONS!r}).save(sys.argv[1])
""")


def test_another_process_with_another_hash_seed_writes_the_same_bytes(network, tmp_path):
    elsewhere = tmp_path / "elsewhere.snn"
    result = subprocess.run([sys.executable, "-c", COMPILE_ELSEWHERE, str(elsewhere)], capture_output=True,
                            text=True, timeout=300, check=False, env={**os.environ, "PYTHONHASHSEED": "12345"},
                            cwd=tmp_path)  # outside the source tree: the installed package is imported
    assert result.returncode == 0, result.stderr
    assert elsewhere.read_bytes() == network.save(tmp_path / "here.snn").read_bytes()


def rate_run(network, digits, seed: int):
    return simulate(network.graph, digits, 16, encoding="rate", seed=seed)


def test_a_seeded_rate_simulation_repeats_exactly(network, digits):
    first, second = rate_run(network, digits, 7), rate_run(network, digits, 7)
    np.testing.assert_array_equal(first.outputs[16], second.outputs[16])
    for name, counts in first.spike_counts.items():
        np.testing.assert_array_equal(second.spike_counts[name], counts)


def test_another_seed_draws_other_spikes(network, digits):
    first, other = rate_run(network, digits, 7), rate_run(network, digits, 8)
    assert not np.array_equal(first.outputs[16], other.outputs[16])


def test_the_number_of_threads_does_not_change_the_outputs(network, digits):
    """The chip model's sums are exact integers in float32, so the order of summation cannot matter."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = network.run(digits)
        torch.set_num_threads(2)
        two = network.run(digits)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one.outputs, two.outputs)
    assert one.stats == two.stats
