"""``snnconv bench --html``: one self-contained page with the latency-energy plane and the tables behind it.

Why a picture: latency and energy trade against each other, and a configuration is only
better than another if it is lower on both or on their product. The plane shows every
configuration as one point on log-log axes (latency per inference across, energy per
inference up), its accuracy written beside it, with lines of equal energy-delay product
(``E x t = constant`` is a line of slope -1 on log-log axes): points below a line beat
everything on it. An ANN measured here whose energy this machine cannot meter is a
vertical line at its latency. Configurations that do not run are in the table with why.

The page reuses the partitioning report's style sheet and picture embedding
(``snnconv.html_report``): inline CSS, PNG pictures as ``data:`` URLs, no script, the
same bytes for the same inputs.
"""

from __future__ import annotations

import math

import numpy as np

from snnconv import benchmark_text
from snnconv.html_report import _CSS, _duration, _e, _energy, _image, _new_figure, _require_matplotlib, _table

__all__ = ["render"]

_WRAP = "#sources-table td, #measured-table td { white-space: normal; min-width: 9ch; }"  # long sources wrap
_PLANE_NOTE = ("Log-log. Each point is one configuration, labelled with its accuracy on the data (or its agreement "
               "with the ANN where the data has no labels). Dashed grey lines join equal energy-delay products (EDP = "
               "energy x latency); lower left is better. Circles: the SNN on the chip model; squares: the ANN modeled "
               "on a reference platform; vertical lines: the ANN measured on this machine, whose energy it cannot "
               "meter. A target without costs (ideal) models zero and is in the tables only.")
_LABEL_OFFSETS = ((6, 3), (6, -21), (-6, 3), (-6, -21))  # points: right above, right below, left above, left below
_LABEL_CHAR_PT, _LABEL_LINES_PT = 4.3, 19.0  # a 7.5 pt character's width, two lines' height
_SYSTEM_STYLE = {"snn": ("o", None), "ann": ("s", "#8c8c8c")}  # marker, colour (None: one per target)


def render(bench) -> str:
    """The benchmark ``bench`` (a ``snnconv.benchmark.Bench``) as one HTML document."""
    _require_matplotlib()
    rows = bench.rows()
    sections = [("plane", "Latency and energy per inference",
                 _image("plane-image", "latency-energy plane", _plane_figure(rows)), _PLANE_NOTE),
                ("configurations", "Configurations", _summary_table(rows) + _refusals(rows),
                 ("Per inference at batch size 1. 'Modeled' figures come from the sources listed at the end; "
                  "'measured here' from runs on this machine.")),
                ("split", "Energy split", _split_table(rows),
                 ("The SNN's energy by synaptic operations, neuron updates, routing (spike hops and chip "
                  "crossings) and static power over the latency; the ANN's by arithmetic, memory traffic (on-chip "
                  "and DRAM) and static power.")),
                ("measured", "The ANN measured here", _measured_table(bench.measured),
                 f"Batch 1, one thread, runtimes interleaved in blocks. Energy: {bench.measured['energy_source']}."),
                ("sources", "Sources of every modeled number", _sources_table(bench), "")]
    return _page(bench, sections)


# ---------------------------------------------------------------------------- the plane


