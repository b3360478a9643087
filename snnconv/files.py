"""Every path snnconv reads or writes, checked in one place before any work is done.

Reading: only regular files. ``open`` on a FIFO blocks until a writer comes and
``/dev/zero`` never ends, so an input is opened without blocking, checked with ``fstat``
to be a regular file, and read only up to a size the caller states.

Writing: ``check_outputs`` refuses, before a command starts its work, an output whose
folder is missing or not writable, an output that is a folder or a special file, and an
output that is the same file as one of the command's inputs or as another output (by
resolved path, and by device and inode for hard links). ``atomic_write`` writes a
temporary file beside the destination and renames it over it, so a failure never leaves
half a file and never destroys the previous one; the file gets the permissions the
user's umask gives (``mkstemp`` alone would make it private to its writer).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from snnconv.errors import BadPathError, SnnconvError

__all__ = ["atomic_write", "check_input", "check_outputs", "open_input", "read_input"]

PathLike = str | os.PathLike


def check_input(path: PathLike, what: str, error: type[SnnconvError]) -> Path:
    """``path`` if it names an existing regular file (symlinks followed); else ``error`` saying why.

    ``what`` completes "pass the path of ...", e.g. "an .onnx model".
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file; pass the path of {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}); pass the path of {what}") from None
    _require_regular(path, info.st_mode, what, error)
    return path


@contextmanager
def open_input(path: PathLike, what: str, error: type[SnnconvError], limit: int) -> Iterator[BinaryIO]:
    """``path`` opened for reading as a regular file of at most ``limit`` bytes, never blocking on it."""
    path = check_input(path, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}); pass the path of {what}") from None
    try:
        info = os.fstat(fd)
        _require_regular(path, info.st_mode, what, error)  # the path may have changed since check_input
        if info.st_size > limit:
            raise error(f"{path}: {info.st_size:,} bytes, more than {what} may be ({limit:,} bytes); "
                        "check the path, or split the file")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_input(path: PathLike, what: str, error: type[SnnconvError], limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (see ``open_input``)."""
    with open_input(path, what, error, limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise error(f"{path}: more than {limit:,} bytes, more than {what} may be; check the path")
    return data


def check_outputs(outputs: dict[str, PathLike | None], inputs: dict[str, PathLike | None] | None = None) -> None:
    """Refuse outputs that cannot be written, or that would write over an input or over each other.

    ``outputs`` and ``inputs`` map what a path is for ("the artifact (-o)") to the path;
    None entries are ignored. Raises ``BadPathError`` naming both paths and what to do.
    """
    inputs = {label: Path(p) for label, p in (inputs or {}).items() if p is not None}
    written: dict[str, Path] = {}
    for label, raw in outputs.items():
        if raw is None:
            continue
        path = Path(raw)
        if str(raw).endswith(("/", os.sep)) and not path.is_dir():  # Path drops the separator a folder name ends in
            raise BadPathError(f"{raw}: names a folder that does not exist; create it and give a file name inside it "
                               f"for {label}, e.g. {path / _example_name(label)}")
        _check_writable(path, label)
        for other_label, other in (*inputs.items(), *written.items()):
            if _same_file(path, other):
                raise BadPathError(f"{path}: {label} would write over {other_label} {other} (the same file); "
                                   f"choose another path for {label}")
        written[label] = path


def atomic_write(path: PathLike, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(temporary)`` to write a temporary file beside ``path``, then rename it to ``path``.

    On any failure (a full disk, Ctrl-C) the temporary file is removed and whatever was at
    ``path`` before is untouched.
    """
    path = Path(path)
    _check_writable(path, "the output")
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_folder(path))
    temporary = Path(name)
    try:
        os.close(handle)
        os.chmod(temporary, 0o666 & ~_umask())
        fill(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _require_regular(path: Path, mode: int, what: str, error: type[SnnconvError]) -> None:
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is {_kind(mode)}, not a regular file; pass the path of {what}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _example_name(label: str) -> str:
    """A file name that suits what ``label`` names (``out/out`` read as a typo of the folder)."""
    return next((name for key, name in (("artifact", "net.snn"), ("NIR", "net.nir"), ("HTML", "report.html"))
                 if key in label), "output")


def _check_writable(path: Path, label: str) -> None:
    """The folder exists and takes a new file; ``path`` is absent or a regular file."""
    folder = _folder(path)
    if not folder.is_dir():
        raise BadPathError(f"{path}: folder {folder} for {label} does not exist; create it or choose another path")
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise BadPathError(f"{path}: cannot be written ({exc.strerror or exc}); choose another path") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise BadPathError(f"{path}: is a folder; give a file name inside it for {label}, e.g. "
                           f"{path / _example_name(label)}")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise BadPathError(f"{path}: is {_kind(info.st_mode)}; give the path of a regular file for {label}")
    try:  # the one honest test of writability (root ignores permission bits, read-only mounts do not)
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise BadPathError(f"{path}: folder {folder} is not writable ({exc.strerror or exc}); "
                           f"choose another folder for {label}") from None
    os.close(handle)
    os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        first, second = a.stat(), b.stat()
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
