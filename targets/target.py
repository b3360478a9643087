"""What snnconv knows about a chip: limits, precision, neuron model, mesh and costs.

A ``Target`` is plain data (frozen dataclasses), so a user can describe their own chip in
a TOML file with the same sections and fields (``load_toml``; ``Target.to_toml`` writes
one). Numbers that no chip limits are ``inf`` (TOML spells it ``inf``).

Integer numerics, the same for every target (``weight_bits = 0`` means float):

- weight ``w = m * 2^e``: mantissa ``m`` a signed ``weight_bits`` integer used
  symmetrically (``|m| <= 2^(weight_bits-1) - 1``), exponent ``e`` in
  ``weight_exponent``, shared by a synapse group (``exponent_group``: one per output
  channel or one per layer);
- threshold ``theta = m * 2^threshold_shift`` with ``1 <= m < 2^threshold_bits``; one
  threshold per neuron population;
- bias ``b = m * 2^e``: signed ``bias_bits`` mantissa, ``e`` in ``bias_exponent``;
- membrane: signed ``state_bits`` integer, saturating.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from snnconv.errors import BadTargetError

__all__ = ["Chip", "Core", "Costs", "Neuron", "Precision", "Target", "load_toml"]

Limit = int | float  # a count, or math.inf for "no limit"


@dataclass(frozen=True)
class Core:
    """Resources of one core. A tuple gives one value per core (chips whose cores differ)."""

    neurons: Limit | tuple[int, ...]  # neurons (compartments) per core
    input_axons: Limit  # distinct presynaptic sources a core can receive from
    output_axons: Limit  # distinct destinations (core, axon) a core's neurons can send to
    synapse_memory_bits: Limit | tuple[int, ...]  # synapse storage per core
    synapse_cost: str  # "per_synapse" (one entry per connection) or "shared_kernel" (conv weights stored once)
    row_overhead_bits: int  # per_synapse: bits per axon's row besides its weights
    word_bits: int  # per_synapse: a row is rounded up to whole words of this many bits (1: no rounding)
    fan_out: Limit  # destination cores one neuron may send to
    populations_per_core: Limit  # layers whose neurons may share a core (neuron/synapse configurations)
    accumulate: bool  # a neuron's input may be summed across cores (partial-sum compartments elsewhere)


@dataclass(frozen=True)
class Chip:
    cores: int  # usable neuron cores per chip
    mesh: tuple[int, int]  # rows, columns of the on-chip network (rows * columns >= cores)
    chips: int  # chips available to one network (a board), unless the user says otherwise


@dataclass(frozen=True)
class Precision:
    weight_bits: int  # signed mantissa bits, sign included; 0 = float (no quantization)
    weight_exponent: tuple[int, int]  # shared exponent range (min, max); (0, 0) = none
    exponent_group: str  # "channel" (per output channel) or "layer"
    threshold_bits: int  # unsigned threshold mantissa bits
    threshold_shift: int  # threshold = mantissa * 2^shift
    state_bits: int  # signed membrane bits (saturating)
    bias_bits: int  # signed bias mantissa bits
    bias_exponent: tuple[int, int]  # bias = mantissa * 2^e, e in this range

    @property
    def is_float(self) -> bool:
        return self.weight_bits == 0

    @property
    def weight_max(self) -> int:
        """Largest weight mantissa magnitude (mantissas are used symmetrically)."""
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def state_range(self) -> tuple[int, int]:
        return -(2 ** (self.state_bits - 1)), 2 ** (self.state_bits - 1) - 1


@dataclass(frozen=True)
class Neuron:
    reset: tuple[str, ...]  # reset modes the chip has: "subtract", "zero"
    subtract_compartments: int  # compartments per neuron to emulate subtractive reset (1 = native)
    spikes_per_step: int  # spikes a neuron can emit per timestep
    leak: bool  # the chip can switch its leak off (an IF neuron); otherwise it is modeled


@dataclass(frozen=True)
class Costs:
    """Energy (pJ) and time (ns) per operation, static power (mW) per chip."""

    synop_pj: float  # one synaptic operation (a spike reaching one synapse)
    neuron_update_pj: float  # one neuron's update in one timestep
    spike_hop_pj: float  # one spike message crossing one router hop
    chip_hop_pj: float  # one spike message crossing between chips
    synop_ns: float
    neuron_update_ns: float
    spike_hop_ns: float
    static_mw: float


@dataclass(frozen=True)
class Target:
    """A chip: its name, one line about it, the sections above, and where each number comes from."""

    name: str
    description: str
    core: Core
    chip: Chip
    precision: Precision
    neuron: Neuron
    costs: Costs
    sources: dict[str, str] = field(default_factory=dict)  # field or section -> citation or "assumed: why"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """This target as a TOML file that ``load_toml`` reads back to an equal target."""
        lines = [f"name = {_toml_value(self.name)}", f"description = {_toml_value(self.description)}"]
        for section in SECTIONS:
            lines += ["", f"[{section}]"]
            values = dataclasses.asdict(getattr(self, section))
            lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines += ["", "[sources]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in self.sources.items()]
        return "\n".join(lines) + "\n"


SECTIONS: dict[str, type] = {"core": Core, "chip": Chip, "precision": Precision, "neuron": Neuron, "costs": Costs}
CHOICES = {"synapse_cost": ("per_synapse", "shared_kernel"), "exponent_group": ("channel", "layer"),
           "reset": ("subtract", "zero")}
SIGNED = {"weight_exponent", "bias_exponent"}  # may be negative
POSITIVE = {"word_bits", "populations_per_core", "neurons", "input_axons", "output_axons", "synapse_memory_bits",
            "fan_out", "cores", "mesh", "chips", "subtract_compartments", "spikes_per_step", "state_bits",
            "threshold_bits", "bias_bits"}
TOP_LEVEL = {"name", "description", "sources", *SECTIONS}
# Magnitudes far beyond any chip (TrueNorth: 4,096 cores; states of 64 bits), so the
# placement's tables and the integer arithmetic stay small.
MAXIMA = {"cores": 1 << 16, "chips": 1 << 16, "mesh": 1 << 16, "weight_bits": 64, "threshold_bits": 64,
          "state_bits": 64, "bias_bits": 64, "threshold_shift": 64, "weight_exponent": 64, "bias_exponent": 64,
          "subtract_compartments": 64, "spikes_per_step": 1 << 16}


def load_toml(path: str | Path) -> Target:
    """Read a target description; every field is required and checked, errors name the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadTargetError(f"{path}: cannot read target file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadTargetError(f"{path}: not valid TOML ({exc})") from None
    return from_dict(data, str(path))


def from_dict(data: dict, where: str = "target") -> Target:
    """A ``Target`` from nested dicts (TOML or JSON), checking every field."""
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise BadTargetError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(TOP_LEVEL)}")
    kwargs: dict = {}
    for key in ("name", "description"):
        kwargs[key] = _require(data, key, where)
        if not isinstance(kwargs[key], str) or not kwargs[key]:
            raise BadTargetError(f"{where}: field '{key}' must be a non-empty string")
    for section, cls in SECTIONS.items():
        table = _require(data, section, where)
        if not isinstance(table, dict):
            raise BadTargetError(f"{where}: '{section}' must be a table ([{section}])")
        unknown = set(table) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise BadTargetError(f"{where}: unknown field(s) {sorted(unknown)} in [{section}]; "
                                 f"allowed: {[f.name for f in dataclasses.fields(cls)]}")
        kwargs[section] = cls(**{f.name: _checked(table, section, f, where) for f in dataclasses.fields(cls)})
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise BadTargetError(f"{where}: [sources] must map field names to strings")
    target = Target(sources=dict(sources), **kwargs)
    _check_consistency(target, where)
    return target


