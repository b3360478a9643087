"""The architecture contracts of DESIGN.md ("Rooms") hold: ``lint-imports`` with the contracts in pyproject.toml.

import-linter reads the package from disk, so it runs on the installed package (as CI
installs it) from a folder outside the source tree. An editable install keeps passes/ and
targets/ outside snnconv/, where import-linter cannot see them: there the test is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import snnconv

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
INSTALLED = Path(snnconv.__file__).parent


@pytest.mark.skipif(not (INSTALLED / "targets").is_dir(),
                    reason="editable install: snnconv.targets is not under snnconv/, which import-linter needs; "
                           "CI installs the package and runs this")
@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_the_import_contracts_hold(tmp_path):
    result = subprocess.run(["lint-imports", "--config", str(PYPROJECT), "--no-cache"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "0 broken" in result.stdout
