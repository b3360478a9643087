"""Input data for calibration and evaluation: arrays, tensors, iterables of batches, .npz files.

Everything goes through ``iter_batches``, which yields float32 numpy batches of at most
``batch_size`` samples, so a calibration set of any size streams in bounded memory.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from snnconv.errors import BadDataError

__all__ = ["as_array", "iter_batches", "load_npz"]


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
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
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
    """``x`` (float32) and optional ``y`` (int labels) from an .npz file, never unpickling."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise BadDataError(f"{path}: no array named 'x' (found {', '.join(archive.files) or 'none'})")
            x = as_array(archive["x"], f"{path}: x")
            y = archive["y"] if "y" in archive.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BadDataError(f"{path}: not a readable .npz file ({exc})") from None
    if len(x) == 0:
        raise BadDataError(f"{path}: x holds no samples (shape {x.shape})")
    if y is not None and (y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu"):
        raise BadDataError(f"{path}: y must be {len(x)} integer labels, got {y.dtype} of shape {y.shape}")
    return x, y
