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


def test_each_command_loads_only_the_heavy_libraries_it_needs(tmp_path):
    """``import snnconv`` loads neither torch nor onnx; ``inspect`` loads no torch; ``run`` on an artifact loads no
    onnx (importing onnx and its ml_dtypes is about a third of a one-sample ``snnconv run``'s start)."""
    from importlib import resources

    import numpy as np

    import snnconv

    models = resources.files("snnconv.models")
    snnconv.compile(str(models.joinpath("mnist_mlp.onnx")), "ideal", uncalibrated=True).save(tmp_path / "mlp.snn")
    np.savez(tmp_path / "one.npz", x=np.load(models.joinpath("mnist_test.npz"))["x"][:1])
    probe = ("import sys; from snnconv.cli import main; loaded = lambda: [m for m in ('torch', 'onnx') "
             "if m in sys.modules]; print(*loaded(), sep=','); main(['-q'] + sys.argv[1:]); print(*loaded(), sep=',')")
    model = str(models.joinpath("mnist_mlp.onnx"))
    for command, after in ((["inspect", model], "onnx"), (["run", "mlp.snn", "--data", "one.npz"], "torch")):
        result = subprocess.run([sys.executable, "-c", probe, *command], cwd=tmp_path, capture_output=True, text=True,
                                check=True)
        lines = result.stdout.splitlines()
        assert (lines[0], lines[-1]) == ("", after), (command, result.stdout[-500:])
