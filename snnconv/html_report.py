"""The partitioning report as one self-contained HTML page, with pictures where they say more than tables.

The page needs no network to be read: its style sheet is inline and its pictures are
PNG files drawn by matplotlib (Agg, through ``matplotlib.figure.Figure``, so pyplot's
global state is never touched) and embedded as base64 ``data:`` URLs. It shows:

- the chip mesh, one panel per chip used: each core coloured by its layer (striped with
  the colours of all its layers where several share it) and shaded by its utilization,
  the fullest of neurons, input axons, output axons and synapse memory (the resource
  that stopped the partitioner from putting more on it), of the core's own capacity;
- per-layer utilization bars and the per-layer and per-chip tables of ``PartitionReport``;
- with a ``RunResult``: spike rates per layer, synaptic operations per core on the mesh
  (the busiest core sets the step time), energy and latency beside the ANN's, the run's
  statistics and NeuroBench metrics;
- with measured accuracies: accuracy against timesteps, the ANN's as a reference line;
- with the results of ``snnconv eval`` over several codings: accuracy against modeled
  energy per inference, one curve per coding (``snnconv.html_codings``).

The same inputs give the same bytes (no timestamps; PNG metadata without the software
version), so reports can be diffed and checked in.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnconv import files, html_codings
from snnconv.errors import MissingDependencyError
from snnconv.limits import Limits
from snnconv.mapping import Core, Mapping

__all__ = ["MissingDependencyError", "render", "write"]

_DPI = 150  # pictures are drawn at 150 dpi and shown at 96 CSS pixels per inch: sharp on high-density screens
_FREE_CORE = (0.93, 0.93, 0.94)  # a mesh position with no core of this network
# The utilization shown: label, the report's key, the resource of snnconv.limits, colour.
_RESOURCES = (("neurons", "neuron_util", "neurons", "#4c72b0"), ("input axons", "axon_util", "input_axons", "#dd8452"),
              ("output axons", "output_axon_util", "output_axons", "#8172b3"),
              ("synapse memory", "memory_util", "memory_bits", "#55a868"))
_ANN_COLOR, _SNN_COLOR, _STATIC_COLOR = "#8c8c8c", "#4c72b0", "#a5bbdd"


@dataclass(frozen=True)
class _Section:
    id: str
    title: str
    body: str  # HTML
    note: str = ""  # plain text: how to read the section


def render(network, run=None, accuracy: dict | None = None, *, title: str | None = None,
           evaluation: dict | None = None) -> str:
    """The report of a ``CompiledNetwork`` as one HTML document.

    ``run``: a ``RunResult`` of the network, for spikes, traffic, energy and latency.
    ``accuracy``: ``{"ann": 0.985, "snn": {8: 0.90, 16: 0.97, 32: 0.985}}``, either part
    optional. ``title``: what the model is called (default: the graph's name).
    ``evaluation``: ``snnconv.evaluate(...).to_dict()`` (or ``snnconv eval --json``), whose
    rows per coding and T are drawn as accuracy against energy.
    """
    _require_matplotlib()
    partition = network.report
    report = partition.to_dict()
    mapping: Mapping = network.graph.fact("mapping")
    colors = _layer_colors([row["layer"] for row in report["layers"]])
    stats = run.stats if run is not None else {}
    fullness = [max(share[resource] for _, _, resource, _ in _RESOURCES) for share in partition.core_utilization]
    sections = _partition_sections(network, report, mapping, colors, fullness)
    if run is not None:
        sections += _run_sections(network, run, mapping, colors)
    if accuracy and accuracy.get("snn"):
        sections.append(_Section("accuracy", "Accuracy against timesteps", _image(
            "accuracy-image", "accuracy against timesteps", _accuracy_figure(accuracy)),
            "The SNN on the chip model at each number of timesteps T; the ANN's accuracy dashed."))
    if evaluation and html_codings.has_energy(evaluation):
        sections.append(_Section("codings", "Accuracy against energy, per coding", _image(
            "codings-image", "accuracy against energy per coding", html_codings.figure(evaluation)),
            f"Each coding compiled and run on the {evaluation.get('target', 'target')} chip model at each T "
            f"(on {evaluation.get('samples', '?'):,} samples); energy modeled per inference, on a log axis. "
            "Up and to the left is better; the ANN's accuracy dashed."))
    sections += _table_sections(report, run, mapping, colors)
    heading = title or network.graph.name
    return _page(f"{heading} on {network.target.name}", [network.target.description, _limits(network.target)],
                 _summary(report, stats, accuracy, run), sections)


def write(network, path: str | Path, run=None, accuracy: dict | None = None, *, title: str | None = None,
          evaluation: dict | None = None) -> Path:
    """Write ``render(...)`` to ``path`` atomically (``snnconv.files.atomic_write``), with the umask's permissions."""
    files.check_outputs({"the HTML report": path})
    text = render(network, run, accuracy, title=title, evaluation=evaluation)
    return files.atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _require_matplotlib() -> None:
    """matplotlib is imported here, on first use, so that the rest of snnconv works without it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the HTML report draws its pictures with matplotlib, which is not installed; "
                                     "run `pip install matplotlib`") from None


# ---------------------------------------------------------------------------- sections


def _partition_sections(network, report: dict, mapping: Mapping, colors: dict[str, tuple],
                        fullness: list[float]) -> list[_Section]:
    """Pictures of the partition itself: the mesh and the utilization per layer."""
    mesh = _image("mesh-image", "chip mesh", _mesh_figure(network, mapping, colors, fullness))
    utilization = _image("utilization-image", "utilization per layer", _utilization_figure(report["layers"]))
    return [_Section("mesh", "Cores on the chip mesh", mesh,
                     "Each square is a core, coloured by the layer it holds and shaded by how full it is (the "
                     "fullest of neurons, input axons, output axons and synapse memory). A core that several "
                     "layers share is striped; grey positions are free."),
            _Section("utilization", "Utilization per layer", utilization,
                     "Mean over the cores each layer is on; of each core's capacity on the target.")]


def _run_sections(network, run, mapping: Mapping, colors: dict[str, tuple]) -> list[_Section]:
    """Pictures that need a run: spike rates, activity per core, energy and latency."""
    stats = run.stats
    layers = [layer.name for layer in network.graph if layer.name in run.spike_counts]
    sections = []
    if layers:
        sections.append(_Section("spikes", "Spike rates per layer", _image(
            "spikes-image", "spike rates per layer", _spike_figure(run, layers, colors)),
            f"Spikes per neuron per timestep, averaged over the samples of the run (T = {run.timesteps}); "
            "the share of neurons that never fired is written beside each bar."))
    if "per_core" in stats:
        ops = np.asarray(stats["per_core"]["synaptic_ops"]) / run.timesteps
        sections.append(_Section("activity", "Synaptic operations per core", _image(
            "activity-image", "synaptic operations per core", _activity_figure(network, mapping, ops)),
            "Per timestep and inference. Cores work in parallel and a step ends when the busiest core "
            "(outlined) is done."))
    if "energy_uj" in stats:
        figure = _image("cost-image", "energy and latency beside the ANN", _cost_figure(stats, network.target.name))
        sections.append(_Section("cost", "Energy and latency per inference", figure + _cost_sources(stats),
                                 "The SNN's energy is dynamic (synaptic operations, neuron updates, spike hops) "
                                 "plus static power over the latency; the ANN's is its multiply-accumulates."))
    return sections


def _table_sections(report: dict, run, mapping: Mapping, colors: dict[str, tuple]) -> list[_Section]:
    """The numbers behind the pictures, as tables."""
    sections = [_Section("layers", "Layers", _layer_table(report, run, colors)),
                _Section("chips", "Chips", _chip_table(report, run, mapping),
                         "Messages are per timestep, upper bounds at the rates from "
                         f"{report['totals']['traffic_rates']}.")]
    if run is not None and run.stats:
        tables = [("Chip model", _run_table(run))]
        if run.stats.get("neurobench"):
            tables.append(("NeuroBench metrics", _metrics_table(run.stats["neurobench"])))
        body = "".join(f"<div><h3>{_e(caption)}</h3>{table}</div>" for caption, table in tables)
        sections.append(_Section("run", "Run statistics", f'<div class="columns">{body}</div>',
                                 "Per inference, the mean over the samples of the run. The chip's figures are "
                                 "modeled from the target's costs per operation (see `snnconv targets`); the "
                                 "NeuroBench metrics follow NeuroBench's names and definitions."))
    return sections


def _summary(report: dict, stats: dict, accuracy: dict | None, run) -> list[tuple[str, str, list[str]]]:
    """The summary cards: (label, value, detail lines) for the figures a reader looks for first."""
    totals = report["totals"]
    chips = f"{totals['chips']} chip" + ("s" if totals["chips"] != 1 else "")
    cards = [("cores", f"{totals['cores']:,}", [f"on {chips}", f"{totals['cores_per_chip']:,} cores per chip"]),
             ("neurons", f"{totals['neurons']:,}", [f"{totals['synapses']:,} synapses"]),
             ("utilization", _percent(totals["neuron_util"]),
              ["of neurons", f"axons {_percent(totals['axon_util'])}", f"memory {_percent(totals['memory_util'])}"])]
    ann = stats.get("ann", {})
    if "energy_uj" in stats:
        cards.append(("energy", _energy(stats["energy_uj"]), _versus_ann(ann.get("energy_uj"), _energy)))
        cards.append(("latency", _duration(stats["latency_us"]), _versus_ann(ann.get("latency_us"), _duration)))
    if accuracy:
        cards.append(_accuracy_card(accuracy, run.timesteps if run is not None else None))
    return cards


def _versus_ann(value: float | None, unit) -> list[str]:
    return ["per inference"] + ([] if value is None else [f"ANN {unit(value)}"])


def _accuracy_card(accuracy: dict, timesteps: int | None) -> tuple[str, str, list[str]]:
    """SNN accuracy at the run's T (or the largest T measured), and the ANN's."""
    snn = _by_timesteps(accuracy.get("snn", {}))
    ann = [f"ANN {_percent(accuracy['ann'])}"] if accuracy.get("ann") is not None else []
    if not snn:
        return ("ANN accuracy", _percent(accuracy["ann"]), [])
    steps = timesteps if timesteps in snn else max(snn)
    return ("accuracy", _percent(snn[steps]), [f"SNN at T = {steps}", *ann])


def _by_timesteps(values: dict) -> dict[int, float]:
    """Accuracies keyed by T as integers (JSON gives the keys as strings)."""
    return {int(steps): float(value) for steps, value in sorted(values.items(), key=lambda kv: int(kv[0]))}


def _cost_sources(stats: dict) -> str:
    """Where the ANN's figures come from, as small print under the picture."""
    ann = stats.get("ann", {})
    lines = [f"ANN {what}: {ann[key]}." for what, key in (("energy", "source"), ("latency", "latency_source"))
             if ann.get(key)]
    return "".join(f'<p class="source">{_e(line)}</p>' for line in lines)


# ---------------------------------------------------------------------------- pictures


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _tidy(ax) -> None:
    """A light frame: no top/right spines, a faint grid behind the bars."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.tick_params(length=0)


def _layer_colors(layers: list[str]) -> dict[str, tuple]:
    """One colour per layer, in network order: tab10, tab20 for more layers, then evenly spaced hues."""
    from matplotlib import colormaps

    if len(layers) <= 20:
        palette = colormaps["tab10" if len(layers) <= 10 else "tab20"]
        return {name: palette(i)[:3] for i, name in enumerate(layers)}
    palette = colormaps["turbo"]
    return {name: palette(i / (len(layers) - 1))[:3] for i, name in enumerate(layers)}


def _mesh_panels(network, mapping: Mapping, legend_rows: int = 0):
    """A figure with one axes per chip used, titled, ticks off; (figure, {chip: axes}).

    Panels go at least four to a row (more for many chips, the grid of panels about
    square), at most 8 inches of panels across and 4 inches tall, so a wide mesh, a
    square one and a 48-chip system all stay readable.
    """
    rows, cols = network.target.chip.mesh
    chips = sorted({core.chip for core in mapping.cores})
    per_row = min(len(chips), max(4, math.ceil(math.sqrt(len(chips)))))
    panel_width = min(8.0 / per_row, 4.0 * cols / rows)
    panel_height = panel_width * rows / cols
    panel_rows = math.ceil(len(chips) / per_row)
    fig = _new_figure(per_row * panel_width + 1.6, panel_rows * (panel_height + 0.4) + 0.3 * legend_rows + 0.2)
    grid = fig.subplots(panel_rows, per_row, squeeze=False)
    axes = {}
    for slot, ax in enumerate(grid.flat):
        if slot >= len(chips):
            ax.set_visible(False)
            continue
        chip = chips[slot]
        used = sum(core.chip == chip for core in mapping.cores)
        ax.set_title(f"chip {chip}: {used} of {network.target.chip.cores} cores", loc="left",
                     fontsize=10 if panel_width >= 2 else 7.5)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        axes[chip] = ax
    return fig, axes


def _cell_lines(ax, mesh: tuple[int, int]) -> None:
    """White lines between the cells so neighbouring cores of one layer stay apart (left out on huge meshes)."""
    rows, cols = mesh
    if rows * cols > 2500:
        return
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5 if rows * cols <= 400 else 0.5)
    ax.tick_params(which="minor", length=0)


def _mesh_figure(network, mapping: Mapping, colors: dict[str, tuple], fullness: list[float]):
    """Each chip's mesh with its cores coloured by layer, lighter for emptier cores (``fullness``, per core
    index: the fullest resource); a legend of layers.

    The picture is drawn at ``_pixels_per_core`` pixels a side per core so that a core
    shared by several layers can show their colours as vertical stripes.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize
    from matplotlib.patches import Patch

    rows, cols = network.target.chip.mesh
    k = _pixels_per_core((rows, cols))
    fig, axes = _mesh_panels(network, mapping, legend_rows=math.ceil(len(colors) / 4))
    images = {chip: np.tile(np.array(_FREE_CORE), (rows * k, cols * k, 1)) for chip in axes}
    for core in mapping.cores:
        row, col = core.position
        pixels = _core_pixels(core, colors, fullness[core.index], k)
        images[core.chip][row * k:(row + 1) * k, col * k:(col + 1) * k] = pixels
    for chip, ax in axes.items():
        ax.imshow(images[chip], interpolation="nearest", extent=(-0.5, cols - 0.5, rows - 0.5, -0.5))
        _cell_lines(ax, (rows, cols))
    handles = [Patch(color=color, label=name) for name, color in colors.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), frameon=False)
    grey = (0.35, 0.35, 0.35)
    shades = LinearSegmentedColormap.from_list("fullness", [_shade(grey, 0.0), grey])
    bar = fig.colorbar(ScalarMappable(Normalize(0, 100), shades), ax=list(axes.values()), shrink=0.7, aspect=22,
                       pad=0.02)
    bar.set_label("core utilization, %")
    bar.outline.set_visible(False)
    return fig