def _plane_figure(rows: list[dict]):
    """Every configuration with a latency on log-log axes; iso-EDP lines; accuracy beside each point."""
    fig = _new_figure(9.5, 6.0)
    ax = fig.subplots()
    points = [row for row in rows if row["latency_us"] and row["energy_uj"]]  # log axes: zero (ideal) left out
    colors = _target_colors(points)
    lines = [row for row in rows if row["latency_us"] and row["energy_uj"] is None]
    x_range, y_range = _limits([r["latency_us"] for r in points + lines]), _limits([r["energy_uj"] for r in points])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    for row in points:
        marker, color = _SYSTEM_STYLE[row["system"]]
        ax.scatter(row["latency_us"], row["energy_uj"], marker=marker, s=60, zorder=3,
                   color=color or colors[row["target"]], edgecolor="white", linewidth=0.8)
    _label_points(ax, points, colors)
    for row in lines:
        ax.axvline(row["latency_us"], color="#8c8c8c", linestyle=":", linewidth=1.2)
        ax.annotate(f"{row['name']}\n{_duration(row['latency_us'])}, energy not measurable here",
                    (row["latency_us"], y_range[0]), xytext=(3, 4), textcoords="offset points", rotation=90,
                    fontsize=7, color="#59636e", va="bottom")
    _iso_edp(ax, points, x_range, y_range)
    _legend(ax)
    ax.set_xlabel("latency per inference (µs)")
    ax.set_ylabel("energy per inference (µJ)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _label_points(ax, points: list[dict], colors: dict[str, tuple]) -> None:
    """Each point's name and accuracy beside it, in the point's colour, on the first side (right or left, above or
    below) where the label overlaps no label placed before; sizes are estimated in points from the text's length."""
    to_points = 72 / ax.figure.dpi
    placed: list[tuple[float, float, float, float]] = []
    for row in sorted(points, key=lambda r: r["latency_us"]):
        text = f"{row['name']}\n{_label(row)}"
        x, y = ax.transData.transform((row["latency_us"], row["energy_uj"])) * to_points
        width, height = _LABEL_CHAR_PT * max(map(len, text.splitlines())), _LABEL_LINES_PT
        boxes = [(dx, dy, (x + dx - width if dx < 0 else x + dx), y + dy) for dx, dy in _LABEL_OFFSETS]
        free = [b for b in boxes if not any(_overlap((b[2], b[3], width, height), other) for other in placed)]
        dx, dy, left, bottom = (free or boxes)[0]
        placed.append((left, bottom, width, height))
        ax.annotate(text, (row["latency_us"], row["energy_uj"]), xytext=(dx, dy), textcoords="offset points",
                    fontsize=7.5, color=colors.get(row["target"], "#333333"), ha="right" if dx < 0 else "left",
                    va="bottom")


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two (left, bottom, width, height) boxes overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _iso_edp(ax, points: list[dict], x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
    """Dashed lines of constant EDP, one per decade spanned by the points, labelled where they leave the plot.

    With latency in µs and energy in µJ, ``EDP [J s] = E [µJ] x t [µs] x 1e-12``, so a line
    is ``E = EDP x 1e12 / t``.
    """
    if not points:
        return
    products = [row["edp_js"] for row in points]
    low, high = math.floor(math.log10(min(products))) - 1, math.ceil(math.log10(max(products))) + 1
    xs = np.geomspace(*x_range, 64)
    for decade in range(low, high + 1):
        ys = 10.0**decade * 1e12 / xs
        inside = (ys >= y_range[0]) & (ys <= y_range[1])
        if not inside.any():
            continue
        ax.plot(xs, ys, color="#c8ccd0", linestyle="--", linewidth=0.9, zorder=1)
        last = np.flatnonzero(inside)[-1]
        ax.annotate(f"EDP $10^{{{decade}}}$ J s", (xs[last], ys[last]), fontsize=7, color="#8c959f", ha="right",
                    va="bottom", rotation=-30)


def _legend(ax) -> None:
    from matplotlib.lines import Line2D

    grey = "#8c8c8c"
    handles = [Line2D([], [], marker="o", linestyle="", color="#4c72b0", label="SNN on the chip model (modeled)"),
               Line2D([], [], marker="s", linestyle="", color=grey, label="ANN on a reference platform (modeled)"),
               Line2D([], [], linestyle=":", color=grey, label="ANN measured here (latency only)"),
               Line2D([], [], linestyle="--", color="#c8ccd0", label="equal energy-delay product")]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)


def _limits(values: list[float]) -> tuple[float, float]:
    """A log axis range around ``values``, a factor of 4 beyond them on each side."""
    known = [v for v in values if v and v > 0]
    if not known:
        return 0.1, 10.0
    return min(known) / 4, max(known) * 4


def _target_colors(points: list[dict]) -> dict[str, tuple]:
    """One colour per SNN target, from matplotlib's tab10."""
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    names = sorted({row["target"] for row in points if row["target"] is not None})
    return {name: palette(i % 10) for i, name in enumerate(names)}


def _label(row: dict) -> str:
    if row["accuracy"] is not None:
        return f"accuracy {benchmark_text.percent(row['accuracy'])}"
    if row["agreement_with_ann"] is not None:
        return f"agrees with ANN {benchmark_text.percent(row['agreement_with_ann'])}"
    return "accuracy not measured"


# ---------------------------------------------------------------------------- tables


def _summary_table(rows: list[dict]) -> str:
    body = [[_e(row["name"]), _e(row["how"]), _e(_duration(row["latency_us"])) if row["latency_us"] is not None
             else "-", _e(_energy(row["energy_uj"])) if row["energy_uj"] is not None else _unmetered(row),
             _e(_energy(row["dynamic_energy_uj"])) if row["dynamic_energy_uj"] is not None else "-",
             _e(benchmark_text.edp(row["edp_js"])), _e(benchmark_text.percent(row["accuracy"])),
             _e(benchmark_text.percent(row["agreement_with_ann"]))] for row in rows]
    return _table("bench-table", ["configuration", "how", "latency", "energy", "dynamic", "EDP", "accuracy",
                                  "same as ANN"], body, numeric={2, 3, 4, 5, 6, 7})


def _refusals(rows: list[dict]) -> str:
    """Why each configuration that does not run does not, under the table."""
    return "".join(f'<p class="source">{_e(row["name"])}: {_e(row["reason"])}</p>' for row in rows if row["reason"])


def _unmetered(row: dict) -> str:
    return _e(benchmark_text.NOT_MEASURABLE) if row["how"] == "measured here" else "-"


def _split_table(rows: list[dict]) -> str:
    body = [[_e(row["name"]), *map(_e, benchmark_text.split_cells(row["energy_split_uj"]))]
            for row in rows if row["energy_split_uj"]]
    return _table("split-table", ["configuration", "synaptic / arithmetic", "neuron updates", "routing / memory",
                                  "static"], body, numeric={1, 2, 3, 4})


def _measured_table(measured: dict) -> str:
    body = [[_e(r["runtime"]), f"{r['runs']:,}", _e(_duration(r["median_us"])), _e(_duration(r["p10_us"])),
             _e(_duration(r["p90_us"])), _e(_energy(r["energy_uj"])) if r["energy_uj"] is not None
             else _e(benchmark_text.NOT_MEASURABLE), _e(r["how"])] for r in measured["runtimes"]]
    body += [[_e(name), "0", "-", "-", "-", "-", _e(f"not measured: {why}")]
             for name, why in measured["unavailable"].items()]
    return _table("measured-table", ["runtime", "runs", "median", "p10", "p90", "energy", "how"], body,
                  numeric={1, 2, 3, 4, 5})


def _sources_table(bench) -> str:
    rows = [[_e(part) for part in line.split(": ", 1)] for line in benchmark_text.source_lines(bench)]
    return _table("sources-table", ["system / parameter", "source"], rows)


# ---------------------------------------------------------------------------- page


def _page(bench, sections: list[tuple[str, str, str, str]]) -> str:
    from snnconv.version import __version__

    rows, best = {row["name"]: row for row in bench.rows()}, bench.best()
    cards = [(label, _duration if key == "latency_us" else _energy if key == "energy_uj" else benchmark_text.edp,
              key, best[key]) for label, key in (("lowest latency", "latency_us"), ("lowest energy", "energy_uj"),
                                                 ("lowest EDP", "edp_js"))]
    summary = "".join(f'<div class="card"><div class="label">{_e(label)}</div>'
                      f'<div class="value">{_e(unit(rows[name][key]) if name else "-")}</div>'
                      f'<div class="detail">{_e(name or "")}</div></div>' for label, unit, key, name in cards)
    if bench.ann_accuracy is not None:
        summary += (f'<div class="card"><div class="label">ANN accuracy</div><div class="value">'
                    f'{_e(benchmark_text.percent(bench.ann_accuracy))}</div><div class="detail">on '
                    f'{bench.samples:,} samples</div></div>')
    contents = " · ".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>' + (f'<p class="note">{_e(note)}</p>' if note else "")
                   + f"{html}</section>" for key, title, html, note in sections)
    title = f"{bench.model}: one inference at batch 1"
    settings = bench.settings
    subtitle = (f"activity from {settings['activity_from']} ({bench.samples:,} samples); SNNs compiled with "
                f"tune={settings['tune']} on {settings['calibration_samples']} calibration samples")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · snnconv bench</title>
<link rel="icon" href="data:,">
<style>{_CSS}{_WRAP}</style>
</head>
<body>
<main>
<header><div class="kicker">snnconv bench</div><h1>{_e(title)}</h1><p class="subtitle">{_e(subtitle)}</p>
</header>
<div id="summary" class="cards">{summary}</div>
<nav>{contents}</nav>
{body}
<footer>snnconv {_e(__version__)} · every figure is measured on this machine (said so) or modeled from a listed source</footer>
</main>
</body>
</html>
"""
