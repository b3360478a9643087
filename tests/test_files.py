"""The one atomic writer gives files the permissions the umask gives, not mkstemp's 0600 (a failed write is
tested in ``reliability/test_hostile_commands.py``)."""

from __future__ import annotations

import os
import stat

import pytest

from snnconv import files


@pytest.fixture
def umask():
    def set_to(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_to
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_has_the_permissions_the_umask_gives(mask, mode, umask, tmp_path):
    umask(mask)
    path = files.atomic_write(tmp_path / "out.nir", lambda temporary: temporary.write_bytes(b"data"))
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_bytes() == b"data"