def _pixels_per_core(mesh: tuple[int, int]) -> int:
    """12 pixels a side, fewer on meshes so large that the picture would pass about 2,000 pixels across."""
    return max(1, min(12, 2000 // max(mesh)))


def _core_pixels(core: Core, colors: dict[str, tuple], fullness: float, k: int) -> np.ndarray:
    """A k x k picture of one core: a vertical stripe per layer on it, each shaded by the core's fullness."""
    layers = core.populations
    pixels = np.empty((k, k, 3))
    edges = np.linspace(0, k, len(layers) + 1).round().astype(int)
    for name, start, stop in zip(layers, edges[:-1], edges[1:]):
        pixels[:, start:stop] = _shade(colors[name], fullness)
    return pixels


def _shade(color: tuple, fullness: float) -> tuple:
    """``color`` mixed with white: an empty core keeps 20% of the colour, a full one all of it."""
    strength = 0.2 + 0.8 * min(max(fullness, 0.0), 1.0)
    return tuple(1 - (1 - c) * strength for c in color)


def _activity_figure(network, mapping: Mapping, ops: np.ndarray):
    """Synaptic operations per core and timestep on the mesh, the busiest core outlined."""
    from matplotlib.patches import Rectangle

    mesh = network.target.chip.mesh
    fig, axes = _mesh_panels(network, mapping)
    grids = {chip: np.full(mesh, np.nan) for chip in axes}
    for core in mapping.cores:
        grids[core.chip][core.position] = ops[core.index]
    top = float(ops.max(initial=0.0)) or 1.0
    images = []
    for chip, ax in axes.items():
        ax.set_facecolor(_FREE_CORE)  # NaN, a position without a core, shows the background
        images.append(ax.imshow(grids[chip], cmap="viridis", vmin=0, vmax=top, interpolation="nearest"))
        _cell_lines(ax, mesh)
    if ops.max(initial=0.0) > 0:
        busiest = mapping.cores[int(np.argmax(ops))]
        row, col = busiest.position
        axes[busiest.chip].add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="#d62728",
                                               linewidth=2.5, zorder=3))
    bar = fig.colorbar(images[0], ax=list(axes.values()), shrink=0.8, aspect=25, pad=0.02)
    bar.set_label("synaptic operations per timestep")
    bar.outline.set_visible(False)
    return fig


