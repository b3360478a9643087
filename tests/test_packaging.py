"""passes/ and targets/ install inside the package, never as top-level modules."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path


def test_only_snnconv_is_a_top_level_name(tmp_path):
    assert metadata.distribution("snnconv").read_text("top_level.txt").split() == ["snnconv"]
    # In a fresh interpreter outside the source tree, only the installed package is importable.
    probe = "import importlib.util as u, snnconv.passes; print(u.find_spec('passes'), u.find_spec('targets'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["None", "None"]


def test_every_package_folder_is_listed_for_installation():
    """A folder with an ``__init__.py`` that pyproject.toml does not list is missing from a wheel."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: root / path for name, path in setup["package-dir"].items()}
    found = set()
    for top, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            if "__pycache__" not in parts:
                found.add(".".join((top, *parts)))
    assert found <= set(setup["packages"]), sorted(found - set(setup["packages"]))


def test_subpackages_and_bundled_files_are_installed():
    import snnconv.models
    import snnconv.passes
    import snnconv.targets

    assert snnconv.passes.__doc__ and snnconv.targets.__doc__
    from importlib import resources

    names = {p.name for p in resources.files(snnconv.models).iterdir()}
    assert {"mnist_mlp.onnx", "mnist_cnn.onnx", "mnist_resnet.onnx", "mnist_test.npz", "mnist_calib.npz"} <= names
