"""Train the Fashion-MNIST VGG with QCFS activations and watch its SNN at T = L each epoch.

Conversion-aware training (``snnconv.training``): the VGG of ``train_fashion.py`` with
every ReLU replaced by QCFS with ``L`` levels (ceilings started at the 99.9th percentile
of the ReLU network's activations on a calibration batch), trained with the same recipe
(Adam, one-cycle learning rate, batches of 128) on the 60,000 training images of
Debian's ``dataset-fashion-mnist``. After each epoch ``snnconv.evaluate`` compiles the
module being trained for loihi2 (ceilings as scales, T = L) and runs its SNN on the
bundled test sample. Writes ``fashion_vgg_qcfs.onnx`` (ceilings and L in the file) and
adds its accuracies to ``fashion_models.json``.

    python models/train_qcfs.py [--levels 4] [--epochs 5]     # about 2 minutes per epoch on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_fashion import SEED, VGG, load_fashion, onnxruntime_accuracy, train

import snnconv
from snnconv import training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    x_train, y_train, x_test, y_test = load_fashion()
    calibration = np.load(HERE / "fashion_calib.npz")["x"]
    test = np.load(HERE / "fashion_test.npz")
    model = training.qcfs(VGG().eval(), args.levels, calibration=torch.from_numpy(calibration[:256]))
    history = []

    def watch(epoch: int) -> None:
        evaluation = snnconv.evaluate(model, (test["x"], test["y"]), target="loihi2", timesteps=(args.levels,),
                                      calibration=calibration, example=torch.zeros(1, 1, 28, 28))
        print(f"epoch {epoch}\n{evaluation.render()}\n", flush=True)
        history.append(evaluation.to_dict())

    train(model, x_train, y_train, args.epochs, after_epoch=watch)
    path = HERE / "fashion_vgg_qcfs.onnx"
    training.export(model.eval(), torch.zeros(1, 1, 28, 28), path)
    catalog_path = HERE / "fashion_models.json"
    catalog = json.loads(catalog_path.read_text())
    catalog["vgg_qcfs"] = {"file": path.name, "levels": args.levels, "epochs": args.epochs,
                           "test_accuracy": round(onnxruntime_accuracy(path, x_test, y_test), 4),
                           "test_images": len(y_test),
                           "sample_accuracy": round(onnxruntime_accuracy(path, test["x"], test["y"]), 4),
                           "sample_images": len(test["y"]), "snn_on_sample": history[-1]["snn"]}
    catalog_path.write_text(json.dumps(dict(sorted(catalog.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
