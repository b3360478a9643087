"""Built-in targets load, cite their figures and round-trip through TOML; bad TOML names the bad field."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest

from snnconv import targets
from snnconv.errors import BadTargetError
from snnconv.targets import target as target_module

SECTIONS = ("core", "chip", "precision", "neuron", "costs")


def _write(path: Path, target: targets.Target) -> Path:
    path.write_text(target.to_toml(), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", targets.names())
def test_every_built_in_target_loads_under_its_own_name(name):
    assert targets.get(name).name == name


@pytest.mark.parametrize("name", targets.names())
def test_every_built_in_target_round_trips_through_toml(name, tmp_path):
    original = targets.get(name)
    assert targets.get(_write(tmp_path / "x.toml", original)) == original


@pytest.mark.parametrize("name", targets.names())
@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_of_every_target_has_a_source(name, section):
    sources = targets.get(name).sources
    cited = [text for key, text in sources.items() if key == section or key.startswith(f"{section}.")]
    assert cited and all(text.strip() for text in cited), f"{name}: no source for [{section}]"


@pytest.mark.parametrize("name", targets.names())
def test_every_source_names_a_section_or_its_fields(name):
    """A source keyed by a misspelled field would cite nothing."""
    target = targets.get(name)
    for key in target.sources:
        section, _, prefix = key.partition(".")
        assert section in SECTIONS, key
        assert any(f.startswith(prefix) for f in dataclasses.asdict(getattr(target, section))), key


def test_the_default_target_is_listed_first():
    assert targets.names()[0] == targets.DEFAULT


def test_an_unknown_name_lists_the_known_targets():
    with pytest.raises(BadTargetError) as error:
        targets.get("nope")
    assert "'nope'" in str(error.value) and all(name in str(error.value) for name in targets.names())


def test_every_number_of_a_target_has_a_stated_range():
    """A new numeric field cannot slip past the checks: ``BOUNDS`` must name it."""
    numeric = {f"{section}.{f.name}" for section, cls in target_module.SECTIONS.items()
               for f in dataclasses.fields(cls) if str(f.type) not in ("str", "bool", "tuple[str, ...]")}
    assert numeric == set(target_module.BOUNDS)


def test_a_path_with_a_folder_is_read_as_a_file_even_without_a_suffix(tmp_path):
    path = _write(tmp_path / "mychip", targets.get("loihi"))
    assert targets.get(str(path)) == targets.get("loihi")


def test_a_target_object_is_returned_as_is():
    loihi = targets.get("loihi")
    assert targets.get(loihi) is loihi


def test_control_characters_in_strings_round_trip(tmp_path):
    odd = dataclasses.replace(targets.get("loihi"), description='tab\tcr\rnewline\nquote" back\\ bell\x07',
                              sources={"core.neurons": "a.b: c", "core": "x"})
    assert targets.get(_write(tmp_path / "odd.toml", odd)) == odd


def test_per_core_tuples_and_inf_round_trip(tmp_path):
    speck = targets.get("speck")
    assert isinstance(speck.core.neurons, tuple) and len(speck.core.neurons) == speck.chip.cores
    text = speck.to_toml()
    assert "input_axons = inf" in text
    assert targets.get(_write(tmp_path / "speck.toml", speck)).core == speck.core
    assert targets.get("ideal").core.neurons == math.inf


# A mutation of loihi's tables (as a TOML file has them) and a fragment its error must contain.
def _delete(section: str, key: str):
    return lambda data: data[section].pop(key)


def _set(section: str, key: str, value):
    return lambda data: data[section].__setitem__(key, value)


def _set_top(key: str, value):
    return lambda data: data.__setitem__(key, value)


def _drop_top(key: str):
    return lambda data: data.pop(key)


BAD_TABLES = {
    "missing field": (_delete("core", "neurons"), "missing field 'core.neurons'"),
    "missing section": (_drop_top("costs"), "missing field 'costs'"),
    "missing name": (_drop_top("name"), "missing field 'name'"),
    "negative": (_set("precision", "state_bits", -1),
                 "'precision.state_bits' is -1, negative; allowed: a positive integer up to 64"),
    "negative limit": (_set("core", "input_axons", -5), "'core.input_axons' is -5, negative"),
    "negative cost": (_set("costs", "synop_pj", -1.0), "'costs.synop_pj' is -1.0, negative; allowed: a number from 0"),
    "zero cores": (_set("chip", "cores", 0), "'chip.cores' is 0, below the minimum; allowed: a positive integer"),
    "zero neurons": (_set("core", "neurons", 0), "'core.neurons' is 0, below the minimum"),
    "zero bias bits": (_set("precision", "bias_bits", 0), "'precision.bias_bits' is 0, below the minimum"),
    "string for a number": (_set("core", "neurons", "1024"), "'core.neurons' is '1024', not a number"),
    "bool for a number": (_set("chip", "chips", True), "'chip.chips' is True, not a number"),
    "bool for a per-core value": (_set("core", "neurons", [True] * 128), "'core.neurons' is True, not a number"),
    "fraction for an integer": (_set("precision", "state_bits", 23.5), "'precision.state_bits' is 23.5, not an integer"),
    "inf for an integer": (_set("chip", "cores", math.inf), "'chip.cores' is inf, not finite"),
    "inf in a pair": (_set("chip", "mesh", [math.inf, 16]), "'chip.mesh' is inf, not finite"),
    "nan cost": (_set("costs", "static_mw", math.nan), "'costs.static_mw' is NaN, not a number"),
    "inf cost": (_set("costs", "synop_pj", math.inf), "'costs.synop_pj' is inf, not finite"),
    "-inf limit": (_set("core", "fan_out", -math.inf), "'core.fan_out' is -inf, not finite"),
    "1e200 for an integer": (_set("core", "row_overhead_bits", 1e200),
                             ("'core.row_overhead_bits' is 1e+200, above the maximum; allowed: an integer from 0 up "
                              "to 65,536")),
    "2^62 for a limit": (_set("core", "synapse_memory_bits", 2**62),
                         ("'core.synapse_memory_bits' is 4611686018427387904, above the maximum; allowed: a "
                          "positive integer up to 1,099,511,627,776, or inf (no limit)")),
    "cost of 1e300": (_set("costs", "static_mw", 1e300), "'costs.static_mw' is 1e+300, above the maximum"),
    "exponent beyond 64": (_set("precision", "weight_exponent", [0, 100]),
                           "'precision.weight_exponent' is 100, above the maximum; allowed: an integer from -64"),
    "exponent below -64": (_set("precision", "bias_exponent", [-65, 0]),
                           "'precision.bias_exponent' is -65, below the minimum"),
    "number for a bool": (_set("core", "accumulate", 1), "'core.accumulate' must be true or false"),
    "empty name": (_set_top("name", ""), "'name' must be a non-empty string"),
    "unknown field": (_set("core", "neurones", 1024), "unknown field(s) ['neurones'] in [core]"),
    "unknown section": (_set_top("cores", {"neurons": 1}), "unknown field(s) ['cores']"),
    "section not a table": (_set_top("chip", 5), "'chip' must be a table"),
    "bad choice": (_set("core", "synapse_cost", "magic"), "'core.synapse_cost' is 'magic'; allowed: per_synapse"),
    "bad reset": (_set("neuron", "reset", ["zero", "soft"]), "'neuron.reset' is 'soft'"),
    "bad exponent group": (_set("precision", "exponent_group", "tile"), "'precision.exponent_group' is 'tile'"),
    "mesh too small": (_set("chip", "mesh", [4, 4]), "'chip.mesh' [4, 4] has fewer places than chip.cores (128)"),
    "mesh of three": (_set("chip", "mesh", [4, 4, 8]), "'chip.mesh' must be a list of two integers"),
    "exponent range reversed": (_set("precision", "weight_exponent", [3, 1]),
                                "'precision.weight_exponent' must be [min, max]"),
    "empty list": (_set("neuron", "reset", []), "'neuron.reset' must be a non-empty list"),
    "per-core tuple of wrong length": (_set("core", "neurons", [1024, 1024]),
                                       "'core.neurons' lists 2 cores but chip.cores is 128"),
    "per-core tuple with a zero": (_set("core", "synapse_memory_bits", [0] * 128),
                                   "'core.synapse_memory_bits' is 0, below the minimum"),
    "number for a choice": (_set("core", "synapse_cost", 3), "'core.synapse_cost' is 3; allowed: per_synapse"),
    "float weight bits of one": (_set("precision", "weight_bits", 1), "'precision.weight_bits' is 1"),
    "threshold beyond the state": (_set("precision", "state_bits", 16), "'precision.state_bits' (16) cannot hold"),
    "sources not strings": (_set_top("sources", {"core": 3}), "[sources] must map field names to strings"),
}


@pytest.mark.parametrize("mutate, fragment", BAD_TABLES.values(), ids=BAD_TABLES.keys())
def test_a_malformed_target_names_the_bad_field(mutate, fragment, tmp_path):
    data = copy.deepcopy(targets.get("loihi").to_dict())
    mutate(data)
    path = tmp_path / "bad.toml"
    path.write_text(_toml(data), encoding="utf-8")
    with pytest.raises(BadTargetError) as error:
        targets.get(str(path))
    assert fragment in str(error.value) and str(path) in str(error.value)


def _toml(data: dict) -> str:
    """Tables as TOML text, by a writer independent of ``Target.to_toml``."""
    top = [f"{key} = {_value(value)}" for key, value in data.items() if not isinstance(value, dict)]
    tables = [f"[{key}]\n" + "\n".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items())
              for key, value in data.items() if isinstance(value, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    return json.dumps(value)


BAD_FILES = {
    "invalid syntax": ("name = \"x\"\n[core\nneurons = 1\n", "not valid TOML"),
    "not utf-8": (b"name = \"\xff\"\n", "not valid TOML"),
}


@pytest.mark.parametrize("content, fragment", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_an_unreadable_toml_file_is_refused(content, fragment, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(BadTargetError, match=fragment):
        targets.get(path)


def test_a_missing_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(BadTargetError) as error:
        targets.get(str(path))
    assert str(path) in str(error.value) and "no such file" in str(error.value)
