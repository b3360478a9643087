"""A network with nearest upsampling (a U-Net-style skip: features upsampled and concatenated with the
finer ones) compiles to the chip and spikes like its ANN; the layer table and the partition show the layer."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TOLERANCE, onnxruntime_output

import snnconv
from snnconv.errors import UnsupportedOpError
from snnconv.frontend.torch_export import EXPORTERS, export_module
from snnconv.ir import Upsample

torch = pytest.importorskip("torch")
nn = torch.nn


class UpsampleSkip(nn.Module):
    """stem conv -> ReLU (8x8) -> max pool -> conv -> ReLU (4x4) -> nearest x2 -> concat with the stem ->
    conv -> ReLU -> nearest x2 -> flatten -> dense."""

    def __init__(self):
        super().__init__()
        self.stem, self.down = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1)
        self.merge, self.head = nn.Conv2d(10, 4, 3, padding=1), nn.Linear(4 * 16 * 16, 10)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x):
        stem = torch.relu(self.stem(x))
        coarse = torch.relu(self.down(nn.functional.max_pool2d(stem, 2)))
        merged = torch.relu(self.merge(torch.cat([stem, self.up(coarse)], 1)))
        return self.head(torch.flatten(self.up(merged), 1))


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_both_exporters_give_upsample_layers_that_match_onnxruntime(exporter):
    torch.manual_seed(0)
    module, x = UpsampleSkip().eval(), torch.rand(4, 1, 8, 8)
    model = export_module(module, x[:1], exporter)
    graph = snnconv.load_onnx(model).validate()
    assert [layer.factor for layer in graph if isinstance(layer, Upsample)] == [(2, 2), (2, 2)]
    np.testing.assert_allclose(snnconv.ann.evaluate(graph, x.numpy()), onnxruntime_output(model, x.numpy()),
                               rtol=0, atol=TOLERANCE)


def test_upsampling_network_compiles_and_agrees_with_the_ann_and_nir_says_why_it_cannot_take_it(tmp_path):
    torch.manual_seed(0)
    module = UpsampleSkip().eval()
    x = torch.rand(64, 1, 8, 8)
    net = snnconv.compile(module, "loihi", x.numpy(), example=x[:1], timesteps=32, tune="off")
    upsamples = [layer for layer in net.graph if isinstance(layer, Upsample)]
    assert [layer.factor for layer in upsamples] == [(2, 2), (2, 2)]
    with torch.no_grad():
        expected = module(x)
    agreement = float(np.mean(net.run(x.numpy(), timesteps=32).predictions == expected.argmax(1).numpy()))
    assert agreement >= 0.9, agreement
    pytest.importorskip("nir")
    with pytest.raises(UnsupportedOpError, match=r"\(upsample\) has no NIR node .* the \.snn artifact and the chip"):
        net.to_nir(tmp_path / "net.nir")
    assert not (tmp_path / "net.nir").exists()
