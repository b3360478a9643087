"""The CPU's own energy meter: Linux RAPL counters under ``/sys/class/powercap``.

Why: a measured joule beats a modeled one, where a machine offers it. RAPL (Running
Average Power Limit) counts the energy of each CPU package in microjoules; Linux exposes
it through the powercap framework (the ``intel_rapl`` driver, which also serves recent
AMD processors) as zones ``intel-rapl:N`` named ``package-N``, each with
``energy_uj`` and ``max_energy_range_uj``, the value at which the counter wraps to zero.
Since 2020 the counters are readable by root only by default (CVE-2020-8694), and
virtual machines rarely expose them: then the energy is "not measurable here".

A reading covers everything the packages did meanwhile (other processes, idle power of
every core), so it is the package's energy over the measured runs, not the model's alone.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["POWERCAP", "Meter", "package_meter"]

POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")  # a top-level zone; "intel-rapl:0:0" (a core) is inside it


class Meter:
    """The energy counters of every CPU package, read together."""

    def __init__(self, zones: list[Path]):
        self.zones = zones
        self.ranges = [int((zone / "max_energy_range_uj").read_text()) for zone in zones]

    def read(self) -> list[int]:
        """Each package's counter now, in microjoules."""
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def joules_since(self, start: list[int]) -> float:
        """Energy of all packages since ``start`` (a ``read``), each counter taken modulo its wrap."""
        return sum((now - then) % wrap for now, then, wrap in zip(self.read(), start, self.ranges)) / 1e6


def package_meter(root: Path = POWERCAP) -> tuple[Meter | None, str]:
    """A meter of the CPU packages under ``root`` and how it measures, or None and why the energy is not
    measurable here."""
    zones = sorted(path for path in root.glob("intel-rapl:*") if _PACKAGE_ZONE.fullmatch(path.name)
                   and _name(path).startswith("package"))
    if not zones:
        return None, f"not measurable here: no RAPL package zone under {root}"
    try:
        meter = Meter(zones)
        meter.read()
    except (OSError, ValueError) as exc:
        return None, f"not measurable here: the RAPL counters under {root} cannot be read ({exc})"
    names = ", ".join(_name(zone) for zone in zones)
    return meter, f"measured here: Linux RAPL energy counters of {names} ({root}), the whole package"


def _name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return ""
