"""Accuracy against energy per inference, one curve per coding: the picture of ``snnconv eval``'s results.

A coding (rate-coded IF, graded spikes of some payload width, bursts, ...) trades
timesteps for accuracy, and timesteps cost energy; the question a reader brings is which
coding reaches a given accuracy for the least energy, so each coding is one curve through
its points in order of T (each point labelled with its T), energy on a log axis (codings
differ by factors, not by microjoules), and the ANN as a dashed line at its accuracy and a
marker at its own modeled energy. ``html_report`` embeds it where given an evaluation
(``Evaluation.to_dict()``, or the JSON of ``snnconv eval --json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from snnconv import files
from snnconv.errors import BadDataError

__all__ = ["figure", "has_energy", "read"]

_ANN_COLOR = "#8c8c8c"
MAX_FILE_BYTES = 16 << 20  # an evaluation is a few kB per row
ROW_FIELDS = ("coding", "timesteps", "accuracy", "energy_uj")  # what a plotted row needs


def read(path: str | Path) -> dict:
    """The JSON of ``snnconv eval --json`` from ``path``, its rows checked for what the plot reads."""
    data = files.read_input(path, "an evaluation (.json from snnconv eval --json)", BadDataError, MAX_FILE_BYTES)
    try:
        evaluation = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadDataError(f"{path}: not JSON ({exc}); write it with snnconv eval --json > FILE.json") from None
    rows = evaluation.get("snn") if isinstance(evaluation, dict) else None
    if not isinstance(rows, list) or not rows or not all(_plottable(row) for row in rows):
        raise BadDataError(f"{path}: not the output of snnconv eval --json (a list 'snn' of rows with "
                           f"{', '.join(ROW_FIELDS)}); write it with snnconv eval --json > FILE.json")
    return evaluation


def _plottable(row) -> bool:
    if not isinstance(row, dict) or not isinstance(row.get("coding"), str):
        return False
    numbers = [row.get(key) for key in ROW_FIELDS[1:]]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers) \
        and row["energy_uj"] > 0


def has_energy(evaluation: dict) -> bool:
    """Whether the evaluation's rows carry modeled energy (a curve needs it)."""
    rows = evaluation.get("snn") or []
    return bool(rows) and all(isinstance(row, dict) and row.get("energy_uj") is not None for row in rows)


def figure(evaluation: dict):
    """The figure (a matplotlib ``Figure``) of ``evaluation``'s rows: per coding, accuracy against energy."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for coding, rows in _curves(evaluation["snn"]).items():
        energy = [row["energy_uj"] for row in rows]
        accuracy = [100 * row["accuracy"] for row in rows]
        line, = ax.plot(energy, accuracy, marker="o", linewidth=2, label=coding)
        for row, x, y in zip(rows, energy, accuracy):
            ax.annotate(f"T={row['timesteps']}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8,
                        color=line.get_color())
    _ann(ax, evaluation)
    ax.set_xscale("log")
    ax.set_xlabel("modeled energy per inference (µJ)")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}%"))
    ax.grid(color="#e5e5e5", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(frameon=False, loc="best", fontsize=8.5)
    return fig


def _curves(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows per coding, in the order codings first appear, each coding's rows by T."""
    curves: dict[str, list[dict]] = {}
    for row in rows:
        curves.setdefault(row.get("coding", "snn"), []).append(row)
    return {coding: sorted(points, key=lambda row: row["timesteps"]) for coding, points in curves.items()}


def _ann(ax, evaluation: dict) -> None:
    """The ANN's accuracy as a dashed line, and where its own energy is known, a marker there."""
    accuracy = evaluation.get("ann_accuracy")
    if accuracy is None:
        return
    ax.axhline(100 * accuracy, color=_ANN_COLOR, linestyle="--", linewidth=1.2, label=f"ANN {100 * accuracy:.1f}%")
    energy = (evaluation.get("ann") or {}).get("energy_uj")
    if energy:
        ax.plot([energy], [100 * accuracy], marker="*", markersize=11, color=_ANN_COLOR, linestyle="none",
                label="ANN energy (MACs x E_MAC)")