def _require(table: dict, key: str, where: str, name: str | None = None):
    if key not in table:
        raise BadTargetError(f"{where}: missing field '{name or key}'; see `snnconv targets --toml loihi` for a "
                             f"complete file")
    return table[key]


def _checked(table: dict, section: str, f: dataclasses.Field, where: str):
    """One field's value, converted to the dataclass's type and range-checked."""
    name = f"{section}.{f.name}"
    value = _require(table, f.name, where, name)
    kind = str(f.type)
    if kind.startswith("tuple"):
        if not isinstance(value, list) or not value:
            raise BadTargetError(f"{where}: field '{name}' must be a non-empty list, got {value!r}")
        items = tuple(_scalar(item, name, "str" if "str" in kind else "int", where) for item in value)
        if kind == "tuple[int, int]" and len(items) != 2:
            raise BadTargetError(f"{where}: field '{name}' must be a list of two integers, got {value!r}")
        if kind == "tuple[int, int]" and f.name != "mesh" and items[0] > items[1]:
            raise BadTargetError(f"{where}: field '{name}' must be [min, max] with min <= max, got {value!r}")
        value = items
    elif "tuple" in kind and isinstance(value, list):  # Limit | tuple: one value per core
        value = tuple(_scalar(item, name, "int", where) for item in value)
    else:
        scalar = "str" if kind == "str" else "bool" if kind == "bool" else "float" if kind == "float" else \
            "limit" if "Limit" in kind else "int"
        value = _scalar(value, name, scalar, where)
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str) and f.name in CHOICES and item not in CHOICES[f.name]:
            raise BadTargetError(f"{where}: field '{name}' is {item!r}; allowed: {', '.join(CHOICES[f.name])}")
        if not isinstance(item, (str, bool)) and item < 0 and f.name not in SIGNED:
            raise BadTargetError(f"{where}: field '{name}' is negative ({item}); it must be >= 0")
        if not isinstance(item, (str, bool)) and f.name in POSITIVE and item == 0:
            raise BadTargetError(f"{where}: field '{name}' must be positive, got 0")
        if not isinstance(item, (str, bool)) and abs(item) > MAXIMA.get(f.name, math.inf):
            raise BadTargetError(f"{where}: field '{name}' is {item}; snnconv handles magnitudes up to "
                                 f"{MAXIMA[f.name]}")
    return value


