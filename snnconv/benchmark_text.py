"""``snnconv bench`` for a terminal: the configurations, the energy split, the measurements, every source.

Why a module of its own: the benchmark's numbers (``snnconv.benchmark``) are one thing,
how a terminal shows them another, as the HTML page (``benchmark_html``) is a third.
"""

from __future__ import annotations

from snnconv.html_report import _duration, _energy
from snnconv.table import render_table

__all__ = ["edp", "percent", "render", "sequence_table", "source_lines", "split_cells"]

NOT_MEASURABLE = "not measurable here"


def render(bench) -> str:
    rows = bench.rows()
    parts = [_title(bench), _summary_table(rows), _split_table(rows), _measured_table(bench.measured),
             _best(bench.best())]
    if bench.settings.get("sequence"):
        parts.insert(2, sequence_table(bench))
    refused = [f"  {row['name']}: {row['reason']}" for row in rows if row["reason"]]
    if refused:
        parts.append("configurations that do not run:\n" + "\n".join(refused))
    parts.append("sources of every modeled number:\n" + "\n".join(f"  {line}" for line in source_lines(bench)))
    return "\n\n".join(parts)


def _title(bench) -> str:
    accuracy = "" if bench.ann_accuracy is None else f"; ANN accuracy {percent(bench.ann_accuracy)}"
    settings = bench.settings
    return (f"{bench.model}: one inference at batch 1, activity from {settings['activity_from']} "
            f"({bench.samples:,} samples){accuracy}\nSNNs compiled with tune={settings['tune']} on "
            f"{settings['calibration_samples']} calibration samples; EDP = energy x latency")


def _summary_table(rows: list[dict]) -> str:
    body = [[row["name"], row["how"] + (" (below)" if row["reason"] else ""),
             _duration(row["latency_us"]) if row["latency_us"] is not None else "-", _energy_cell(row),
             _energy(row["dynamic_energy_uj"]) if row["dynamic_energy_uj"] is not None else "-",
             edp(row["edp_js"]), percent(row["accuracy"]), percent(row["agreement_with_ann"])] for row in rows]
    return render_table(["configuration", "how", "latency", "energy", "dynamic", "EDP", "accuracy", "same as ANN"],
                        body)


def _energy_cell(row: dict) -> str:
    if row["energy_uj"] is not None:
        return _energy(row["energy_uj"])
    return NOT_MEASURABLE if row["how"] == "measured here" else "-"


def _split_table(rows: list[dict]) -> str:
    body = [[row["name"], *split_cells(row["energy_split_uj"])] for row in rows if row["energy_split_uj"]]
    return "energy per inference, split (SNN: synaptic ops, neuron updates, routing, static; ANN: arithmetic, " \
           "memory traffic, static)\n" + render_table(
               ["configuration", "synaptic / arithmetic", "neuron updates", "routing / memory", "static"], body)


def split_cells(split: dict) -> list[str]:
    """The four parts of an energy split in the order of the columns; "-" for a part the system has not."""
    cells = []
    for snn_key, ann_key in (("synaptic", "arithmetic"), ("neuron_update", None), ("routing", "memory"),
                             ("static", "static")):
        value = split.get(snn_key, split.get(ann_key) if ann_key else None)
        cells.append("-" if value is None else _energy(value))
    return cells


def _measured_table(measured: dict) -> str:
    body = [[r["runtime"], f"{r['runs']:,}", _duration(r["median_us"]), _duration(r["p10_us"]),
             _duration(r["p90_us"]), _energy(r["energy_uj"]) if r["energy_uj"] is not None else NOT_MEASURABLE,
             r["how"]] for r in measured["runtimes"]]
    lines = ["the ANN measured here, batch 1, one thread, runtimes interleaved in blocks",
             render_table(["runtime", "runs", "median", "p10", "p90", "energy", "how"], body),
             f"energy: {measured['energy_source']}"]
    if measured["cpu_pressure_avg10"] is not None:
        lines.append(f"CPU pressure after the runs (/proc/pressure/cpu some avg10): "
                     f"{measured['cpu_pressure_avg10']:.1f}% (high: other work competed)")
    lines += [f"{name}: not measured ({why})" for name, why in measured["unavailable"].items()]
    return "\n".join(lines)


def _best(best: dict) -> str:
    return (f"lowest latency: {best['latency_us'] or '-'}; lowest energy: {best['energy_uj'] or '-'}; "
            f"lowest EDP: {best['edp_js'] or '-'}")


def source_lines(bench) -> list[str]:
    """``system / parameter: source`` for every modeled figure: each target's costs, each platform's parameters."""
    lines, seen = [], set()
    for config in bench.snn:
        if config["runs"] and config["target"] not in seen:
            seen.add(config["target"])
            lines += [f"{config['target']} / {key}: {text}" for key, text in config["sources"].items()]
    for result in bench.platforms:
        lines += [f"{result['platform']} / {key}: {text}" for key, text in result["sources"].items()]
    return lines


def edp(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e} J s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def sequence_table(bench) -> str:
    """A sequence model's latency and energy per item and per sequence (``snnconv.benchmark_sequence``)."""
    items = bench.settings["sequence"]["items"]
    body = []
    for config in bench.snn:
        if config["runs"]:
            body.append([f"SNN {config['target']} {config['coding']} K={config['timesteps']} x {items} items",
                         _duration(config["per_item"]["latency_us"]), _duration(config["latency_us"]),
                         _energy(config["per_item"]["energy_uj"]), _energy(config["energy_uj"])])
    for result in bench.platforms:
        body.append([f"ANN {result['platform']}", _duration(result["per_item"]["latency_us"]),
                     _duration(result["latency_us"]), _energy(result["per_item"]["energy_uj"]),
                     _energy(result["energy_uj"])])
    for result in bench.measured["runtimes"]:
        energy = result["energy_uj"]
        body.append([f"ANN {result['runtime']} here", _duration(result["median_us"] / items),
                     _duration(result["median_us"]), "-" if energy is None else _energy(energy / items),
                     NOT_MEASURABLE if energy is None else _energy(energy)])
    return (f"per item and per sequence ({items} items; SNN: K steps per item; ANN: per sequence / items)\n"
            + render_table(["configuration", "latency / item", "latency / sequence", "energy / item",
                            "energy / sequence"], body))
