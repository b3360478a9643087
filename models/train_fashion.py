"""Train the bundled Fashion-MNIST models on the full training set and export them to ONNX.

Data: Fashion-MNIST (Xiao et al. 2017) as Debian's package ``dataset-fashion-mnist``
installs it, offline, under /usr/share/datasets/fashion-mnist (``apt-get install
dataset-fashion-mnist``; another folder with the same four ``*-idx?-ubyte.gz`` files can
be given with ``--data``): 60,000 training and 10,000 test images of 10 clothing classes.
Pixels are scaled to [0, 1]; nothing else. The networks train on all 60,000 training
images for 3 epochs (no augmentation: too few epochs to overfit). The widths are what two
shared CPU cores train in a few minutes.

Writes, beside this file:
  fashion_vgg.onnx     conv16-conv16-maxpool-conv32-conv32-maxpool-dense128-dense10, BN after
                       every conv                              (legacy exporter, opset 13, BN kept)
  fashion_resnet.onnx  stem conv 16, three residual basic blocks: 16->32 stride 2 (1x1 stride-2
                       projection + BN on the shortcut), 32->32, 32->64 stride 2; global average
                       pooling, dense                          (dynamo exporter, opset 18)
  fashion_mobilenet_v2.onnx  train_mobilenet.py's MobileNet-v2-style net (inverted residuals,
                       ReLU6, linear bottlenecks)             (legacy exporter, opset 13, BN kept)
  fashion_calib.npz    500 training images (50 per class, seeded draw) for calibration: x, y
  fashion_test.npz     1,000 of the 10,000 test images (100 per class, seeded draw): x, y
  fashion_models.json  per model: file, exporter, opset, parameters, accuracy (onnxruntime) on
                       the full test set and on the bundled 1,000, training seconds

(``models.json`` stays the MNIST catalog: its tests score every entry on the MNIST digits.)

Run: ``python models/train_fashion.py [--models vgg resnet mobilenet_v2]`` (measured: 6 minutes for the
VGG and 10 for the ResNet on 2 cores shared with other jobs, load average 7-11; less on
idle cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train import export, onnxruntime_accuracy  # the MNIST script's exporter and scorer
from train_mobilenet import MobileNetV2

DATA = Path("/usr/share/datasets/fashion-mnist")
SEED = 0
BATCH = 128


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (big-endian header: magic with the number of dimensions, then each size; uint8 data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion(folder: Path = DATA) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 60,000 training and 10,000 test images as float32 N x 1 x 28 x 28 in [0, 1], and int64 labels."""
    def images(name):
        return (read_idx(folder / name).astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)

    def labels(name):
        return read_idx(folder / name).astype(np.int64)

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def per_class_sample(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` indices of each class drawn with ``seed``, sorted (grouped by class)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.sort(rng.choice(np.flatnonzero(y == c), per_class, replace=False))
                           for c in range(10)])


def conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout)]


class VGG(nn.Sequential):
    def __init__(self):
        super().__init__(
            *conv_bn(1, 16), nn.ReLU(), *conv_bn(16, 16), nn.ReLU(), nn.MaxPool2d(2),
            *conv_bn(16, 32), nn.ReLU(), *conv_bn(32, 32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )


class BasicBlock(nn.Module):
    """ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x)); the shortcut is a 1x1 conv + BN where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, stride), nn.ReLU(), *conv_bn(cout, cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Sequential):
    def __init__(self):
        super().__init__(
            *conv_bn(1, 16), nn.ReLU(),
            BasicBlock(16, 32, stride=2),
            BasicBlock(32, 32),
            BasicBlock(32, 64, stride=2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
        )


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, log=print, after_epoch=None) -> nn.Module:
    """Adam with a one-cycle learning rate over ``epochs`` epochs of batches of 128; ``after_epoch(epoch)``
    is called after each, with the model in eval mode (``train_qcfs.py`` watches the SNN there)."""
    generator = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * ((len(xt) + BATCH - 1) // BATCH)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(xt), generator=generator)
        for first in range(0, len(xt), BATCH):
            batch = order[first:first + BATCH]
            loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        log(f"  epoch {epoch + 1}/{epochs}: loss {total / len(xt):.3f} ({time.perf_counter() - start:.0f} s)")
        if after_epoch is not None:
            model.eval()
            after_epoch(epoch + 1)
            model.train()
    return model.eval()


NETWORKS = {"vgg": (VGG, "legacy", 13, 3), "resnet": (ResNet, "dynamo", 18, 3),  # class, exporter, opset, epochs
            "mobilenet_v2": (MobileNetV2, "legacy", 13, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the four Fashion-MNIST .gz files")
    parser.add_argument("--models", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = load_fashion(args.data)
    calib, sample = per_class_sample(y_train, 50, SEED), per_class_sample(y_test, 100, SEED)
    np.savez_compressed(HERE / "fashion_calib.npz", x=x_train[calib], y=y_train[calib])
    np.savez_compressed(HERE / "fashion_test.npz", x=x_test[sample], y=y_test[sample])
    catalog_path = HERE / "fashion_models.json"
    catalog = json.loads(catalog_path.read_text()) if catalog_path.exists() else {}
    for name in args.models:
        cls, exporter, opset, epochs = NETWORKS[name]
        torch.manual_seed(SEED)
        print(f"{name}: training {epochs} epochs on {len(y_train)} images", flush=True)
        start = time.perf_counter()
        model = train(cls(), x_train, y_train, epochs, log=lambda line: print(line, flush=True))
        seconds = time.perf_counter() - start
        path = HERE / f"fashion_{name}.onnx"
        onnx.save(export(model, exporter, opset), path)
        full, bundled = onnxruntime_accuracy(path, x_test, y_test), onnxruntime_accuracy(path, x_test[sample],
                                                                                          y_test[sample])
        catalog[name] = {"file": path.name, "exporter": exporter, "opset": opset, "epochs": epochs,
                         "parameters": sum(p.numel() for p in model.parameters()),
                         "test_accuracy": round(full, 4), "test_images": len(y_test),
                         "sample_accuracy": round(bundled, 4), "sample_images": len(sample),
                         "training_seconds": round(seconds)}
        print(f"{name}: test accuracy {full:.2%} (10,000), {bundled:.2%} (bundled 1,000); {seconds:.0f} s; "
              f"{path.name}, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    catalog_path.write_text(json.dumps(dict(sorted(catalog.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
