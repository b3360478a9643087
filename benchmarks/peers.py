"""SNN accuracy of snnconv vs. SpikingJelly's ann2snn and Sinabs on the same trained networks.

Every method converts the bundled ONNX models (models/mnist_{mlp,cnn,resnet}.onnx, and
models/fashion_{vgg,resnet}.onnx trained on Fashion-MNIST) with the same 500 calibration
images of the model's data set (models/mnist_calib.npz, models/fashion_calib.npz) and is
scored on the same 1,000 test images (models/mnist_test.npz, models/fashion_test.npz) at
T = 4 .. 128, with constant-current input (the analog image every step), subtractive-reset IF neurons and the summed output layer as the readout.
The peers get a torch ``nn.Module`` built from snnconv's IR of the ANN (checked against
``snnconv.ann.evaluate`` to 1e-4 first); snnconv compiles from the ONNX file itself, per T.

- SpikingJelly: ``ann2snn.Converter(RateCodingRecipe(DataLoader(calibration), ...))``, run in
  single-step mode, with its settings swept (``SJ_SETTINGS``).
- Sinabs: BN folded into the convolutions, then layer-wise data-based scaling (Rueckauer et
  al. 2017: ``W *= lam_in / lam_out``, ``b /= lam_out``, ``lam`` = a percentile of the
  positive activations of the ReLU a layer feeds; residual skips rescaled to the add's
  ``lam``), then ``sinabs.from_torch.from_model`` with IAF neurons, ``MembraneSubtract``
  reset and threshold 1, with its settings swept (``SINABS_SETTINGS``).
- snnconv: ``convert(load_onnx(path), calibration, timesteps=T)`` (its defaults: tuned
  percentile and initial membranes) and ``simulate(graph, x, T)``.

Each peer setting is scored without labels on the first 256 calibration digits, as snnconv
tunes itself: the SNN's agreement with the ANN's predictions. The setting with the best
mean agreement over T is run on the test digits, and so is, at each T where another one
agrees better, that one. The peers' conversions do not depend on T, so each is simulated
once for 128 steps and read at every T (the state after t steps of a 128-step run is that
of a t-step run).

Install (a separate venv: the peers' declared dependencies pull a CUDA build of torch, so
they are installed without them, and their real imports by hand; sinabs' ``samna`` is left
out, its core does not need it)::

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.13.0
    /work/peers-venv/bin/pip install --no-deps spikingjelly==2.0.0 sinabs==3.1.3 nir==1.0.8 nirtorch==2.6
    /work/peers-venv/bin/pip install numpy onnx networkx scipy tqdm pbr h5py loguru requests matplotlib
    /work/peers-venv/bin/pip install --no-deps -e .

(the middle two lines pinned: ``pip install --no-deps -r benchmarks/requirements-peers.txt``).
Run: ``/work/peers-venv/bin/python benchmarks/peers.py`` from the repository root (about 15
minutes on 2 cores; ``--models`` and ``--skip-snnconv`` for quicker partial runs, which
write nothing).
Writes benchmarks/results/peers.json and peers.md.

Fashion-MNIST on its official test set (``testsets.py``; ``--test-samples N``: the first N of
the 10,000), T = 4 .. 64 (the range issue 18 asks about), the peers exactly as above, and
snnconv's row read from ``accuracy.py --target loihi2`` run on the same images
(``--snnconv-from``: compiled per T for the chip, integer chip model), written to
``--out`` (benchmarks/results/NAME.{json,md})::

    /work/peers-venv/bin/python benchmarks/peers.py --models fashion_vgg fashion_resnet \
        --test-set full --test-samples 2000 --timesteps 4 8 16 32 64 \
        --snnconv-from benchmarks/results/accuracy_fashion_loihi2.json --out peers_fashion
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import time
import traceback
import warnings
from importlib import metadata, resources
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # SpikingJelly's calibration progress bar
# OpenMP threads that spin while they wait make torch's small ops 50x slower when another job
# shares the 2 cores (measured: 7.8 ms instead of 0.16 ms for a 300k-element multiply). Sleeping
# waits change no result; they are set before torch loads, for every method alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from testsets import official_test
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import snnconv
from snnconv import ann
from snnconv.ir import layers as L
from snnconv.pipeline import convert
from snnconv.snn import simulate

# model -> (ONNX file, data set: the prefix of its bundled <prefix>_calib.npz and <prefix>_test.npz)
MODELS = {"mlp": ("mnist_mlp.onnx", "mnist"), "cnn": ("mnist_cnn.onnx", "mnist"),
          "resnet": ("mnist_resnet.onnx", "mnist"), "fashion_vgg": ("fashion_vgg.onnx", "fashion"),
          "fashion_resnet": ("fashion_resnet.onnx", "fashion")}
TIMESTEPS = (4, 8, 16, 32, 64, 128)
RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "numpy", "spikingjelly", "sinabs", "nir", "nirtorch", "onnx", "snnconv")

SCREEN_DIGITS = 256  # calibration digits on which each peer setting is scored (agreement with the ANN)

# SpikingJelly RateCodingRecipe options: (mode, channel_wise, half_threshold, pre_spike_maxpool)
SJ_SETTINGS = [(m, False, False, False) for m in ("max", "99.99%", "99.9%", 0.9)] + [
    ("99.9%", True, False, False), ("99.99%", True, True, False), ("99.9%", True, True, False)]
SJ_MAXPOOL_SETTINGS = [("99.99%", True, True, True), ("99.9%", True, True, True)]  # only with max pooling
# Sinabs: (percentile of positive ReLU activations, min_v_mem, spike_fn, max pooling)
SINABS_SETTINGS = [(p, None, "MultiSpike", "torch") for p in (100.0, 99.99, 99.9)] + [
    (99.9, -1.0, "MultiSpike", "torch"), (99.9, None, "SingleSpike", "torch")]
SINABS_MAXPOOL_SETTINGS = [(p, None, "MultiSpike", "spiking") for p in (99.99, 99.9)]  # only with max pooling


# ---------------------------------------------------------------- IR -> torch.nn.Module


class IRNet(nn.Module):
    """The IR graph as standard torch modules, evaluated in graph order (fx-traceable).

    Adds are ``+`` in ``forward``, each input times a constant factor (1 unless the Sinabs
    scaling sets it). The result is the output layer's input (the logits): a Softmax the
    source model may apply does not change the argmax, and summing it over time would.
    With ``fold_bn``, a BatchNorm after a convolution is folded into it.
    """

    def __init__(self, graph: snnconv.Graph, fold_bn: bool = False):
        super().__init__()
        self.mods = nn.ModuleDict()
        self.plan: list[tuple[str, str, tuple[str, ...]]] = []  # (name, kind, inputs)
        self.key = {layer.name: f"m{i}_{re.sub(r'[^0-9A-Za-z_]', '_', layer.name)}" for i, layer in enumerate(graph)}
        self.factors: dict[str, list[float]] = {}
        self.input_name, self.logits = graph.input.name, graph.output.inputs[0]
        alias: dict[str, str] = {}
        for layer in graph:
            ins = tuple(alias.get(src, src) for src in layer.inputs)
            if isinstance(layer, (L.Input, L.Output)):
                continue
            if fold_bn and isinstance(layer, L.BatchNorm) and isinstance(graph[ins[0]], L.Conv) \
                    and len(graph.consumers(ins[0])) == 1:
                conv = self.mods[self.key[ins[0]]]
                self.mods[self.key[ins[0]]] = fuse_conv_bn_eval(conv.eval(), _batchnorm(layer).eval())
                alias[layer.name] = ins[0]
                continue
            if isinstance(layer, L.Add):
                self.plan.append((layer.name, "add", ins))
                self.factors[layer.name] = [1.0] * len(ins)
            else:
                self.mods[self.key[layer.name]] = _module(layer)
                self.plan.append((layer.name, "module", ins))
        self.logits = alias.get(self.logits, self.logits)
        self.eval()

    def forward(self, x):
        values = {self.input_name: x}
        for name, kind, ins in self.plan:
            if kind == "add":
                terms = [values[src] if f == 1.0 else values[src] * f for src, f in zip(ins, self.factors[name])]
                out = terms[0]
                for term in terms[1:]:
                    out = out + term
                values[name] = out
            else:
                values[name] = self.mods[self.key[name]](values[ins[0]])
        return values[self.logits]

    def module(self, name: str) -> nn.Module:
        return self.mods[self.key[name]]


def _symmetric(pads: tuple[int, int, int, int], what: str) -> tuple[int, int]:
    top, left, bottom, right = pads
    if (top, left) != (bottom, right):
        raise NotImplementedError(f"asymmetric {what} padding {pads}")
    return top, left


def _batchnorm(layer: L.BatchNorm) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(len(layer.gamma), eps=layer.eps)
    for name, array in (("weight", layer.gamma), ("bias", layer.beta), ("running_mean", layer.mean),
                        ("running_var", layer.var)):
        getattr(bn, name).data = torch.tensor(np.asarray(array, np.float32))
    return bn


def _module(layer: L.Layer) -> nn.Module:
    """A standard torch module computing ``layer`` (the kinds the bundled models use)."""
    param = lambda a: nn.Parameter(torch.tensor(np.asarray(a, np.float32)))  # noqa: E731
    if isinstance(layer, L.Conv):
        if layer.bias.ndim != 1:
            raise NotImplementedError("per-neuron conv bias")
        out_c, in_per_group, kh, kw = layer.weight.shape
        conv = nn.Conv2d(in_per_group * layer.groups, out_c, (kh, kw), layer.stride, _symmetric(layer.pads, "conv"),
                         layer.dilation, layer.groups)
        conv.weight, conv.bias = param(layer.weight), param(layer.bias)
        return conv
    if isinstance(layer, L.Dense):
        dense = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        dense.weight, dense.bias = param(layer.weight), param(layer.bias)
        return dense
    if isinstance(layer, L.BatchNorm):
        return _batchnorm(layer)
    if isinstance(layer, L.ReLU) and layer.max_value is None:
        return nn.ReLU()
    if isinstance(layer, L.Pool) and layer.mode == "max":
        return nn.MaxPool2d(layer.kernel, layer.stride, _symmetric(layer.pads, "pool"), layer.dilation,
                            ceil_mode=layer.ceil_mode)
    if isinstance(layer, L.Pool) and layer.dilation == (1, 1):
        return nn.AvgPool2d(layer.kernel, layer.stride, _symmetric(layer.pads, "pool"), layer.ceil_mode,
                            layer.count_include_pad)
    if isinstance(layer, L.Flatten):
        return nn.Flatten()
    if isinstance(layer, L.Pad):
        top, left, bottom, right = layer.pads
        return nn.ZeroPad2d((left, right, top, bottom))
    raise NotImplementedError(f"no torch module for {layer.kind} layer {layer.name!r}")


def check_module(net: IRNet, graph: snnconv.Graph, x: np.ndarray, what: str, tol: float = 1e-4) -> float:
    """Largest |torch - snnconv.ann| of the logits (the output layer's input); raises above ``tol``."""
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    logits = graph.output.inputs[0]
    want = ann.activations(graph, x, [logits])[logits]
    error = float(np.abs(got - want).max())
    if error > tol:
        raise AssertionError(f"{what}: torch module differs from snnconv.ann by {error:.2e} (> {tol})")
    return error


# ---------------------------------------------------------------- SpikingJelly


def spikingjelly(net: IRNet, calibration: np.ndarray, setting: tuple) -> nn.Module:
    from spikingjelly.activation_based import ann2snn
    from torch.utils.data import DataLoader, TensorDataset

    mode, channel_wise, half, pre_maxpool = setting
    loader = DataLoader(TensorDataset(torch.from_numpy(calibration)), batch_size=len(calibration))  # one batch:
    recipe = ann2snn.RateCodingRecipe(loader, mode=mode, channel_wise=channel_wise, half_threshold=half,  # exact
                                      pre_spike_maxpool=pre_maxpool)  # statistics, no running average
    return ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(net))


