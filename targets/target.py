"""What snnconv knows about a chip: limits, precision, neuron model, mesh and costs.

A ``Target`` is plain data (frozen dataclasses), so a user can describe their own chip in
a TOML file with the same sections and fields (``load_toml``; ``Target.to_toml`` writes
one). Numbers that no chip limits are ``inf`` (TOML spells it ``inf``). Every number must
lie in its range in ``BOUNDS``; a file is read only if it is a regular file of at most
1 MiB.

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

from snnconv import files
from snnconv.errors import BadTargetError

__all__ = ["Chip", "Core", "Costs", "Neuron", "Precision", "Target", "load_toml"]

Limit = int | float  # a count, or math.inf for "no limit"


@dataclass(frozen=True)
class Core:
    """Resources of one core, each enforced by ``snnconv.limits``.

    A tuple gives one value per core of a chip (chips whose cores differ), core ``k`` being
    the one at the ``k``-th place of a serpentine walk over the mesh (row 0 left to right,
    row 1 right to left, ...; ``snnconv.mapping.places``).
    """

    neurons: Limit | tuple[int, ...]  # neurons (compartments) per core
    input_axons: Limit  # distinct presynaptic sources a core can receive from
    output_axons: Limit  # destinations (core, axon) a core's neurons send to: one per neuron and tile reading it
    synapse_memory_bits: Limit | tuple[int, ...]  # synapse storage per core
    synapse_cost: str  # "per_synapse" (one entry per connection) or "shared_kernel" (conv weights stored once)
    row_overhead_bits: int  # per_synapse: bits per axon's row besides its weights
    word_bits: int  # per_synapse: a row is rounded up to whole words of this many bits (1: no rounding)
    fan_out: Limit  # other cores one core's neurons may send to (its routes)
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
    leak: bool  # the chip can decay membranes each step (Loihi's decay_v): runs neuron model "lif"


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
TOP_LEVEL = {"name", "description", "sources", *SECTIONS}
MAX_FILE_BYTES = 1 << 20  # a target description is a few kB; a bigger file is something else


@dataclass(frozen=True)
class Bound:
    """The numbers a field takes: ``low`` to ``high`` inclusive, integers unless ``real``, and
    ``inf`` as well where the field is a limit that a chip may not have (``unlimited``)."""

    low: int | float
    high: int | float
    real: bool = False
    unlimited: bool = False

    def __str__(self) -> str:
        if self.low == 1 and not self.real:
            text = f"a positive integer up to {_number_text(self.high)}"
        else:
            kind = "a number" if self.real else "an integer"
            text = f"{kind} from {_number_text(self.low)} up to {_number_text(self.high)}"
        return text + (", or inf (no limit)" if self.unlimited else "")


# Every number of a target, with the values snnconv accepts. The maxima lie far beyond any
# chip (TrueNorth: 4,096 cores; membranes of 64 bits; picojoules per operation), so that the
# placement's tables and the integer and float arithmetic on them stay small and finite.
COUNT = Bound(1, 1 << 40, unlimited=True)  # a resource of a core
BITS = Bound(1, 64)
EXPONENT = Bound(-64, 64)
COST = Bound(0, 1e9, real=True)  # pJ, ns or mW
BOUNDS: dict[str, Bound] = {
    "core.neurons": COUNT, "core.input_axons": COUNT, "core.output_axons": COUNT, "core.synapse_memory_bits": COUNT,
    "core.row_overhead_bits": Bound(0, 1 << 16), "core.word_bits": Bound(1, 1 << 16), "core.fan_out": COUNT,
    "core.populations_per_core": COUNT,
    "chip.cores": Bound(1, 1 << 16), "chip.mesh": Bound(1, 1 << 16), "chip.chips": Bound(1, 1 << 16),
    "precision.weight_bits": Bound(0, 64), "precision.weight_exponent": EXPONENT, "precision.threshold_bits": BITS,
    "precision.threshold_shift": Bound(0, 64), "precision.state_bits": BITS, "precision.bias_bits": BITS,
    "precision.bias_exponent": EXPONENT,
    "neuron.subtract_compartments": Bound(1, 64), "neuron.spikes_per_step": Bound(1, 1 << 16),
    **{f"costs.{f.name}": COST for f in dataclasses.fields(Costs)},
}
MAX_PLACES = 1 << 16  # places of a chip's mesh (rows * columns)


def load_toml(path: str | Path) -> Target:
    """Read a target description; every field is required and checked, errors name the field.

    The file is read through ``snnconv.files`` (a regular file of at most ``MAX_FILE_BYTES``:
    a FIFO or a device is refused, not waited on). Any failure of the parser, nesting too
    deep for it included, is a ``BadTargetError``.
    """
    data = files.read_input(path, "a target description (.toml)", BadTargetError, MAX_FILE_BYTES)
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except RecursionError as exc:
        raise BadTargetError(f"{path}: not valid TOML (nested too deeply); a target file has tables of "
                             "numbers, see `snnconv targets --toml loihi`") from exc
    except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError, an integer of thousands of digits
        reason = " ".join(str(exc).split())
        raise BadTargetError(f"{path}: not valid TOML ({reason}); fix the file, or start from "
                             "`snnconv targets --toml loihi`") from exc
    return from_dict(table, str(path))


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
    """One field's value in the dataclass's type: true/false, a name among ``CHOICES``, or numbers in ``BOUNDS``."""
    name = f"{section}.{f.name}"
    value = _require(table, f.name, where, name)
    kind = str(f.type)
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadTargetError(f"{where}: field '{name}' must be true or false, got {_shown(value)}")
        return value
    if kind == "str":
        return _choice(value, name, CHOICES[f.name], where)
    if kind == "tuple[str, ...]":
        return tuple(_choice(item, name, CHOICES[f.name], where) for item in _list(value, name, where))
    if kind == "tuple[int, int]":
        if len(_list(value, name, where)) != 2:
            raise BadTargetError(f"{where}: field '{name}' must be a list of two integers, got {_shown(value)}")
        pair = tuple(_number(item, name, BOUNDS[name], where) for item in value)
        if f.name != "mesh" and pair[0] > pair[1]:
            raise BadTargetError(f"{where}: field '{name}' must be [min, max] with min <= max, got {_shown(value)}")
        return pair
    if kind.endswith("tuple[int, ...]") and isinstance(value, list):  # one value per core
        return tuple(_number(item, name, BOUNDS[name], where) for item in _list(value, name, where))
    return _number(value, name, BOUNDS[name], where)


def _list(value, name: str, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise BadTargetError(f"{where}: field '{name}' must be a non-empty list, got {_shown(value)}")
    return value


def _choice(value, name: str, choices: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BadTargetError(f"{where}: field '{name}' is {_shown(value)}; allowed: {', '.join(choices)}")
    return value


def _number(value, name: str, bound: Bound, where: str) -> int | float:
    """``value`` as the int (or float) ``bound`` allows; else one message: the field, the value, what is wrong, the range."""
    problem = _problem(value, bound)
    if problem:
        raise BadTargetError(f"{where}: field '{name}' is {_shown(value)}, {problem}; allowed: {bound}")
    if value == math.inf:
        return math.inf
    return float(value) if bound.real else int(value)


def _problem(value, bound: Bound) -> str | None:
    """What keeps ``value`` out of ``bound``, or None. Ints are never converted to float (1e400 would not fit)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "not a number"
    if isinstance(value, float) and math.isnan(value):
        return "not a number"
    if value == math.inf and bound.unlimited:
        return None
    if isinstance(value, float) and math.isinf(value):
        return "not finite"
    if not bound.real and isinstance(value, float) and not value.is_integer():
        return "not an integer"
    if value < bound.low:
        return "negative" if value < 0 <= bound.low else "below the minimum"
    if value > bound.high:
        return "above the maximum"
    return None


def _shown(value) -> str:
    """A value as the message shows it: NaN by name, long values cut short."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number_text(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _check_consistency(target: Target, where: str) -> None:
    p, chip = target.precision, target.chip
    if not p.is_float and p.weight_bits < 2:
        raise BadTargetError(f"{where}: field 'precision.weight_bits' is {p.weight_bits}; use 0 (float) or >= 2")
    if chip.mesh[0] * chip.mesh[1] > MAX_PLACES:
        raise BadTargetError(f"{where}: field 'chip.mesh' {list(chip.mesh)} has more than {MAX_PLACES:,} places")
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
