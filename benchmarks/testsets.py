"""The official test sets the accuracy and peer benchmarks score on, read offline (no download).

Fashion-MNIST's 10,000 test images come from Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``, IDX files), preprocessed as
``models/train_fashion.py`` trained on them: float32 in [0, 1], N x 1 x 28 x 28. The
bundled ``fashion_test.npz`` is 1,000 of them, 100 per class; ``first`` takes the first N
of the official order (all ten classes, as the file has them), a fixed subset anyone can
reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnconv.models.train_fashion import read_idx  # the IDX reader the models were trained with

__all__ = ["FOLDERS", "official_test"]

FOLDERS = {"fashion": Path("/usr/share/datasets/fashion-mnist")}  # data set prefix -> its IDX folder


def official_test(prefix: str, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The official test images and labels of data set ``prefix`` (the first ``first`` of them, or all)."""
    if prefix not in FOLDERS:
        raise SystemExit(f"--test-set full: only {', '.join(FOLDERS)} has its official test set installed here")
    folder = FOLDERS[prefix]
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"{folder}: no t10k-images-idx3-ubyte.gz; apt-get install dataset-fashion-mnist")
    x = (read_idx(folder / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x[:first], y[:first]
