"""Fine-tune the Fashion-MNIST VGG with QCFS activations and watch its SNN at T = L each epoch.

Conversion-aware training (``snnconv.training``): the VGG of ``train_fashion.py`` with
every ReLU replaced by QCFS with ``L`` levels, trained on the 60,000 training images of
Debian's ``dataset-fashion-mnist``. After each epoch ``snnconv.evaluate`` compiles the
module being trained for loihi2 (ceilings as scales, T = L) and runs its SNN on the
bundled test sample. Writes ``fashion_vgg_qcfs.onnx`` (ceilings and L in the file; ``--output``
another file) and, for a file in ``models/``, adds its accuracies to ``fashion_models.json``
under its name. ``fashion_vgg_qcfs_finetuned.onnx`` is ``--epochs 3 --percentile 99``.

The recipe, and why:
- Start from the plain ReLU VGG's trained weights (``fashion_vgg.onnx``, ``--init relu``)
  instead of random ones, and start each ceiling at the 99.9th percentile of that
  trained net's ReLU outputs on the calibration sample (the scale a post-training
  converter would pick). The first version trained from random weights with ceilings
  taken from the random net's activations: the ceilings started far from where the
  trained activations end, and 5 epochs recovered to 1.5 points below the ReLU net.
  Fine-tuning only has to learn where to round; Bu et al. train from scratch for
  hundreds of epochs, which two shared CPU cores cannot give.
- A peak learning rate of 1e-3 (a third of the from-scratch 3e-3) with the one-cycle
  schedule: its warm-up keeps the first steps from undoing the pretrained weights
  while the ceilings settle, its anneal ends at a low rate where rounding is stable.
- ``--sparsity w`` adds ``w`` times the expected synaptic operations per inference over
  the ANN's MACs (``SynapticCost``) to the loss: fewer nonzero activations, fewer messages
  for graded spikes. Off by default.
- ``L = 4``: the SNN floor is at T = 4, and a QCFS layer of ``L`` levels is exactly an IF
  neuron's rate over ``T = L`` steps (``snnconv.training``), so T = L leaves no
  quantization mismatch; the 5 values 0..4 also fit a 3-bit graded spike, which then
  reproduces the QCFS ANN in one step (``benchmarks/codings_full.py``).

Seeded (``SEED`` of ``train_fashion.py``): the same command gives the same weights on the
same machine and torch version.

    python models/train_qcfs.py [--levels 4] [--epochs 2] [--lr 1e-3] [--init relu|scratch] [--sparsity 0]
    # about 2 minutes per epoch plus the SNN check on 2 quiet cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_fashion import BATCH, SEED, VGG, load_fashion, onnxruntime_accuracy

import snnconv
from snnconv import ann_cost, training


def relu_weights(model: nn.Module, path: Path) -> nn.Module:
    """``model`` with the trained weights of the plain VGG's ONNX file (its initializers carry the module's
    state-dict names: the legacy exporter keeps BN), in place; ``KeyError`` naming any that is missing."""
    found = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in found and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"{path.name} lacks {missing}: retrain it with models/train_fashion.py")
    model.load_state_dict({k: found.get(k, v) for k, v in state.items()})
    return model


def fan_outs(model: nn.Sequential) -> dict[nn.Module, int]:
    """Per QCFS layer of a sequential ``model``, the synapses each of its neurons drives in the next weighted layer
    (a conv's ``out channels x kernel area``, a dense layer's outputs): what one message costs there."""
    found, pending = {}, []
    for module in model:
        if isinstance(module, training.QCFS):
            pending.append(module)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_out = module.out_channels * int(np.prod(module.kernel_size)) if isinstance(module, nn.Conv2d) \
                else module.out_features
            found.update({layer: fan_out for layer in pending})
            pending = []
    return found


class SynapticCost:
    """The expected synaptic operations of a batch, as a differentiable penalty: per QCFS layer, its outputs in
    level units (``q L / lambda``, 0..L: a graded spike's payload, a rate-coded neuron's spikes in T = L) summed
    over its neurons, times the neuron's fan-out, per sample, over the ANN's MACs.

    An L1 proxy for messages x fan-out (Sorbaro et al. 2020, "Optimizing the energy consumption of spiking
    neural networks for neuromorphic applications", Front. Neurosci.: a synaptic-operation penalty in the
    loss): the straight-through gradient pushes small activations to the zero level, where a neuron sends
    nothing. ``weight`` 0 turns it off."""

    def __init__(self, model: nn.Sequential, macs: float, weight: float):
        self.weight, self.macs, self.terms = weight, macs, []
        self.hooks = [layer.register_forward_hook(self._record(fan_out)) for layer, fan_out in fan_outs(model).items()
                      ] if weight else []

    def _record(self, fan_out: int):
        def hook(layer, _, out):
            if layer.training:
                self.terms.append(fan_out * (out * layer.levels / layer._ceiling()).flatten(1).sum(1).mean())
        return hook

    def pop(self) -> torch.Tensor:
        """The penalty of the batch just run (0 without a weight), and forget it."""
        total = self.weight * torch.stack(self.terms).sum() / self.macs if self.terms else torch.zeros(())
        self.terms = []
        return total


def finetune(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, after_epoch,
             cost: SynapticCost) -> nn.Module:
    """Adam with a one-cycle learning rate peaking at ``lr`` over ``epochs`` epochs of batches of 128, seeded,
    on cross-entropy plus ``cost``; ``after_epoch(epoch)`` is called after each with the model in eval mode."""
    generator = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                   total_steps=epochs * ((len(xt) + BATCH - 1) // BATCH))
    for epoch in range(epochs):
        model.train()
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(xt), generator=generator)
        for first in range(0, len(xt), BATCH):
            batch = order[first:first + BATCH]
            loss = nn.functional.cross_entropy(model(xt[batch]), yt[batch]) + cost.pop()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(xt):.3f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
        model.eval()
        after_epoch(epoch + 1)
    return model.eval()


def torch_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """The QCFS ANN itself (activations quantized to L levels), as trained: what the SNN at T = L should match."""
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(x[i:i + 1000])) for i in range(0, len(x), 1000)])
    return float((logits.argmax(1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--init", choices=("relu", "scratch"), default="relu",
                        help="start from fashion_vgg.onnx's weights (relu) or random ones (scratch)")
    parser.add_argument("--sparsity", type=float, default=0.0,
                        help="weight of the synaptic-operation penalty (SynapticCost; 0: none)")
    parser.add_argument("--percentile", type=float, default=99.9,
                        help="each ceiling starts at this percentile of the ReLU net's outputs on calibration data")
    parser.add_argument("--train-images", type=int, default=60_000,
                        help="fine-tune on this many training images (a seeded draw; all 60,000 by default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=HERE / "fashion_vgg_qcfs.onnx")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    x_train, y_train, x_test, y_test = load_fashion()
    chosen = np.sort(np.random.default_rng(SEED).permutation(len(y_train))[:args.train_images])
    x_train, y_train = x_train[chosen], y_train[chosen]
    calibration = np.load(HERE / "fashion_calib.npz")["x"]
    test = np.load(HERE / "fashion_test.npz")
    model = VGG().eval()
    if args.init == "relu":
        relu_weights(model, HERE / "fashion_vgg.onnx")
    model = training.qcfs(model, args.levels, calibration=torch.from_numpy(calibration[:256]),
                         percentile=args.percentile)
    history = []

    def watch(epoch: int) -> None:
        training.export(model, torch.zeros(1, 1, 28, 28), args.output)  # each epoch's weights kept before the check
        evaluation = snnconv.evaluate(model, (test["x"], test["y"]), target="loihi2", timesteps=(args.levels,),
                                      calibration=calibration, example=torch.zeros(1, 1, 28, 28))
        print(f"epoch {epoch}\n{evaluation.render()}\n", flush=True)
        history.append(evaluation.to_dict())

    start = time.perf_counter()
    macs = ann_cost.macs(snnconv.load_onnx(str(HERE / "fashion_vgg.onnx")))  # the same network's, 4.8 M
    finetune(model, x_train, y_train, args.epochs, args.lr, watch, SynapticCost(model, macs, args.sparsity))
    seconds = time.perf_counter() - start
    training.export(model.eval(), torch.zeros(1, 1, 28, 28), args.output)
    entry = {"file": args.output.name, "levels": args.levels, "init": args.init, "epochs": args.epochs,
             "peak_lr": args.lr, "sparsity": args.sparsity,
             "train_images": len(y_train), "initial_percentile": args.percentile, "qcfs_test_accuracy": round(torch_accuracy(model, x_test, y_test), 4),
             "test_accuracy": round(onnxruntime_accuracy(args.output, x_test, y_test), 4),
             "test_images": len(y_test),
             "sample_accuracy": round(onnxruntime_accuracy(args.output, test["x"], test["y"]), 4),
             "sample_images": len(test["y"]), "snn_on_sample": history[-1]["snn"],
             "ceilings": [round(float(m._ceiling()), 4) for m in model.modules() if isinstance(m, training.QCFS)],
             "training_seconds": round(seconds)}
    print(json.dumps(entry, indent=2), flush=True)
    if args.output.resolve().parent == HERE.resolve():  # a bundled model: catalogued under its name
        catalog_path = HERE / "fashion_models.json"
        catalog = json.loads(catalog_path.read_text())
        catalog[args.output.stem.removeprefix("fashion_")] = entry
        catalog_path.write_text(json.dumps(dict(sorted(catalog.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
