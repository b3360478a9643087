"""Input data for calibration and evaluation: arrays, tensors, iterables of batches, .npz files.

Everything goes through ``iter_batches``, which yields float32 numpy batches of at most
``batch_size`` samples, so a calibration set of any size streams in bounded memory.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from snnconv import files, options
from snnconv.errors import BadDataError

__all__ = ["MAX_ARRAY_BYTES", "as_array", "check_labels", "iter_batches", "load_npz"]

MAX_FILE_BYTES = 1 << 34  # an .npz file (compressed) larger than 16 GiB is refused unread
MAX_ARRAY_BYTES = 1 << 30  # one array of an .npz, as float32: 1 GiB (CIFAR-10's training set is 614 MB)
NPY_MAGIC = b"\x93NUMPY"


def as_array(batch, where: str) -> np.ndarray:
    """One batch (array, tensor, or (x, y) pair) as a checked float32 array; errors name ``where``."""
    if isinstance(batch, (tuple, list)) and batch and not np.isscalar(batch[0]):
        batch = batch[0]  # (x, y) pairs from a DataLoader: the inputs
    if hasattr(batch, "detach"):
        batch = batch.detach().cpu().numpy()
    array = np.asarray(batch)
    if array.dtype.kind not in "fiu":
        raise BadDataError(f"{where}: dtype {array.dtype} is not numeric; pass float32 inputs")
    array = array.astype(np.float32, copy=False)
    if array.ndim < 2:
        raise BadDataError(f"{where}: shape {array.shape} has no batch axis; pass (N, ...) arrays")
    if not np.all(np.isfinite(array)):
        raise BadDataError(f"{where}: holds NaN or infinite values")
    return array


def iter_batches(data, batch_size: int = 256, what: str = "data") -> Iterator[np.ndarray]:
    """Batches of ``data`` (array, tensor, or iterable of arrays/tensors/(x, y) pairs).

    Every batch but the last has ``batch_size`` samples: large arrays are sliced, and an
    iterable's small batches are joined (a DataLoader's 32 become 256), so the consumer
    pays its per-batch cost once per ``batch_size`` samples while memory holds at most
    about two batches, however long the stream.
    """
    batch_size = options.positive(batch_size, "batch_size")
    if hasattr(data, "shape") or isinstance(data, np.ndarray):
        array = as_array(data, what)
        if len(array) == 0:
            raise BadDataError(f"{what}: has no samples")
        for start in range(0, len(array), batch_size):
            yield array[start:start + batch_size]
        return
    if not isinstance(data, Iterable):
        raise BadDataError(f"{what}: expected an array, a tensor or an iterable of batches, got {type(data).__name__}")
    pending: list[np.ndarray] = []
    held, count, sample_shape = 0, 0, None
    for index, batch in enumerate(data):
        array = as_array(batch, f"{what}, batch {index}")
        if sample_shape is not None and array.shape[1:] != sample_shape:
            raise BadDataError(f"{what}, batch {index}: samples of shape {array.shape[1:]}, earlier batches "
                               f"{sample_shape}; every batch must hold samples of one shape")
        sample_shape = array.shape[1:]
        count += len(array)
        pending.append(array)
        held += len(array)
        while held >= batch_size:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            yield joined[:batch_size]
            rest = joined[batch_size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)
    if count == 0:
        raise BadDataError(f"{what}: has no samples")


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (float32) and optional ``y`` (int labels) from an .npz file, never unpickling.

    The file is opened as ``snnconv.files`` opens every input (a regular file, without
    blocking); each array's .npy header is read before the array, so an array that
    declares more than ``MAX_ARRAY_BYTES``, or more than its member holds, is refused
    before anything of its declared size is allocated.
    """
    path = Path(path)
    with files.open_input(path, "an .npz file with x (and y)", BadDataError, MAX_FILE_BYTES) as handle:
        magic = handle.read(len(NPY_MAGIC))
        if magic == NPY_MAGIC:
            raise BadDataError(f"{path}: is a single .npy array; snnconv reads .npz files holding x (and labels y): "
                               "np.savez(path, x=x, y=y)")
        handle.seek(0)
        try:
            with zipfile.ZipFile(handle) as archive:
                names = {name.removesuffix(".npy"): name for name in archive.namelist()}
                if "x" not in names:
                    raise BadDataError(f"{path}: no array named 'x' (found {', '.join(names) or 'none'})")
                x = as_array(_member(archive, names["x"], path), f"{path}: x")
                y = _member(archive, names["y"], path) if "y" in names else None
        except (OSError, ValueError, SyntaxError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
                zlib.error) as exc:  # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
            raise BadDataError(f"{path}: not a readable .npz file ({exc})") from exc
    if len(x) == 0:
        raise BadDataError(f"{path}: x holds no samples (shape {x.shape})")
    if y is not None and (y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu"):
        raise BadDataError(f"{path}: y must be {len(x)} integer labels, got {y.dtype} of shape {y.shape}")
    return x, y


def _member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """One .npy member, its header checked before its data is read."""
    info = archive.getinfo(name)
    with archive.open(info) as stream:
        version = npy_format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise BadDataError(f"{path}: {name} is not a plain .npy array (format {version})")
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        offset = stream.tell()
    if dtype.hasobject or dtype.kind not in "biuf":
        raise BadDataError(f"{path}: {name} has dtype {dtype}, which is not numeric; save float32 inputs and "
                           "integer labels (snnconv never unpickles)")
    declared = math.prod(shape) * max(dtype.itemsize, 4)  # as float32, what x becomes
    if declared > MAX_ARRAY_BYTES:
        raise BadDataError(f"{path}: {name} declares shape {shape} ({declared:,} bytes), more than snnconv loads "
                           f"at once ({MAX_ARRAY_BYTES:,}); split the data into several files, or pass batches "
                           "through the Python API")
    if info.file_size < offset + math.prod(shape) * dtype.itemsize:
        raise BadDataError(f"{path}: {name} declares shape {shape} but its member holds only {info.file_size:,} "
                           "bytes; the file is damaged")
    with archive.open(info) as stream:
        return npy_format.read_array(stream, allow_pickle=False)


def check_labels(y: np.ndarray | None, classes: int, where: str) -> None:
    """Refuse labels that are not class indices of a network with ``classes`` outputs (accuracy would be 0)."""
    if y is None or not len(y):
        return
    low, high = int(np.min(y)), int(np.max(y))
    if low < 0 or high >= classes:
        raise BadDataError(f"{where}: labels range over {low}..{high}, but the network has {classes} outputs "
                           f"(classes 0..{classes - 1}); pass class indices, not one-hot or shifted labels")


def accuracy(outputs: np.ndarray, labels) -> float:
    """The fraction of samples whose largest output is their label (class indices, one per sample)."""
    labels, predictions = np.asarray(labels), outputs.argmax(axis=1)
    if labels.shape != predictions.shape or labels.dtype.kind not in "iu":
        raise BadDataError(f"labels: expected {len(predictions)} integer class indices, got {labels.dtype} "
                           f"of shape {labels.shape}")
    check_labels(labels, outputs.shape[1], "labels")
    return float((predictions == labels).mean())
