"""The bundled Fashion-MNIST models (models/train_fashion.py): the IR evaluator equals
onnxruntime on the 1,000 bundled test images, the recorded accuracy is what the model
scores, and the compiled SNN (loihi, T = 32) stays within a few points of the ANN.

Only the bundled files are needed; the one test that reads the full data set (Debian's
``dataset-fashion-mnist``) is skipped where it is not installed."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import onnxruntime_output

import snnconv

MODELS = resources.files("snnconv.models")
CATALOG = json.loads(MODELS.joinpath("fashion_models.json").read_text())
FULL_DATA = Path("/usr/share/datasets/fashion-mnist")
SNN_IMAGES = 200  # test images the SNN runs on
SNN_TOLERANCE = 0.03  # SNN at T = 32 within 3 points of the ANN on the same images (measured: see the report)


def _bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(MODELS.joinpath(f"fashion_{name}.npz"), allow_pickle=False) as data:
        return data["x"], data["y"]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_fashion_model_matches_onnxruntime(name):
    entry = CATALOG[name]
    path = MODELS.joinpath(entry["file"])
    assert path.stat().st_size < 2_000_000
    x, y = _bundled("test")
    graph = snnconv.load_onnx(str(path))
    actual = snnconv.ann.evaluate(graph, x)
    expected = onnxruntime_output(onnx.load(str(path)), x)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)
    assert (actual.argmax(1) == expected.argmax(1)).all()
    accuracy = float((actual.argmax(1) == y).mean())
    assert accuracy == pytest.approx(entry["sample_accuracy"], abs=1e-4)
    assert accuracy > 0.88


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_fashion_snn_close_to_ann(name):
    """Compiled for loihi at T = 32 from the bundled calibration images, run on the chip model.

    ``tune="off"`` (the default percentile, bias correction kept) and every 4th calibration
    image (125, 12 or 13 per class) keep the test fast; the tuned compilation on all 500 is
    what benchmarks/accuracy.py measures."""
    path = str(MODELS.joinpath(CATALOG[name]["file"]))
    calibration = _bundled("calib")[0][::4]
    x, y = _bundled("test")
    x, y = x[:: len(x) // SNN_IMAGES], y[:: len(y) // SNN_IMAGES]  # every 5th: 20 images per class
    net = snnconv.compile(path, "loihi", calibration, timesteps=32, tune="off")
    snn = float((net.run(x, 32).predictions == y).mean())
    ann = float((snnconv.ann.evaluate(snnconv.load_onnx(path), x).argmax(1) == y).mean())
    assert snn >= ann - SNN_TOLERANCE, f"{name}: SNN {snn:.3f} vs ANN {ann:.3f} on {len(y)} test images at T = 32"


def test_fashion_data_is_the_documented_sample():
    x, y = _bundled("test")
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [100] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0
    calibration, labels = _bundled("calib")
    assert calibration.shape == (500, 1, 28, 28) and calibration.dtype == np.float32
    assert np.bincount(labels).tolist() == [50] * 10
    # calibration images come from the training set: none equals a test image
    test_rows = {row.tobytes() for row in x.reshape(len(x), -1)}
    assert not any(row.tobytes() in test_rows for row in calibration.reshape(500, -1))


@pytest.mark.skipif(not FULL_DATA.is_dir(), reason="needs Debian's dataset-fashion-mnist (the full data set)")
def test_fashion_samples_are_drawn_from_the_data_set():
    """The bundled images are those models/train_fashion.py draws from the installed data set."""
    from snnconv.models import train_fashion

    x_train, y_train, x_test, y_test = train_fashion.load_fashion(FULL_DATA)
    assert (len(y_train), len(y_test)) == (60_000, 10_000)
    for name, (xs, ys, per_class) in {"calib": (x_train, y_train, 50), "test": (x_test, y_test, 100)}.items():
        chosen = train_fashion.per_class_sample(ys, per_class, train_fashion.SEED)
        x, y = _bundled(name)
        np.testing.assert_array_equal(x, xs[chosen])
        np.testing.assert_array_equal(y, ys[chosen])