def _utilization_figure(layers: list[dict]):
    """Grouped horizontal bars: neurons, input and output axons and synapse memory of each layer, in percent."""
    fig = _new_figure(9.5, 0.9 + 0.7 * len(layers))
    ax = fig.subplots()
    positions = np.arange(len(layers))
    height = 0.2
    for offset, (label, key, _, color) in enumerate(_RESOURCES):
        values = [100 * row[key] for row in layers]
        bars = ax.barh(positions + (offset - 1.5) * height, values, height, color=color, label=label)
        ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], padding=3, fontsize=8.5, color="#555555")
    ax.set_yticks(positions, [row["layer"] for row in layers])
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xticks(range(0, 101, 20), [f"{v}%" for v in range(0, 101, 20)])
    _tidy(ax)
    fig.legend(loc="outside upper center", ncols=len(_RESOURCES), frameon=False)
    return fig


def _spike_figure(run, layers: list[str], colors: dict[str, tuple]):
    """Mean spikes per neuron per timestep of each spiking layer, with the share of silent neurons."""
    fig = _new_figure(9.5, 0.8 + 0.4 * len(layers))
    ax = fig.subplots()
    counts = [np.asarray(run.spike_counts[name]).ravel() for name in layers]
    rates = [c.mean() / run.timesteps for c in counts]
    bars = ax.barh(np.arange(len(layers)), rates, 0.6, color=[colors.get(name, _ANN_COLOR) for name in layers])
    ax.bar_label(bars, labels=[f"{r:.3f}  ({100 * np.mean(c == 0):.0f}% silent)" for r, c in zip(rates, counts)],
                 padding=4, fontsize=8.5, color="#555555")
    ax.set_yticks(np.arange(len(layers)), layers)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(rates), 1e-3) * 1.45)
    ax.set_xlabel("spikes per neuron per timestep")
    _tidy(ax)
    return fig


