"""passes/ and targets/ install inside the package, never as top-level modules."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata


def test_only_snnconv_is_a_top_level_name(tmp_path):
    assert metadata.distribution("snnconv").read_text("top_level.txt").split() == ["snnconv"]
    # In a fresh interpreter outside the source tree, only the installed package is importable.
    probe = "import importlib.util as u, snnconv.passes; print(u.find_spec('passes'), u.find_spec('targets'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["None", "None"]


def test_subpackages_and_bundled_files_are_installed():
    import snnconv.models
    import snnconv.passes
    import snnconv.targets

    assert snnconv.passes.__doc__ and snnconv.targets.__doc__
    from importlib import resources

    names = {p.name for p in resources.files(snnconv.models).iterdir()}
    assert {"mnist_mlp.onnx", "mnist_cnn.onnx", "mnist_resnet.onnx", "mnist_test.npz", "mnist_calib.npz"} <= names