def run_spikingjelly(snn: nn.Module, x: np.ndarray, steps: int, batch: int = 500) -> np.ndarray:
    """Predictions (len(TIMESTEPS), N) of a single-step SpikingJelly network: summed output."""
    from spikingjelly.activation_based import functional

    predictions = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start:start + batch])
            functional.reset_net(snn)
            total, rows = 0.0, []
            for t in range(1, steps + 1):
                total = total + snn(xb)
                if t in TIMESTEPS:
                    rows.append(total.argmax(1).numpy())
            predictions.append(np.stack(rows))
    functional.reset_net(snn)
    return np.concatenate(predictions, axis=1)


# ---------------------------------------------------------------- Sinabs


def _scale_of(graph: snnconv.Graph, name: str) -> str | None:
    """The ReLU whose activations set the scale of tensor ``name`` (through BN, pools, adds)."""
    current = graph[name]
    while not isinstance(current, L.ReLU):
        readers = graph.consumers(current.name)
        if len(readers) != 1 or not isinstance(readers[0], (L.ReLU, L.BatchNorm, L.Pool, L.Pad, L.Add)):
            return None
        current = readers[0]
    return current.name


def scaled_for_sinabs(folded: IRNet, graph: snnconv.Graph, calibration: np.ndarray, percentile: float) -> IRNet:
    """Layer-wise data-based weight normalization of the BN-folded network (Rueckauer/Diehl)."""
    net = copy.deepcopy(folded)
    relus = [layer.name for layer in graph if isinstance(layer, L.ReLU)]
    positive = {name: [] for name in relus}
    hooks = [net.module(name).register_forward_hook(
        lambda m, i, out, name=name: positive[name].append(out[out > 0].numpy())) for name in relus]
    with torch.no_grad():
        for start in range(0, len(calibration), 100):
            net(torch.from_numpy(calibration[start:start + 100]))
    for hook in hooks:
        hook.remove()
    lam = {name: float(np.percentile(np.concatenate(v), percentile)) for name, v in positive.items()}
    scale = {graph.input.name: 1.0}  # pixels are already in [0, 1]
    with torch.no_grad():
        for layer in graph:
            if isinstance(layer, (L.Conv, L.Dense)):
                anchor = _scale_of(graph, layer.name)
                scale[layer.name] = lam[anchor] if anchor else 1.0  # the logits keep their scale
                module = net.module(layer.name)
                module.weight *= scale[layer.inputs[0]] / scale[layer.name]
                module.bias /= scale[layer.name]
            elif isinstance(layer, L.Add):
                scale[layer.name] = lam[_scale_of(graph, layer.name)]
                net.factors[layer.name] = [scale[src] / scale[layer.name] for src in layer.inputs]
            elif not isinstance(layer, L.Input):
                scale[layer.name] = scale[layer.inputs[0]]
    return net


