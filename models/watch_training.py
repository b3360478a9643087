"""Watch a network's SNN accuracy while it trains: ``snnconv.evaluate`` once per epoch.

A small CNN trains on the 500 bundled calibration digits; after every epoch the module
being trained is compiled for Loihi and run on the chip model at several T, on the 1,000
bundled test digits, next to its own (ANN) accuracy. Nothing is written to disk.

    python -m snnconv.models.watch_training --epochs 4

Takes about half a minute per epoch on 2 CPU cores (most of it the SNN simulation).
"""

from __future__ import annotations

import argparse
from importlib import resources

import numpy as np
import torch
from torch import nn

import snnconv


def bundled(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(resources.files("snnconv.models").joinpath(f"mnist_{name}.npz"), allow_pickle=False) as data:
        return torch.from_numpy(data["x"]), torch.from_numpy(data["y"])


def small_cnn() -> nn.Module:
    """Conv, ReLU and average pooling: every layer converts to IF neurons."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def train(epochs: int = 4, target: str = "loihi", timesteps=(8, 16, 32), seed: int = 0,
          test_samples: int = 1000, log=print) -> list:
    """Train for ``epochs`` epochs; after each, the ANN vs SNN evaluation (returned, one per epoch)."""
    torch.manual_seed(seed)
    train_x, train_y = bundled("calib")
    test_x, test_y = bundled("test")
    test_x, test_y = test_x[:test_samples], test_y[:test_samples]
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(train_x)).split(16):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
        model.eval()
        # calibration: training digits, so the test digits stay unseen until they are scored
        evaluation = snnconv.evaluate(model, (test_x, test_y), target=target, timesteps=timesteps,
                                      calibration=train_x)
        history.append(evaluation)
        log(f"epoch {epoch}\n{evaluation.render()}\n")
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--target", default="loihi")
    args = parser.parse_args()
    train(args.epochs, args.target)


if __name__ == "__main__":
    main()
