"""RAPL energy counters, read from a powercap tree written for the test (this machine may expose none)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_cases import MLP

import snnconv
from snnconv import ann_measure, rapl


def zone(root: Path, name: str, label: str, energy: int, wrap: int = 1_000_000) -> Path:
    path = root / name
    path.mkdir()
    (path / "name").write_text(f"{label}\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{wrap}\n")
    return path


@pytest.fixture
def powercap(tmp_path):
    """Two packages, a core sub-zone and a platform (psys) zone: only the packages are read."""
    zone(tmp_path, "intel-rapl:0", "package-0", 100)
    zone(tmp_path, "intel-rapl:0:0", "core", 50)
    zone(tmp_path, "intel-rapl:1", "package-1", 999_900)
    zone(tmp_path, "intel-rapl:2", "psys", 7)
    return tmp_path


def test_the_meter_sums_the_packages_and_unwraps_each_counter(powercap):
    meter, how = rapl.package_meter(powercap)
    assert how.startswith("measured here") and "package-0, package-1" in how
    start = meter.read()
    assert start == [100, 999_900]
    (powercap / "intel-rapl:0" / "energy_uj").write_text("1100\n")  # +1,000 uJ
    (powercap / "intel-rapl:1" / "energy_uj").write_text("400\n")  # wrapped at 1,000,000: +500 uJ
    (powercap / "intel-rapl:0:0" / "energy_uj").write_text("9999\n")  # a core zone: not counted twice
    assert meter.joules_since(start) == pytest.approx(1_500e-6)


def test_without_powercap_energy_is_not_measurable_here(tmp_path):
    meter, how = rapl.package_meter(tmp_path / "missing")
    assert meter is None and how.startswith("not measurable here")


def test_unreadable_counters_are_not_measurable_here(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("denied\n")
    meter, how = rapl.package_meter(tmp_path)
    assert meter is None and "cannot be read" in how


def test_measured_energy_per_run_is_the_meters_delta_over_the_runs(powercap, monkeypatch):
    """A counter that gains 1,000 uJ between two reads: each block of BLOCK runs costs 1,000 uJ."""
    counter = iter(range(0, 10**9, 1000))
    monkeypatch.setattr(rapl.Meter, "read", lambda self: [next(counter), 0])
    measured = ann_measure.measure(None, snnconv.load_onnx(MLP), budget_s=0.0, powercap=powercap)
    assert measured["energy_source"].startswith("measured here")
    (torch,) = measured["runtimes"]
    assert torch["runs"] % ann_measure.BLOCK == 0
    assert torch["energy_uj"] == pytest.approx(1000 / ann_measure.BLOCK)
    assert "no ONNX model" in measured["unavailable"]["onnxruntime"]
