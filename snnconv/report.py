"""The partitioning report: per layer, per chip and in total, how full the cores are.

Built from a placed graph (its ``mapping`` fact) and the target. ``to_dict()`` is what
``--json`` prints; ``render()`` is the terminal table. Utilization is always of the
cores used: neurons (compartments), input axons, output axons and synapse memory, each
against the capacity of the core itself (``snnconv.limits``; where a chip's cores differ,
each core's own). Where tiles of several layers share a core, a layer's row shows the
utilization of the cores it is on; ``core_utilization`` keeps it per core, for the
pictures of the HTML report. A row's ``shape`` is the layer's output in the source model's
terms, ``tile`` the box of one core's neurons as the core map holds it, (c, h, w); the
text of a 1-D network (``Input.one_d``, feature maps (C, 1, L)) shows tiles as (c, l).

A QDQ model's report adds ``integer_weights`` (``passes/quantize``): per conv or dense
layer whether the chip keeps the quantizer's integers, and the relative RMS difference of
its weights from the quantizer's where not; and ``fake_quant_effect``
(``snnconv.fake_quant``): what folding the activation quantizers changed in the ANN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnconv import limits
from snnconv.errors import BadGraphError
from snnconv.ir import Graph
from snnconv.limits import Limits
from snnconv.mapping import Core, Mapping, traffic
from snnconv.table import render_table
from snnconv.targets.target import Target

__all__ = ["PartitionReport"]

# The utilization columns: the report's key and the resource of snnconv.limits it is of.
UTILIZATION = (("neuron_util", "neurons"), ("axon_util", "input_axons"), ("output_axon_util", "output_axons"),
               ("memory_util", "memory_bits"))


@dataclass
class PartitionReport:
    target: str
    layers: list[dict] = field(default_factory=list)
    chips: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    core_utilization: list[dict[str, float]] = field(default_factory=list, repr=False)  # per core index
    one_d: bool = False  # a 1-D network (Input.one_d): feature maps (C, 1, L) are shown as (C, L)
    integer_weights: list[dict] = field(default_factory=list)  # QDQ models: per layer, quantizer's integers kept?
    fake_quant_effect: dict | None = None  # QDQ models: what folding the activation quantizers changed
    burn_in: int | None = None  # the first steps the readout leaves out (``Output.burn_in``)

    @classmethod
    def from_graph(cls, graph: Graph, target: Target) -> PartitionReport:
        mapping: Mapping | None = graph.fact("mapping")
        if mapping is None:
            raise BadGraphError(f"graph {graph.name!r} has no mapping; run partition and place first")
        bounds = Limits.of(target)
        uses = limits.core_uses(mapping.cores, traffic(graph, mapping.cores, {}))
        shares = [limits.utilization(use, bounds.capacity(core)) for core, use in zip(mapping.cores, uses)]
        kept = [{"layer": name, **record} for name, record in (graph.fact("integer_weights") or {}).items()]
        return cls(target.name, _layers(graph, mapping, shares), _chips(mapping, shares),
                   _totals(mapping, shares, target), shares, graph.input.one_d, kept, graph.fact("fake_quant_effect"),
                   graph.output.burn_in)

    network: object = field(default=None, repr=False, compare=False)  # the CompiledNetwork, for to_html

    def to_dict(self) -> dict:
        qdq = {"integer_weights": self.integer_weights} if self.integer_weights else {}
        if self.fake_quant_effect:
            qdq["fake_quant_effect"] = self.fake_quant_effect
        readout = {"burn_in": self.burn_in} if self.burn_in else {}
        return {"target": self.target, "layers": self.layers, "chips": self.chips, "totals": self.totals, **readout,
                **qdq}

    def to_html(self, run=None, accuracy: dict | None = None) -> str:
        """The report as one self-contained HTML page with pictures (``snnconv.html_report``)."""
        from snnconv import html_report

        if self.network is None:
            raise BadGraphError("this report was built from a bare graph; use CompiledNetwork.report for HTML")
        return html_report.render(self.network, run, accuracy)

    def render(self) -> str:
        header = ["layer", "kind", "neurons", "synapses", "cores", "tile (c,l)" if self.one_d else "tile (c,h,w)",
                  "groups", "neuron %", "axon %", "out axon %", "memory %"]
        rows = [[r["layer"], r["kind"], f"{r['neurons']:,}", f"{r['synapses']:,}", f"{r['cores']:,}",
                 "x".join(map(str, _shown_tile(r, self.one_d))), r["input_groups"], *_percentages(r)]
                for r in self.layers]
        t = self.totals
        totals = ["total", "", f"{t['neurons']:,}", f"{t['synapses']:,}", f"{t['cores']:,}", "", "",
                  *_percentages(t)]
        lines = [f"Partition for {self.target}: {t['cores']:,} cores on {t['chips']} chip(s) "
                 f"({t['cores_per_chip']} cores each)", "", render_table(header, rows, totals), ""]
        lines.append(render_table(["chip", "cores", "neurons", "neuron %", "messages out/step", "to other chips"],
                                  [[c["chip"], c["cores"], f"{c['neurons']:,}", _pct(c["neuron_util"]),
                                    f"{c['messages_out']:,.0f}", f"{c['messages_across']:,.0f}"]
                                   for c in self.chips]))
        lines += ["", f"messages per step: {t['messages_within_chip']:,.0f} within chips, "
                      f"{t['messages_across_chips']:,.0f} across chips (upper bounds; rates from "
                      f"{t['traffic_rates']})"]
        if self.burn_in:
            lines.append(f"readout: the first {self.burn_in} steps left out (the host reads the output integrals "
                         f"after step {self.burn_in} and after the last step)")
        return "\n".join(lines + _qdq_lines(self.integer_weights, self.fake_quant_effect))


def _qdq_lines(kept: list[dict], effect: dict | None) -> list[str]:
    """The QDQ model's rows: per layer whether the quantizer's integer weights were kept; the activation pairs."""
    lines = []
    if kept:
        rows = [[r["layer"], r["grid"] or "none", "yes" if r["kept"] else "no", f"{r['relative_rms']:.3%}",
                 r["reason"]] for r in kept]
        lines += ["", "Quantizer's integer weights on the chip:",
                  render_table(["layer", "grid", "kept", "weights RMS diff", "why"], rows)]
    if effect:
        lines.append("")
        lines.append(f"activation quantizers folded: top-1 agreement {effect['top1_agreement']:.1%}, output RMS "
                     f"difference {effect['relative_rms']:.3%} on {effect['samples']} samples ({effect['how']})"
                     if effect.get("measured") else f"activation quantizers folded: not measured ({effect['reason']})")
    return lines


def _shown_tile(row: dict, one_d: bool) -> list[int]:
    """A row's tile as its (c, h, w) box, or in a 1-D network (h is 1) as (c, l), or (f,) for a vector layer."""
    tile = row["tile"]
    return tile if not one_d else [tile[0], tile[2]] if len(row["shape"]) > 1 else [tile[0]]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _percentages(row: dict) -> list[str]:
    return [_pct(row[key]) for key, _ in UTILIZATION]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _means(shares: list[dict[str, float]]) -> dict[str, float]:
    """The mean utilization over ``shares`` (one per core), per column."""
    return {key: _mean([share[resource] for share in shares]) for key, resource in UTILIZATION}