class SpikingMaxPool(nn.Module):
    """sinabs.layers.SpikingMaxPooling2dLayer (time on axis 0, no batch axis) on a (batch*time, C, H, W) tensor."""

    def __init__(self, pool: nn.MaxPool2d, steps: int):
        super().__init__()
        import sinabs.layers as sl

        self.steps = steps
        self.pool = sl.SpikingMaxPooling2dLayer(pool.kernel_size, pool.stride)

    def forward(self, x):
        bt, c, h, w = x.shape
        per_time = x.reshape(bt // self.steps, self.steps, c, h, w).transpose(0, 1).reshape(self.steps, -1, h, w)
        out = self.pool(per_time)
        return out.reshape(self.steps, bt // self.steps, c, *out.shape[-2:]).transpose(0, 1).reshape(bt, c,
                                                                                                      *out.shape[-2:])


def sinabs_network(scaled: IRNet, setting: tuple, steps: int) -> nn.Module:
    import sinabs.activation as sa
    from sinabs.from_torch import from_model

    _, min_v_mem, spike_fn, max_pool = setting
    net = copy.deepcopy(scaled)
    if max_pool == "spiking":
        for key, module in net.mods.items():
            if isinstance(module, nn.MaxPool2d):
                net.mods[key] = SpikingMaxPool(module, steps)
    return from_model(net, spike_threshold=torch.tensor(1.0), spike_fn=getattr(sa, spike_fn),
                      reset_fn=sa.MembraneSubtract(), min_v_mem=min_v_mem, num_timesteps=steps).spiking_model


def run_sinabs(snn: nn.Module, x: np.ndarray, steps: int, neurons: int) -> np.ndarray:
    """Predictions (len(TIMESTEPS), N): the input repeated ``steps`` times, output summed over time."""
    batch = max(1, int(4e7 // (steps * neurons)))  # about 160 MB per activation tensor
    index = np.array(TIMESTEPS) - 1
    predictions = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start:start + batch])
            for module in snn.modules():
                if hasattr(module, "reset_states"):
                    module.reset_states()
            repeated = xb.unsqueeze(1).expand(-1, steps, *xb.shape[1:]).reshape(-1, *xb.shape[1:])
            out = snn(repeated).reshape(len(xb), steps, -1).cumsum(1)
            predictions.append(out[:, index].argmax(-1).numpy().T)
    return np.concatenate(predictions, axis=1)


# ---------------------------------------------------------------- the sweep


def bundled(name: str):
    return np.load(resources.files("snnconv.models").joinpath(name), allow_pickle=False)


def _accuracies(predictions: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {str(t): float((p == y).mean()) for t, p in zip(TIMESTEPS, predictions)}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _label(peer: str, setting: tuple) -> str:
    if peer == "spikingjelly":
        mode, channel_wise, half, pre_maxpool = setting
        text = f"mode={mode!r} {'channel-wise' if channel_wise else 'layer-wise'}"
        return text + (" half-threshold" if half else "") + (" pre-spike max pool" if pre_maxpool else "")
    percentile, min_v_mem, spike_fn, max_pool = setting
    return (f"p{percentile:g} layer-wise, min_v_mem={min_v_mem}, {spike_fn}"
            + (", sinabs SpikingMaxPooling2dLayer" if max_pool == "spiking" else ""))


def sweep_peer(peer: str, settings: list[tuple], make, run, screen: tuple, test: tuple) -> dict:
    """Screen every setting on calibration digits; run the best ones (or report the error) on the test digits.

    ``screen`` = (digits, the ANN's predictions on them): a setting's score is its SNN's
    agreement with the ANN (no labels), as snnconv's own tuning does. "best" is the setting
    with the best mean agreement over T; "per_t" takes, at each T, the setting that agrees
    best at that T (ties go to "best"), as snnconv tunes for each T.
    """
    trials, screened = [], []
    for setting in settings:
        start = time.perf_counter()
        trial = {"setting": _label(peer, setting)}
        try:
            trial["calibration_agreement"] = _accuracies(run(make(setting), screen[0]), screen[1])
            screened.append((setting, trial))
        except Exception as exc:  # noqa: BLE001 - a peer that cannot convert is a result
            trial["error"], trial["traceback"] = _error(exc), traceback.format_exc(limit=-3)
        trial["seconds"] = round(time.perf_counter() - start, 1)
        trials.append(trial)
        print(f"  {peer}: {trial['setting']}: {trial.get('calibration_agreement') or trial['error']} "
              f"({trial['seconds']} s)", flush=True)
    if not screened:
        return {"best": None, "per_t": None, "error": trials[0]["error"], "trials": trials}
    overall = max(screened, key=lambda s: np.mean(list(s[1]["calibration_agreement"].values())))
    tested: dict[str, dict] = {}

    def on_test(setting, trial) -> dict:
        if trial["setting"] not in tested:
            tested[trial["setting"]] = _accuracies(run(make(setting), test[0]), test[1])
            print(f"  {peer} on the test digits: {trial['setting']}: {tested[trial['setting']]}", flush=True)
        return tested[trial["setting"]]

    best = dict(overall[1], snn=on_test(*overall))
    per_t = {}
    for t in map(str, TIMESTEPS):
        top = max(s[1]["calibration_agreement"][t] for s in screened)
        setting, trial = overall if overall[1]["calibration_agreement"][t] == top else next(
            s for s in screened if s[1]["calibration_agreement"][t] == top)
        per_t[t] = {"setting": trial["setting"], "snn": on_test(setting, trial)[t]}
    return {"best": best, "per_t": per_t, "error": None, "trials": trials}


def snnconv_from_rows(rows: list[dict], model: str, ann_accuracy: float) -> dict:
    """snnconv's row for ``model`` from an ``accuracy.py --target`` results file, scored on the same images
    (checked: its ANN accuracy on them is the one measured here)."""
    found = [row for row in rows if row["model"] == model]
    if not found:
        raise SystemExit(f"--snnconv-from: no row for {model}; run accuracy.py --target ... --models {model}")
    row = found[0]
    if abs(row["ann"] - ann_accuracy) > 1e-9 or any(str(t) not in row["snn"] for t in TIMESTEPS):
        raise SystemExit(f"--snnconv-from: {model}'s row was measured on other images or T (ANN {row['ann']} "
                         f"there, {ann_accuracy} here; T {sorted(row['snn'])})")
    return {"snn": {str(t): row["snn"][str(t)] for t in TIMESTEPS}, "chosen": row["chosen"],
            "setting": row["setting"], "seconds": row.get("seconds")}


def measure(model: str, x: np.ndarray, y: np.ndarray, calibration: np.ndarray, skip_snnconv: bool,
            snnconv_from: Path | None = None) -> dict:
    path = str(resources.files("snnconv.models").joinpath(MODELS[model][0]))
    graph = snnconv.load_onnx(path)
    row: dict = {"model": model, "ann": float((ann.evaluate(graph, x).argmax(1) == y).mean())}
    steps = max(TIMESTEPS)
    has_max_pool = any(isinstance(layer, L.Pool) and layer.mode == "max" for layer in graph)
    screen = (calibration[:SCREEN_DIGITS], ann.evaluate(graph, calibration[:SCREEN_DIGITS]).argmax(1))

    net, folded = IRNet(graph), IRNet(graph, fold_bn=True)
    row["module_check"] = {"as_is": check_module(net, graph, x, f"{model} module"),
                           "bn_folded": check_module(folded, graph, x, f"{model} BN-folded module")}
    row["module"] = [type(net.module(n)).__name__ if k != "add" else "+" for n, k, _ in net.plan]

    start = time.perf_counter()
    row["spikingjelly"] = sweep_peer("spikingjelly", SJ_SETTINGS + (SJ_MAXPOOL_SETTINGS if has_max_pool else []),
                                     lambda s: spikingjelly(net, calibration, s),
                                     lambda snn, data: run_spikingjelly(snn, data, steps), screen, (x, y))
    row["spikingjelly"]["seconds"] = round(time.perf_counter() - start, 1)

    neurons = max(int(np.prod(layer.shape)) for layer in graph)
    scaled: dict[float, IRNet] = {}

    def make_sinabs(setting):
        if setting[0] not in scaled:
            scaled[setting[0]] = scaled_for_sinabs(folded, graph, calibration, setting[0])
            check_module(scaled[setting[0]], graph, x, f"{model} scaled module")  # ReLU nets are scale-free
        return sinabs_network(scaled[setting[0]], setting, steps)

    start = time.perf_counter()
    row["sinabs"] = sweep_peer("sinabs", SINABS_SETTINGS + (SINABS_MAXPOOL_SETTINGS if has_max_pool else []),
                               make_sinabs, lambda snn, data: run_sinabs(snn, data, steps, neurons), screen, (x, y))
    row["sinabs"]["seconds"] = round(time.perf_counter() - start, 1)

    if snnconv_from is not None:  # read now: accuracy.py may have been running beside this
        rows = json.loads(snnconv_from.read_text())["rows"] if snnconv_from.exists() else []
        if any(r["model"] == model for r in rows):
            row["snnconv"] = snnconv_from_rows(rows, model, row["ann"])
        else:
            print(f"  {snnconv_from} has no {model} row yet: rerun with --render-only when it has", flush=True)
    elif not skip_snnconv:
        start = time.perf_counter()
        accuracy, chosen = {}, {}
        for t in TIMESTEPS:
            conversion = convert(snnconv.load_onnx(path), calibration, timesteps=t)
            accuracy[str(t)] = float((simulate(conversion.graph, x, t).predictions() == y).mean())
            chosen[str(t)] = conversion.notes.get("tuning", {}).get("chosen")
            print(f"  snnconv T={t}: {accuracy[str(t)]} {chosen[str(t)]}", flush=True)
        row["snnconv"] = {"snn": accuracy, "chosen": chosen, "seconds": round(time.perf_counter() - start, 1)}
    return row


# ---------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _revision() -> str:
    """The snnconv checkout measured: commit, and whether its working tree had local changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with local changes" if dirty else "")


def markdown(rows: list[dict], meta: dict) -> str:
    head = "| model | method | setting | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |"
    lines = ["# snnconv vs. SpikingJelly and Sinabs: SNN test accuracy (%)", "",
             f"{meta['test_digits']} test images ({meta.get('test_set', 'bundled')}), {meta['calibration_digits']} "
             "calibration images, constant-current "
             "input, summed output layer as readout. Peers: per model, the setting that agrees best with the "
             f"ANN on {SCREEN_DIGITS} calibration digits, averaged over T, and where it differs, the setting "
             "that agrees best at each T (every setting's agreement below and in peers.json). snnconv: compiled per T with its defaults (percentile and initial membranes "
             "tuned per T on the calibration digits, shown in brackets).", "",
             head, "|" + "---|" * (3 + len(TIMESTEPS))]
    for r in rows:
        lines.append(f"| {r['model']} | ANN | - | " + " | ".join(f"{100 * r['ann']:.1f}" for _ in TIMESTEPS) + " |")
        for peer in ("spikingjelly", "sinabs"):
            best = r[peer]["best"]
            if best is None:
                lines.append(f"| {r['model']} | {peer} | fails: {r[peer]['error']} | "
                             + " | ".join("n/a" for _ in TIMESTEPS) + " |")
            else:
                lines.append(f"| {r['model']} | {peer} | {best['setting']} | "
                             + " | ".join(f"{100 * best['snn'][str(t)]:.1f}" for t in TIMESTEPS) + " |")
                per_t = r[peer]["per_t"]
                if any(per_t[str(t)]["setting"] != best["setting"] for t in TIMESTEPS):
                    lines.append(f"| {r['model']} | {peer} | chosen per T (* = other than above) | " + " | ".join(
                        f"{100 * per_t[str(t)]['snn']:.1f}" + ("" if per_t[str(t)]["setting"] == best["setting"]
                                                             else f"* ({per_t[str(t)]['setting']})")
                        for t in TIMESTEPS) + " |")
        if "snnconv" in r:
            cells = []
            for t in TIMESTEPS:
                chosen = r["snnconv"]["chosen"][str(t)]
                note = f" (p{chosen['percentile']:g}, {chosen['v_init']})" if chosen else ""
                cells.append(f"{100 * r['snnconv']['snn'][str(t)]:.1f}{note}")
            setting = r["snnconv"].get("setting", "defaults (tuned per T)")
            lines.append(f"| {r['model']} | snnconv | {setting} | " + " | ".join(cells) + " |")
    lines += ["", f"## Every peer setting: agreement (%) with the ANN on {SCREEN_DIGITS} calibration digits", "",
              "| model | method | setting | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " | s |",
              "|" + "---|" * (4 + len(TIMESTEPS))]
    for r in rows:
        for peer in ("spikingjelly", "sinabs"):
            for trial in r[peer]["trials"]:
                agreement = trial.get("calibration_agreement")
                cells = (" | ".join(f"{100 * agreement[str(t)]:.1f}" for t in TIMESTEPS) if agreement
                         else f"fails: {trial['error']}" + " |" * (len(TIMESTEPS) - 1))
                lines.append(f"| {r['model']} | {peer} | {trial['setting']} | {cells} | {trial['seconds']} |")
    lines += ["", "## Settings and versions", ""]
    lines += [f"- {key}: {value}" for key, value in meta["settings"].items()]
    lines += ["- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
              + f" (snnconv at {meta['snnconv_revision']})",
              f"- total time: {meta['seconds']} s on {meta['machine']}, torch threads {meta['threads']}, "
              + ", ".join(f"{k}={v}" for k, v in meta["env"].items() if v) + f"; /proc/pressure/cpu at the end: "
              f"{meta['cpu_pressure_at_end']}"]
    return "\n".join(lines) + "\n"


SETTINGS_TEXT = {
    "input": "the analog image as a constant current every step (no rate coding), all methods",
    "readout": "argmax of the last layer's output summed over time (= the membrane of a non-spiking integrator), "
               "all methods",
    "spikingjelly": "ann2snn.Converter(RateCodingRecipe(DataLoader(500 calibration digits, one batch), mode, "
                    "channel_wise, half_threshold, pre_spike_maxpool)); Conv-BN fused by the recipe; IFNode "
                    "(threshold 1, soft reset) between scalers 1/lam and lam; single-step mode, batch 500. "
                    "Percentile modes count the ReLU's zeros; 0.9 = 0.9 x max",
    "sinabs": "BN folded (torch fuse_conv_bn_eval), layer-wise scaling W *= lam_in/lam_out, b /= lam_out, lam = "
              "percentile of the positive ReLU activations on the 500 calibration digits, residual skips "
              "multiplied by lam_skip/lam_add; from_model(spike_threshold=1, reset_fn=MembraneSubtract(), "
              "spike_fn, min_v_mem, num_timesteps=128), IAFSqueeze; max pooling as torch MaxPool2d on spikes "
              "(what from_model leaves) or sinabs' SpikingMaxPooling2dLayer",
    "max pooling": "SpikingJelly keeps MaxPool2d on the (scaled) spikes of each step, or with pre_spike_maxpool "
                   "pools the currents before the IF neuron; Sinabs' from_model keeps MaxPool2d on spikes, and "
                   "SpikingMaxPooling2dLayer passes a spike when it comes from the window's most active input; "
                   "snnconv's spiking max pool spikes when the window's largest spike count grows",
    "snnconv": "convert(load_onnx(path), calibration, timesteps=T) with its defaults; simulate(graph, x, T)",
    "best": f"per model and peer, the setting whose SNN agrees best with the ANN's predictions on the first "
            f"{SCREEN_DIGITS} calibration digits, averaged over T (no labels, no test digits); 'chosen per T': "
            "at each T the setting that agrees best at that T (ties go to the former)",
}


def render_only(name: str, snnconv_from: Path) -> None:
    """Rewrite results NAME.{json,md} with snnconv's rows read now (the peers' run finished first)."""
    path = RESULTS / f"{name}.json"
    results = json.loads(path.read_text())
    rows = json.loads(snnconv_from.read_text())["rows"]
    for row in results["rows"]:
        row["snnconv"] = snnconv_from_rows(rows, row["model"], row["ann"])
    path.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(results["rows"], results["meta"]))
    print(f"wrote {RESULTS / (name + '.md')}")


def main() -> None:
    global TIMESTEPS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--skip-snnconv", action="store_true", help="measure only the peers (for development)")
    parser.add_argument("--test-set", choices=("bundled", "full"), default="bundled",
                        help="the bundled 1,000 test images, or the official test set (testsets.py)")
    parser.add_argument("--test-samples", type=int, help="with --test-set full: its first N images")
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS), help="the T to read")
    parser.add_argument("--snnconv-from", type=Path, metavar="RESULTS.json",
                        help="snnconv's rows from accuracy.py --target ... run on the same images")
    parser.add_argument("--out", help="write benchmarks/results/NAME.{json,md} (also for a partial run)")
    parser.add_argument("--render-only", action="store_true",
                        help="with --out: reread NAME.json, fill in snnconv's rows from --snnconv-from, rewrite")
    args = parser.parse_args()
    TIMESTEPS = tuple(sorted(args.timesteps))
    if args.render_only:
        return render_only(args.out, args.snnconv_from)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    try:
        from loguru import logger

        logger.disable("spikingjelly")
    except ImportError:
        pass
    start, revision = time.perf_counter(), _revision()  # the code imported now is the code measured
    rows = []
    for model in args.models:
        print(f"{model}:", flush=True)
        test, calib = bundled(f"{MODELS[model][1]}_test.npz"), bundled(f"{MODELS[model][1]}_calib.npz")
        x, y, calibration = test["x"].astype(np.float32), test["y"], calib["x"].astype(np.float32)
        if args.test_set == "full":
            x, y = official_test(MODELS[model][1], args.test_samples)
        rows.append(measure(model, x, y, calibration, args.skip_snnconv, args.snnconv_from))
    pressure = Path("/proc/pressure/cpu")
    meta = {"versions": _versions(), "snnconv_revision": revision, "python": platform.python_version(),
            "machine": platform.machine(), "threads": torch.get_num_threads(), "test_digits": int(len(y)),
            "calibration_digits": int(len(calibration)), "screen_digits": SCREEN_DIGITS,
            "test_set": f"official test set, first {len(y)}" if args.test_set == "full" else "bundled",
            "timesteps": list(TIMESTEPS), "settings": SETTINGS_TEXT, "seconds": round(time.perf_counter() - start, 1),
            "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")},
            "cpu_pressure_at_end": pressure.read_text().splitlines()[0] if pressure.exists() else None}
    print(markdown(rows, meta))
    if args.out:
        (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(markdown(rows, meta))
        print(f"wrote {RESULTS / (args.out + '.md')} in {meta['seconds']} s")
        return
    if args.skip_snnconv or args.models != list(MODELS):
        print(f"partial run ({meta['seconds']} s): results not written")
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (RESULTS / "peers.md").write_text(markdown(rows, meta))
    print(f"wrote {RESULTS / 'peers.md'} in {meta['seconds']} s")


if __name__ == "__main__":
    main()