def _scalar(value, name: str, kind: str, where: str):
    if kind == "str":
        if not isinstance(value, str):
            raise BadTargetError(f"{where}: field '{name}' must be a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadTargetError(f"{where}: field '{name}' must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadTargetError(f"{where}: field '{name}' must be a number, got {value!r}")
    if kind == "float":
        if math.isnan(value):
            raise BadTargetError(f"{where}: field '{name}' is NaN")
        return float(value)
    if kind == "limit" and value == math.inf:
        return math.inf
    if isinstance(value, float) and not value.is_integer() or kind == "int" and not math.isfinite(value):
        raise BadTargetError(f"{where}: field '{name}' must be an integer, got {value!r}")
    return int(value)


def _check_consistency(target: Target, where: str) -> None:
    p, chip = target.precision, target.chip
    if not p.is_float and p.weight_bits < 2:
        raise BadTargetError(f"{where}: field 'precision.weight_bits' is {p.weight_bits}; use 0 (float) or >= 2")
    if chip.mesh[0] * chip.mesh[1] > MAXIMA["mesh"]:
        raise BadTargetError(f"{where}: field 'chip.mesh' {list(chip.mesh)} has more than {MAXIMA['mesh']} places")
    if chip.mesh[0] * chip.mesh[1] < chip.cores:
        raise BadTargetError(f"{where}: field 'chip.mesh' {list(chip.mesh)} has fewer places than "
                             f"chip.cores ({chip.cores})")
    if not p.is_float and p.state_bits <= p.threshold_bits + p.threshold_shift - 1:
        raise BadTargetError(f"{where}: field 'precision.state_bits' ({p.state_bits}) cannot hold the largest "
                             f"threshold (2^{p.threshold_bits + p.threshold_shift}); raise it or lower threshold_bits")
    for key in ("neurons", "synapse_memory_bits"):
        value = getattr(target.core, key)
        if isinstance(value, tuple) and len(value) != chip.cores:
            raise BadTargetError(f"{where}: field 'core.{key}' lists {len(value)} cores but chip.cores is {chip.cores}")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value == math.inf:
        return "inf"
    return repr(value)