def _layers(graph: Graph, mapping: Mapping, shares: list[dict[str, float]]) -> list[dict]:
    cores_of: dict[str, list[Core]] = {}
    neurons: dict[str, int] = {}
    synapses: dict[str, int] = {}
    groups: dict[str, int] = {}
    for core in mapping.cores:
        for tile in core.tiles:
            if not cores_of.get(tile.population) or cores_of[tile.population][-1] is not core:
                cores_of.setdefault(tile.population, []).append(core)
            neurons[tile.population] = neurons.get(tile.population, 0) + (tile.size if tile.group == 0 else 0)
            synapses[tile.population] = synapses.get(tile.population, 0) + tile.resources.synapses
            groups[tile.population] = tile.groups
    rows = []
    for name, shape in mapping.tile_shapes.items():
        rows.append({"layer": name, "kind": graph[name].kind, "shape": list(graph.user_shape(graph[name].shape)),
                     "neurons": neurons[name], "synapses": synapses[name],
                     "cores": len(cores_of[name]), "tile": list(shape), "input_groups": groups[name],
                     **_means([shares[core.index] for core in cores_of[name]])})
    return rows


def _chips(mapping: Mapping, shares: list[dict[str, float]]) -> list[dict]:
    rows = []
    per_chip = mapping.traffic.get("per_chip", {})
    for chip in sorted({core.chip for core in mapping.cores}):
        cores = [core for core in mapping.cores if core.chip == chip]
        out = per_chip.get(str(chip), {})
        rows.append({"chip": chip, "cores": len(cores), "neurons": sum(c.resources.neurons for c in cores),
                     "neuron_util": _mean([shares[c.index]["neurons"] for c in cores]),
                     "messages_out": out.get("out", 0.0), "messages_across": out.get("across", 0.0)})
    return rows


def _totals(mapping: Mapping, shares: list[dict[str, float]], target: Target) -> dict:
    return {"cores": len(mapping.cores), "chips": mapping.chips, "cores_per_chip": target.chip.cores,
            "neurons": sum(t.size for c in mapping.cores for t in c.tiles if t.group == 0),
            "compartments": sum(c.resources.neurons for c in mapping.cores),
            "synapses": sum(c.resources.synapses for c in mapping.cores),
            **_means(shares),
            "messages_within_chip": mapping.traffic.get("within_chip", 0.0),
            "messages_across_chips": mapping.traffic.get("across_chips", 0.0),
            "hop_weighted_messages": mapping.traffic.get("hop_weighted", 0.0),
            "traffic_rates": mapping.traffic.get("rates", "fan-out counts")}