def _accuracy_figure(accuracy: dict):
    """SNN accuracy against T on a log2 axis, the ANN's accuracy as a dashed line."""
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    snn = _by_timesteps(accuracy["snn"])
    fig = _new_figure(6.5, 3.2)
    ax = fig.subplots()
    steps = list(snn)
    values = [100 * v for v in snn.values()]
    ax.plot(steps, values, marker="o", color=_SNN_COLOR, linewidth=2, label="SNN on the chip model", clip_on=False)
    for t, v in zip(steps, values):
        ax.annotate(f"{v:.1f}%", (t, v), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8.5)
    levels = list(values)
    if accuracy.get("ann") is not None:
        levels.append(100 * accuracy["ann"])
        ax.axhline(levels[-1], color=_ANN_COLOR, linestyle="--", linewidth=1.5, label=f"ANN {_percent(accuracy['ann'])}")
    pad = max(0.3 * (max(levels) - min(levels)), 1.0)  # at least a point either side: small gaps stay small
    ax.set_ylim(min(levels) - pad, min(max(levels) + pad, 100))
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(t) for t in steps])
    ax.minorticks_off()
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}%"))
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.margins(x=0.1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(frameon=False, loc="best")
    return fig


def _cost_figure(stats: dict, target: str):
    """Energy and latency per inference, the SNN on ``target`` beside the ANN on a CPU."""
    ann = stats.get("ann", {})
    fig = _new_figure(9.5, 1.9)
    left, right = fig.subplots(1, 2)
    labels = ["ANN", f"SNN on {target}"]
    dynamic = stats.get("dynamic_energy_uj", stats["energy_uj"])
    energy = [ann.get("energy_uj"), stats["energy_uj"]]
    _cost_bars(left, labels, energy, _energy, "energy per inference", split=dynamic)
    _cost_bars(right, labels, [ann.get("latency_us"), stats["latency_us"]], _duration, "latency per inference")
    return fig


def _cost_bars(ax, labels: list[str], values: list[float | None], unit, title: str, split: float | None = None):
    """Two bars, ANN and SNN; a missing ANN figure is written as such. ``split``: the SNN's dynamic part."""
    known = [v or 0.0 for v in values]
    ax.barh([0, 1], known, 0.6, color=[_ANN_COLOR, _SNN_COLOR])
    if split is not None and values[1]:
        ax.barh([1], [values[1] - split], 0.6, left=[split], color=_STATIC_COLOR)
        for label, start, stop, color in (("dynamic", 0, split, "white"), ("static", split, values[1], "black")):
            if stop - start > 0.15 * max(known):  # wide enough to hold its label
                ax.annotate(label, ((start + stop) / 2, 1), ha="center", va="center", color=color, fontsize=8.5)
    for y, value in enumerate(values):
        text = unit(value) if value is not None else "not measured"
        ax.annotate(text, (known[y], y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8.5)
    ax.set_yticks([0, 1], labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(known) * 1.3 or 1.0)
    ax.set_xticks([])
    ax.set_title(title, fontsize=10, loc="left")
    _tidy(ax)
    ax.spines["bottom"].set_visible(False)


def _image(element_id: str, alt: str, fig) -> str:
    """The figure as an ``<img>`` with a base64 PNG; shown at its size in inches times 96 CSS pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None}, facecolor="white")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    width = round(fig.get_figwidth() * 96)
    return f'<img id="{element_id}" src="data:image/png;base64,{data}" alt="{html.escape(alt)}" width="{width}">'


# ---------------------------------------------------------------------------- tables


def _layer_table(report: dict, run, colors: dict[str, tuple]) -> str:
    header = ["layer", "kind", "neurons", "synapses", "cores", "tile (c×h×w)", "input groups", "neuron %", "axon %",
              "out axon %", "memory %"]
    rates = {}
    if run is not None:
        header.append("spikes / neuron / step")
        rates = {name: float(np.mean(c)) / run.timesteps for name, c in run.spike_counts.items()}
    rows = []
    for r in report["layers"]:
        row = [_swatch(colors[r["layer"]]) + _e(r["layer"]), _e(r["kind"]), f"{r['neurons']:,}",
               f"{r['synapses']:,}", f"{r['cores']:,}", "×".join(map(str, r["tile"])), str(r["input_groups"]),
               *(_percent(r[key]) for _, key, _, _ in _RESOURCES)]
        if run is not None:
            row.append(f"{rates[r['layer']]:.3f}" if r["layer"] in rates else "")
        rows.append(row)
    t = report["totals"]
    totals = ["total", "", f"{t['neurons']:,}", f"{t['synapses']:,}", f"{t['cores']:,}", "", "",
              *(_percent(t[key]) for _, key, _, _ in _RESOURCES)]
    if run is not None:
        totals.append("")
    numeric = {i for i, name in enumerate(header) if name not in ("layer", "kind", "tile (c×h×w)")}
    return _table("layers-table", header, rows, totals, numeric)


def _chip_table(report: dict, run, mapping: Mapping) -> str:
    header = ["chip", "cores", "compartments", "neuron %", "messages out", "to other chips"]
    per_core = run.stats.get("per_core") if run is not None else None
    if per_core:
        header += ["spikes / inference", "synaptic ops / inference"]
    rows = []
    for c in report["chips"]:
        row = [str(c["chip"]), f"{c['cores']:,}", f"{c['neurons']:,}", _percent(c["neuron_util"]),
               f"{c['messages_out']:,.0f}", f"{c['messages_across']:,.0f}"]
        if per_core:
            on_chip = [core.index for core in mapping.cores if core.chip == c["chip"]]
            row += [f"{sum(per_core['spikes'][i] for i in on_chip):,.0f}",
                    f"{sum(per_core['synaptic_ops'][i] for i in on_chip):,.0f}"]
        rows.append(row)
    return _table("chips-table", header, rows, numeric=set(range(len(header))))


def _run_table(run) -> str:
    stats = run.stats
    entries = [("timesteps", f"{run.timesteps}"), ("spikes", _number(stats.get("spikes"))),
               ("synaptic operations", _number(stats.get("synaptic_ops"))),
               ("neuron updates", _number(stats.get("neuron_updates"))),
               ("hop-weighted messages on chip", _number(stats.get("hops"))),
               ("messages across chips", _number(stats.get("messages_across_chips"))),
               ("energy", _energy(stats["energy_uj"]) if "energy_uj" in stats else ""),
               ("of which dynamic", _energy(stats["dynamic_energy_uj"]) if "dynamic_energy_uj" in stats else ""),
               ("latency", _duration(stats["latency_us"]) if "latency_us" in stats else "")]
    ann = stats.get("ann", {})
    if ann:
        entries += [("ANN MACs", _number(ann.get("macs"))),
                    ("ANN energy", _energy(ann["energy_uj"]) if ann.get("energy_uj") is not None else ""),
                    ("ANN latency", _duration(ann["latency_us"]) if ann.get("latency_us") is not None else
                     "not measured")]
    if stats.get("saturations"):
        entries.append(("saturated membranes", ", ".join(f"{k}: {v:,}" for k, v in stats["saturations"].items())))
    rows = [[_e(name), _e(value)] for name, value in entries if value]
    return _table("run-table", ["per inference", "value"], rows, numeric={1})


def _metrics_table(metrics: dict) -> str:
    rows = [[_e(name), _number(value)] for name, value in _flatten(metrics)]
    return _table("neurobench-table", ["metric", "value"], rows, numeric={1})


def _flatten(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested metrics as ``("synaptic_operations / effective_acs", value)`` pairs, in their order."""
    pairs = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += _flatten(value, f"{name} / ")
        else:
            pairs.append((name, value))
    return pairs


def _table(element_id: str, header: list[str], rows: list[list[str]], totals: list[str] | None = None,
           numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are HTML already. Columns in ``numeric`` align right."""
    def cells(row: list[str], tag: str) -> str:
        return "".join(f'<{tag} class="num">{cell}</{tag}>' if i in numeric else f"<{tag}>{cell}</{tag}>"
                       for i, cell in enumerate(row))

    head = f"<thead><tr>{cells([_e(h) for h in header], 'th')}</tr></thead>"
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    foot = f"<tfoot><tr>{cells(totals, 'td')}</tr></tfoot>" if totals else ""
    return f'<div class="scroll"><table id="{element_id}">{head}<tbody>{body}</tbody>{foot}</table></div>'


def _swatch(color: tuple) -> str:
    hex_color = "#" + "".join(f"{round(255 * c):02x}" for c in color)
    return f'<span class="swatch" style="background:{hex_color}"></span>'


# ---------------------------------------------------------------------------- numbers


def _limits(target) -> str:
    """One line of the target's limits per core and chip: what the utilization percentages are of."""
    bounds = Limits.of(target)
    rows, cols = target.chip.mesh
    return (f"per core {_capacity(bounds, 'neurons')} neurons, {_capacity(bounds, 'input_axons')} input axons, "
            f"{_capacity(bounds, 'output_axons')} output axons, {_capacity(bounds, 'memory_bits', 8 * 1024)} KiB "
            f"synapse memory · {target.chip.cores:,} cores per chip on a {rows} × {cols} mesh")


def _capacity(bounds: Limits, resource: str, unit: float = 1) -> str:
    """A limit as text: unlimited, a number, or a range where cores differ."""
    low, high = bounds.span(resource)
    if high == math.inf:
        return "unlimited"
    return f"{low / unit:,.0f}" if low == high else f"{low / unit:,.0f}–{high / unit:,.0f}"


def _e(text: object) -> str:
    return html.escape(str(text))


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _number(value) -> str:
    """Counts with thousands separators, small or fractional figures to three significant digits."""
    if value is None:
        return ""
    if isinstance(value, (bool, str)):
        return _e(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _scaled(value: float, units: list[tuple[float, str]]) -> str:
    """``value`` in the largest unit it reaches, three significant digits."""
    for factor, name in units:
        if abs(value) >= factor:
            return f"{value / factor:,.3g} {name}"
    factor, name = units[-1]
    return f"{value / factor:.3g} {name}"


def _energy(microjoules: float) -> str:
    return _scaled(microjoules, [(1e6, "J"), (1e3, "mJ"), (1.0, "µJ"), (1e-3, "nJ")])


def _duration(microseconds: float) -> str:
    return _scaled(microseconds, [(1e6, "s"), (1e3, "ms"), (1.0, "µs"), (1e-3, "ns")])


# ---------------------------------------------------------------------------- page


def _page(title: str, subtitle: list[str], cards: list[tuple[str, str, list[str]]], sections: list[_Section]) -> str:
    from snnconv.version import __version__

    summary = "".join(f'<div class="card"><div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>'
                      + "".join(f'<div class="detail">{_e(line)}</div>' for line in details) + "</div>"
                      for label, value, details in cards)
    contents = " · ".join(f'<a href="#{s.id}">{_e(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{_e(s.title)}</h2>'
                   + (f'<p class="note">{_e(s.note)}</p>' if s.note else "") + f"{s.body}</section>"
                   for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · snnconv report</title>
<link rel="icon" href="data:,">
<style>{_CSS}</style>
</head>
<body>
<main>
<header><div class="kicker">snnconv partitioning report</div><h1>{_e(title)}</h1>{"".join(f'<p class="subtitle">{_e(line)}</p>' for line in subtitle)}
</header>
<div id="summary" class="cards">{summary}</div>
<nav>{contents}</nav>
{body}
<footer>snnconv {_e(__version__)} · figures are modeled from the target's published limits and costs</footer>
</main>
</body>
</html>
"""


_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --accent: #4c72b0; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 32px 28px 48px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 14px; }
.kicker { color: var(--accent); font-size: 12px; font-weight: 600; letter-spacing: .08em; text-transform: uppercase; }
h1 { font-size: 28px; margin: 4px 0 2px; font-weight: 650; }
.subtitle { margin: 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin: 20px 0 8px; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px 12px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 13px; line-height: 1.4; white-space: nowrap; }
nav { font-size: 13px; color: var(--muted); margin: 14px 0 4px; }
nav a { color: var(--accent); text-decoration: none; }
section { margin-top: 30px; }
h2 { font-size: 19px; margin: 0 0 4px; font-weight: 620; }
h3 { font-size: 15px; margin: 6px 0 6px; font-weight: 600; }
.columns { display: flex; flex-wrap: wrap; gap: 12px 40px; align-items: flex-start; }
.note { color: var(--muted); margin: 0 0 10px; font-size: 14px; max-width: 80ch; }
.source { color: var(--muted); font-size: 12.5px; margin: 2px 0; max-width: 100ch; }
img { max-width: 100%; height: auto; display: block; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tfoot td { font-weight: 650; border-top: 2px solid var(--line); border-bottom: none; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 8px;
          vertical-align: -1px; }
footer { margin-top: 40px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted);
         font-size: 12.5px; }
"""
