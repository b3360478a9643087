"""Conversion-aware training: the QCFS activation, so a network converts at a few timesteps.

An IF neuron with subtractive reset, driven for T steps by a constant current x (in units
of its threshold) and starting at half the threshold, fires ``clip(floor(x T + 1/2), 0, T)``
times: its rate is a ReLU quantized to T levels, clipped at 1, shifted by half a step. A
network trained with that activation instead of ReLU has nothing left to lose when it is
converted for T = L steps. This is QCFS, the quantization-clip-floor-shift activation of
Bu et al., "Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking
Neural Networks" (ICLR 2022), whose CIFAR-10 VGG-16 reaches 94.0% at T = 4:

    qcfs(x) = lambda * clip(floor(x L / lambda + 1/2) / L, 0, 1)

with ``L`` levels and a learnable ceiling ``lambda`` per layer (the normalization scale the
converter would otherwise estimate from calibration data); ``floor`` passes gradients
straight through. ``qcfs(model, levels)`` swaps a model's ``nn.ReLU`` modules for it.

Exported to ONNX, a QCFS layer is ``Clip(x, 0, lambda)`` (a ReLU with a ceiling, which the
frontend reads), and the model records ``levels`` in its metadata
(``snnconv.qcfs_levels``): ``snnconv.compile`` then takes each ceiling as its layer's
scale, no percentile, and T = L. ``snnconv.compile(module, ...)`` and ``load_torch`` export
that way; ``export(module, example, path)`` writes such an ONNX file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["QCFS", "export", "exporting", "levels_of", "qcfs"]


class _FloorSTE(torch.autograd.Function):
    """``floor`` forward, identity backward (the straight-through estimator)."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(nn.Module):
    """``lambda * clip(floor(x L / lambda + 1/2) / L, 0, 1)``, ``lambda`` learnable (initially ``ceiling``)."""

    def __init__(self, levels: int = 8, ceiling: float = 8.0):
        super().__init__()
        self.clip_at: float | None = None  # set while exporting (``exporting``): the layer is then Clip(x, 0, it)
        if not (isinstance(levels, int) and levels >= 1):
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        if not ceiling > 0:
            raise ValueError(f"ceiling must be positive, got {ceiling!r}")
        self.levels = levels
        self.ceiling = nn.Parameter(torch.tensor(float(ceiling)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip_at is not None:  # what converts: a ReLU with this ceiling, a constant (the SNN quantizes)
            return torch.clamp(x, min=0.0, max=self.clip_at)
        ceiling = self._ceiling()
        steps = _FloorSTE.apply(x * self.levels / ceiling + 0.5)
        return torch.clamp(steps / self.levels, 0.0, 1.0) * ceiling

    def _ceiling(self) -> torch.Tensor:
        return self.ceiling.abs() + 1e-6  # kept positive whatever the optimizer does

    def extra_repr(self) -> str:
        return f"levels={self.levels}, ceiling={float(self.ceiling):.4g}"


def qcfs(model: nn.Module, levels: int = 8, calibration: torch.Tensor | None = None,
         percentile: float = 99.9) -> nn.Module:
    """``model`` with every ``nn.ReLU`` (and ``nn.ReLU6``) module replaced by a ``QCFS`` of ``levels``, in place.

    Each ceiling starts at the ``percentile`` of its ReLU's outputs on ``calibration`` (a
    batch of inputs) where given, else at 6 for a ReLU6 and 8 otherwise (Bu et al.'s
    choice for CIFAR). ReLUs called as functions (``F.relu``, ``torch.relu``) are not
    modules and cannot be swapped: ``ValueError`` if no module was found.
    """
    relus = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, (nn.ReLU, nn.ReLU6))]
    if not relus:
        raise ValueError("the model has no nn.ReLU modules to swap (a functional relu cannot be replaced: "
                         "use nn.ReLU modules)")
    ceilings = _percentiles(model, [child for _, _, child in relus], calibration, percentile)
    for (parent, name, child), ceiling in zip(relus, ceilings):
        default = 6.0 if isinstance(child, nn.ReLU6) else 8.0
        setattr(parent, name, QCFS(levels, ceiling if ceiling and ceiling > 0 else default))
    return model


def _percentiles(model: nn.Module, relus: list[nn.Module], calibration, percentile: float) -> list[float | None]:
    """Per ReLU module, the ``percentile`` of its outputs on ``calibration`` (None without it)."""
    if calibration is None:
        return [None] * len(relus)
    outputs: dict[int, list[torch.Tensor]] = {id(m): [] for m in relus}
    hooks = [m.register_forward_hook(lambda m, _, out: outputs[id(m)].append(out.detach().flatten()))
             for m in relus]
    try:
        with torch.no_grad():
            model(torch.as_tensor(calibration))
    finally:
        for hook in hooks:
            hook.remove()
    found = []
    for m in relus:
        values = torch.cat(outputs[id(m)]) if outputs[id(m)] else torch.zeros(1)
        values = values[torch.randperm(len(values), generator=torch.Generator().manual_seed(0))[:1 << 20]]
        found.append(float(torch.quantile(values.float(), percentile / 100)))
    return found


def levels_of(model: nn.Module) -> int | None:
    """The L of the model's QCFS layers (None without any); ``ValueError`` if they differ."""
    levels = {m.levels for m in model.modules() if isinstance(m, QCFS)}
    if len(levels) > 1:
        raise ValueError(f"QCFS layers with different levels {sorted(levels)}: one T cannot serve them all")
    return levels.pop() if levels else None


@contextlib.contextmanager
def exporting(model: nn.Module) -> Iterator[nn.Module]:
    """Inside, the QCFS layers of ``model`` compute ``Clip(x, 0, ceiling)``: what an exporter should trace."""
    layers = [m for m in model.modules() if isinstance(m, QCFS)]
    for layer in layers:
        layer.clip_at = float(layer._ceiling().detach())
    try:
        yield model
    finally:
        for layer in layers:
            layer.clip_at = None


def export(model: nn.Module, example: torch.Tensor, path) -> None:
    """Write ``model`` (QCFS-trained) to the ONNX file ``path`` as snnconv reads it: ceilings and levels kept."""
    from snnconv.files import atomic_write
    from snnconv.frontend.torch_export import export_module

    data = export_module(model, example).SerializeToString()
    atomic_write(path, lambda temporary: temporary.write_bytes(data))
