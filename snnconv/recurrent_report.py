"""The report of a recurrent network (``snnconv.recurrent_network``): its streaming semantics and its cores.

What ``snnconv report`` (and ``compile``) prints for a recurrent network, and ``--json``
as ``to_dict()``: the semantics a reader needs to feed it (``L`` items per sequence, each
presented for ``K`` steps per item, a sequence taking ``L K`` steps; the recurrent synapses
delayed ``K`` steps; the hidden membranes carried from item to item, clipped to
``[0, theta]`` at each item's first step; the outputs read and reset at the end of each
item, the last item's the prediction), the quantization (threshold, state bits, the
hidden scale ``lambda_h``; per layer where layers are stacked), the worst-case hidden membranes for inputs in ``[0, 1]``
(``recurrent.membrane_range``), and per core its population, neurons, input and output
axons, synapse memory and routes (its own core included: the recurrent synapses) with
their utilization of the target's core (the smallest core where a chip's cores differ,
as ``recurrent.partition`` sizes them).
"""

from __future__ import annotations

from dataclasses import dataclass

from snnconv import recurrent
from snnconv.table import render_table

__all__ = ["RecurrentReport"]


@dataclass
class RecurrentReport:
    network: object  # the RecurrentNetwork

    def to_dict(self) -> dict:
        net, program = self.network, self.network.program
        core = net.target.core
        capacity = {"neurons": _smallest(core.neurons), "input_axons": core.input_axons,
                    "output_axons": core.output_axons, "memory_bits": _smallest(core.synapse_memory_bits)}
        cores = [_core_row(c, program.compartments, capacity) for c in program.cores]
        low, high = recurrent.membrane_range(program)
        return {"target": net.target.name, "kind": "recurrent", "model": net.options.get("model", net.name),
                "semantics": _semantics(program), "steps_per_item": program.steps_per_item, "items": program.items,
                "timesteps_per_sequence": program.steps_per_item * program.items,
                "populations": {"hidden": program.hidden_total, "layers": list(program.sizes),
                                "outputs": len(program.output_weight), "features": program.input_weight.shape[1]},
                "quantization": {"threshold": program.threshold, "v_init": program.v_init,
                                 "thresholds": [program.threshold, *(layer.threshold for layer in program.upper)],
                                 "state_bits": program.state_bits, "compartments": program.compartments,
                                 **{k: v for k, v in program.notes.items()
                                    if k in ("lambda_h", "lambda_layers", "percentile")}},
                "hidden_membrane_range": {"inputs": [0.0, 1.0], "low": low, "high": high,
                                          "saturates": _saturates(program, low, high)},
                "cores": cores, "capacity": capacity,
                "totals": {"cores": len(cores), "neurons": sum(row["neurons"] for row in cores),
                           "synapses": _synapses(program)},
                "ann": {key: value for key, value in net.ann.items() if key in ("macs", "energy_uj")}}

    def render(self) -> str:
        data = self.to_dict()
        rows = [[row["core"], row["population"], f"{row['first']}-{row['last']}", f"{row['neurons']:,}",
                 _pct(row["neuron_util"]), _pct(row["axon_util"]), _pct(row["output_axon_util"]),
                 _pct(row["memory_util"]), ",".join(map(str, row["routes"])) or "-"] for row in data["cores"]]
        table = render_table(["core", "population", "neurons", "count", "neurons %", "in axons %", "out axons %",
                              "memory %", "routes"], rows)
        q, ranges = data["quantization"], data["hidden_membrane_range"]
        sizes = data["populations"]
        layers = sizes["layers"]
        hidden = f"{sizes['hidden']}" if len(layers) == 1 else \
            f"{' + '.join(map(str, layers))} ({len(layers)} stacked layers of)"
        title = (f"recurrent network {data['model']} on {data['target']}: {sizes['features']} features per item -> "
                 f"{hidden} recurrent IF neurons -> {sizes['outputs']} output integrators, "
                 f"{data['totals']['cores']} cores")
        thresholds = f"threshold {q['threshold']:g}" if len(layers) == 1 else \
            f"thresholds {', '.join(f'{t:g}' for t in q['thresholds'])} (bottom to top)"
        scales = f", lambda_h {q['lambda_h']:.4g}" if "lambda_layers" not in q else \
            f", lambda {', '.join(f'{s:.4g}' for s in q['lambda_layers'])}"
        lines = [title, data["semantics"], table,
                 f"{thresholds}, state {q['state_bits'] or 'float'} bits, v_init {q['v_init']:g}"
                 + (f"{scales} (percentile {q['percentile']:g})" if "lambda_h" in q else ""),
                 f"hidden membranes for inputs in [0, 1]: [{ranges['low']:,.0f}, {ranges['high']:,.0f}]"
                 + (" (may saturate: counted by run)" if ranges["saturates"] else " (within the state bits)")]
        if data["ann"]:
            lines.append(f"ANN: {data['ann']['macs']:,} MACs per sequence "
                         f"({data['ann']['macs'] // data['items']:,} per item)")
        return "\n".join(lines)


def _semantics(program) -> str:
    k, items = program.steps_per_item, program.items
    return (f"streaming: {items} items per sequence, each presented for K = {k} steps per item ({items * k:,} steps "
            f"per sequence); recurrent synapses delayed K = {k} steps; hidden membranes carried across items, "
            "clipped to [0, threshold] at each item's first step; outputs read and reset at the end of each item, "
            "the last item's is the prediction"
            + ("; each stacked layer reads the spikes the layer below fires in the same step, its own K steps "
               "later, and a constant bias" if program.upper else ""))


def _synapses(program) -> int:
    sizes, classes = program.sizes, len(program.output_weight)
    return sum(h * (h + (sizes[l - 1] if l else 0)) for l, h in enumerate(sizes)) + sizes[-1] * classes


def _core_row(core, compartments: int, capacity: dict) -> dict:
    neurons = (core.neurons[1] - core.neurons[0]) * (compartments if core.population == "hidden" else 1)
    return {"core": core.index, "population": core.population, "first": core.neurons[0],
            "last": core.neurons[1] - 1, "neurons": neurons, "input_axons": core.input_axons,
            "output_axons": core.output_axons, "memory_bits": core.memory_bits, "routes": list(core.routes),
            "neuron_util": neurons / capacity["neurons"], "axon_util": core.input_axons / capacity["input_axons"],
            "output_axon_util": core.output_axons / capacity["output_axons"],
            "memory_util": core.memory_bits / capacity["memory_bits"]}


def _smallest(value):
    return min(value) if isinstance(value, tuple) else value


def _saturates(program, low: float, high: float) -> bool:
    if not program.state_bits:
        return False
    return low < -(2 ** (program.state_bits - 1)) or high > 2 ** (program.state_bits - 1) - 1


def _pct(share: float) -> str:
    return f"{100 * share:.1f}"
