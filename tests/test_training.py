"""Conversion-aware training (snnconv.training): QCFS is what an IF neuron computes in L steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snnconv.training import QCFS, levels_of, qcfs


def _if_neuron_rate(current: float, steps: int) -> float:
    """Oracle: an IF neuron (threshold 1, membrane starting at 1/2, subtractive reset) driven by
    ``current`` for ``steps`` steps; its spike count over ``steps``."""
    v, spikes = 0.5, 0
    for _ in range(steps):
        v += current
        if v >= 1.0:
            v -= 1.0
            spikes += 1
    return spikes / steps


@pytest.mark.parametrize("levels", [1, 4, 8, 16])
def test_qcfs_is_the_rate_of_an_if_neuron_run_for_l_steps(levels):
    layer = QCFS(levels, ceiling=2.5)
    ceiling = float(layer.ceiling.detach().abs() + 1e-6)
    x = torch.linspace(-1.0, 4.0, 501, dtype=torch.float64).float()
    got = layer(x).detach().numpy()
    expected = np.array([ceiling * _if_neuron_rate(float(v) / ceiling, levels) for v in x])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_gradients_pass_straight_through_floor_inside_the_clip_and_reach_the_ceiling():
    layer = QCFS(4, ceiling=2.0)
    x = torch.tensor([-1.0, 0.3, 1.1, 1.9, 5.0], requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])  # clipped inputs get none
    assert layer.ceiling.grad is not None and float(layer.ceiling.grad) != 0.0


def test_qcfs_swaps_relu_modules_and_starts_ceilings_at_the_calibration_percentile():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU6())
    x = torch.randn(256, 4)
    with torch.no_grad():
        hidden = torch.relu(model[0](x))
    qcfs(model, levels=4, calibration=x, percentile=99.0)
    assert isinstance(model[1], QCFS) and isinstance(model[3], QCFS) and levels_of(model) == 4
    assert float(model[1].ceiling.detach()) == pytest.approx(float(torch.quantile(hidden.flatten(), 0.99)), rel=1e-5)
    assert float(qcfs(nn.Sequential(nn.ReLU6()), 2)[0].ceiling.detach()) == 6.0  # no data: a ReLU6 keeps its 6


def test_a_model_without_relu_modules_is_refused_and_mixed_levels_are_named():
    with pytest.raises(ValueError, match="no nn.ReLU modules"):
        qcfs(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"different levels \[2, 4\]"):
        levels_of(nn.Sequential(QCFS(2), QCFS(4)))


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_imported_qcfs_is_a_relu_with_its_ceiling(exporter):
    import snnconv
    from snnconv.ir import ReLU

    model = nn.Sequential(nn.Linear(3, 3), QCFS(4, ceiling=1.5)).eval()
    graph = snnconv.load_torch(model, torch.zeros(1, 3), exporter=exporter)
    relus = [layer for layer in graph if isinstance(layer, ReLU)]
    assert len(relus) == 1 and relus[0].max_value == pytest.approx(1.5, rel=1e-5)
    assert graph.fact("qcfs_levels") == 4 and model[1].clip_at is None  # trains as QCFS again after the export


def test_an_exported_file_keeps_the_levels_and_bad_levels_are_refused(tmp_path):
    import onnx

    import snnconv
    from snnconv.errors import BadModelError
    from snnconv.training import export

    export(nn.Sequential(nn.Linear(3, 3), QCFS(4, ceiling=1.5)), torch.zeros(1, 3), tmp_path / "q.onnx")
    assert snnconv.load_onnx(tmp_path / "q.onnx").fact("qcfs_levels") == 4
    model = onnx.load(tmp_path / "q.onnx")
    onnx.helper.set_model_props(model, {"snnconv.qcfs_levels": "0"})
    with pytest.raises(BadModelError, match="is not a number of levels"):
        snnconv.load_onnx(model)


def test_a_qcfs_network_converts_at_t_equal_l_with_its_ceilings_as_scales():
    """One hidden QCFS layer driven by a constant current: its IF neurons fire exactly the QCFS levels in
    T = L steps (the oracle is the QCFS network itself, run by torch), so the SNN predicts what it does."""
    import snnconv
    from snnconv.pipeline import convert
    from snnconv.snn import simulate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), QCFS(4, ceiling=1.2), nn.Linear(32, 5)).eval()
    x = torch.randn(300, 6)
    graph = snnconv.load_torch(model, x[:1])
    conversion = convert(graph, x.numpy(), timesteps=4)
    assert conversion.notes["normalize"]["scales"]  # the hidden layer's scale is its ceiling
    hidden = conversion.notes["normalize"]["scales"]
    assert any(summary.get("max") == pytest.approx(1.2, rel=1e-5) for summary in hidden.values()
               if isinstance(summary, dict))
    snn = simulate(conversion.graph, x.numpy(), 4).outputs[4]
    with torch.no_grad():
        ann = model(x).numpy()
    scale = np.linalg.lstsq(snn.reshape(-1, 1), ann.reshape(-1), rcond=None)[0][0]  # the output layer's scale
    np.testing.assert_allclose(snn * scale, ann, atol=1e-4)


@pytest.mark.parametrize("bits", [3, 5])
def test_graded_spikes_run_a_qcfs_network_in_one_step_at_its_own_levels(bits):
    """With a payload that holds L, the graded pass scales by L, not P = 2^bits - 1, and caps each neuron at L:
    one step sends every QCFS activation exactly (the oracle is the QCFS network, run by torch, including the
    inputs above the ceiling, which QCFS clips at L levels)."""
    import snnconv
    from snnconv.pipeline import convert
    from snnconv.snn import simulate

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), QCFS(4, ceiling=1.2), nn.Linear(32, 5)).eval()
    x = torch.randn(300, 6)
    graph = snnconv.load_torch(model, x[:1])
    spiking = convert(graph, x.numpy(), timesteps=1, neuron="graded", spikes_per_step=2 ** bits - 1).graph
    assert spiking.fact("graded") == 4
    assert {layer.spikes_per_step for layer in spiking if layer.kind == "if"} == {4}
    with torch.no_grad():
        hidden = model[0](x) * 4 / 1.2
        ann = model(x).numpy()
    assert (hidden > 4.5).any() and (hidden < 0.5).any()  # both clips are exercised
    snn = simulate(spiking, x.numpy(), 1).outputs[1]
    scale = np.linalg.lstsq(snn.reshape(-1, 1), ann.reshape(-1), rcond=None)[0][0]
    np.testing.assert_allclose(snn * scale, ann, atol=1e-4)


def test_graded_spikes_too_narrow_for_the_qcfs_levels_keep_their_payload():
    import snnconv
    from snnconv.pipeline import convert

    model = nn.Sequential(nn.Linear(6, 8), QCFS(8, ceiling=1.0), nn.Linear(8, 2)).eval()
    x = torch.randn(50, 6)
    spiking = convert(snnconv.load_torch(model, x[:1]), x.numpy(), timesteps=1, neuron="graded",
                      spikes_per_step=3).graph
    assert spiking.fact("graded") == 3 and {layer.spikes_per_step for layer in spiking if layer.kind == "if"} == {3}


def test_a_qcfs_cnn_in_graded_spikes_capped_at_l_runs_on_the_chip_model_as_the_literal_reference():
    """Exactness: the chip model (fast, float BLAS) equals the per-core int64 reference bit for bit on a QCFS CNN
    with max pooling compiled for loihi2 with graded spikes capped at L = 4 in a 3-bit payload."""
    from reference_sim import Reference

    import snnconv
    from snnconv.ir import IF
    from snnconv.snn import simulate

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), QCFS(4, ceiling=1.0), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1), QCFS(4, ceiling=1.0), nn.Flatten(),
                          nn.Linear(6 * 4 * 4, 3)).eval()
    x = torch.rand(40, 1, 8, 8).numpy()
    net = snnconv.compile(model, "loihi2", x, example=torch.zeros(1, 1, 8, 8), neuron="graded", payload_bits=3,
                          timesteps=2)
    assert {layer.spikes_per_step for layer in net.graph if isinstance(layer, IF)} == {4}
    membranes: dict[str, list[np.ndarray]] = {}

    def probe(name, current, v):
        membranes.setdefault(name, []).append(v.reshape(len(x), -1).double().numpy().copy())

    result = simulate(net.graph, x, 2, probe=probe)
    reference = Reference(net.graph).run(x, 2)
    assert set(membranes) == set(reference)
    for name, steps in reference.items():
        for mine, literal in zip(membranes[name], steps, strict=True):
            np.testing.assert_array_equal(mine, literal.astype(np.float64), err_msg=name)
    output = net.graph.output
    np.testing.assert_array_equal(result.outputs[2], reference[output.name][-1].astype(np.float64) / 2 * output.scale)
