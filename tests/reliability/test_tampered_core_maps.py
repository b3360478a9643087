"""Tampered core maps: an artifact whose core table the target's chips cannot run is refused with the core and reason.

Every artifact here is the good one (``lenet`` on loihi: one core holding its three
populations) with its manifest changed and its checksums intact, so that ``artifact.read``
accepts it (every neuron is still on exactly one core) and only ``limits.check_mapping``,
the load-time check of the core map against the target, can tell.
"""

from __future__ import annotations

import dataclasses

import pytest
from reliability.test_hostile_files import changed, message

from snnconv import artifact, limits, targets
from snnconv.errors import BadArtifactError


def check(path, target=None) -> None:
    loaded = artifact.read(path)
    limits.check_mapping(loaded.graph, loaded.mapping, target or targets.get("loihi"), str(path))


def first_core(manifest: dict) -> dict:
    return manifest["mapping"]["cores"][0]


def fewer_neurons_recorded(manifest: dict) -> None:
    first_core(manifest)["tiles"][0]["resources"]["neurons"] = 100


def a_route_to_itself(manifest: dict) -> None:
    first_core(manifest)["routes"] = [0]


def off_the_mesh(manifest: dict) -> None:
    first_core(manifest)["position"] = [8, 3]


def on_a_chip_not_counted(manifest: dict) -> None:
    first_core(manifest)["chip"] = 3


def the_output_on_a_second_core_at_the_same_place(manifest: dict) -> None:
    cores = manifest["mapping"]["cores"]
    output = [tile for tile in cores[0]["tiles"] if tile["population"] == "output"]
    cores[0]["tiles"] = [tile for tile in cores[0]["tiles"] if tile["population"] != "output"]
    cores.append({**cores[0], "index": 1, "tiles": output, "routes": []})


def for_another_chip(manifest: dict) -> None:
    manifest["mapping"]["target"] = "speck"


TAMPERED = {
    "resources recorded lower": (fewer_neurons_recorded, ("core 0: a tile of 'Relu_2' records neurons 100, axons 0, "
                                                          "synapses 0, memory_bits 0 but the program gives neurons 512")),
    "a route nothing uses": (a_route_to_itself, "core 0: routes [0] but its neurons reach cores []"),
    "a place off the mesh": (off_the_mesh, "core 0: chip 0, place [8, 3] is no core of the 1 chip(s) of loihi"),
    "a chip beyond the map's": (on_a_chip_not_counted, "core 0: chip 3, place [0, 0] is no core of the 1 chip(s)"),
    "two cores at one place": (the_output_on_a_second_core_at_the_same_place,
                               "core 1: chip 0, place [0, 0] is core 0's too"),
    "a map for another chip": (for_another_chip, "the map is for 'speck', not 'loihi'"),
}


@pytest.mark.parametrize("change, fragment", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_tampered_core_map_is_refused_naming_the_core_and_what_is_wrong(change, fragment, artifact_bytes, tmp_path):
    path = changed(artifact_bytes, tmp_path / "cores.snn", change)
    text = message(BadArtifactError, check, path)
    assert f"{path}: core table: " in text and fragment in text and "compile the model again for loihi" in text


def test_a_map_beyond_the_targets_cores_is_refused_with_every_limit_it_breaks(artifact_bytes, tmp_path):
    """The good map held to cores of 256 compartments, 100 input axons and 4,096 bits of synapse memory."""
    path = changed(artifact_bytes, tmp_path / "cores.snn", lambda manifest: None)
    loihi = targets.get("loihi")
    small = dataclasses.replace(loihi, core=dataclasses.replace(loihi.core, neurons=256, input_axons=100,
                                                                synapse_memory_bits=4096))
    text = message(BadArtifactError, check, path, small)
    assert (f"{path}: core table: core 0: compartments (586) exceeded max (256); core 0: input axons (320) exceeded "
            f"max (100); core 0: synapse memory bits (24,576) exceeded max (4,096)") in text


def test_the_good_map_passes(artifact_path):
    check(artifact_path)
