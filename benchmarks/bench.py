"""``snnconv bench`` on every bundled network for every target: the batch-1 comparison, and how long each run takes.

For each bundled network (models/*.onnx with its calibration and test samples) and each
target snnconv knows, runs the command a user would::

    snnconv bench MODEL --target T --data TEST.npz --samples 200 --calibration CALIB.npz --calibration-samples 64
                  --json --html PAGE

rate-coded (``--coding if``) at the compiler's default T (32; a QCFS-trained net's L),
and with graded spikes at T = 4 on the targets that carry them. Each run is a fresh
process, timed from the outside (wall clock and the CPU seconds of the child), with the
HTML page written to a temporary folder and checked to be there. The first 200 test
samples give accuracy and the SNN's activity, and 64 calibration samples compile each
network: with all 1,000 test samples (or 128 calibration samples) the residual networks
on spinnaker2, whose 16-bit weights make the chip model simulate in float64, take more
than a minute of CPU.

Writes benchmarks/results/bench.{md,json}: per network, every configuration (the SNN per
target and coding, the ANN on the modeled platforms and as measured here) with latency,
energy, its split, EDP and accuracy; the lowest latency, energy and EDP; the time of each
run and the CPU pressure during it.

Run:  python benchmarks/bench.py      # about half an hour on 2 cores
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import snnconv
from snnconv import benchmark_text, neurons, targets
from snnconv.html_report import _duration, _energy

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = resources.files("snnconv.models")
NETWORKS = {"mnist_mlp": "mnist", "mnist_cnn": "mnist", "mnist_resnet": "mnist", "mnist_mobilenet": "mnist",
            "fashion_vgg": "fashion", "fashion_resnet": "fashion", "fashion_vgg_qcfs": "fashion"}
SAMPLES = 200
CALIBRATION_SAMPLES = 64
GRADED_TIMESTEPS = 4


def runs() -> list[tuple[str, str, str, int | None]]:
    """(network, target, coding, T) of every run: rate coding on every target, graded where a target carries it."""
    graded = [name for name in targets.names() if neurons.get("graded").unsupported(targets.get(name)) is None]
    return ([(net, target, "if", None) for net in NETWORKS for target in targets.names()]
            + [(net, target, "graded", GRADED_TIMESTEPS) for net in NETWORKS for target in graded])


def bench(network: str, target: str, coding: str, steps: int | None, folder: Path) -> dict:
    """One ``snnconv bench`` process: its JSON, wall and CPU seconds, and the size of its HTML page."""
    data = NETWORKS[network]
    page = folder / f"{network}-{target}-{coding}.html"
    command = [sys.executable, "-m", "snnconv.cli", "-q", "bench", str(MODELS / f"{network}.onnx"), "--target",
               target, "--coding", coding, "--data", str(MODELS / f"{data}_test.npz"), "--samples", str(SAMPLES),
               "--calibration", str(MODELS / f"{data}_calib.npz"), "--calibration-samples", str(CALIBRATION_SAMPLES),
               "--json", "--html", str(page)]
    command += ["--timesteps", str(steps)] if steps else []
    before, stalled, began = resource.getrusage(resource.RUSAGE_CHILDREN), _stalled_us(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    pressure = None if stalled is None else (_stalled_us() - stalled) / 1e6 / wall * 100
    return {"network": network, "target": target, "coding": coding, "wall_s": wall, "cpu_s": cpu,
            "cpu_pressure_percent": pressure,
            "html_bytes": page.stat().st_size, "command": " ".join(["snnconv", *command[3:]]),
            "result": json.loads(done.stdout)}


def markdown(records: list[dict]) -> str:
    intro = (f"Per inference at batch 1; the first {SAMPLES} test samples of each network's bundled set (compiled "
             f"on {CALIBRATION_SAMPLES} calibration samples without tuning); rate "
             f"coding at the compiler's default T, graded spikes at T = {GRADED_TIMESTEPS}. SNN rows are the chip "
             "model; 'modeled: platform' rows the ANN on `snnconv/platforms.py`'s reference platforms; 'measured "
             "here' rows onnxruntime and torch on this machine (from the network's first run; energy not "
             "measurable here: no RAPL). Every source is in `bench.json` and in each run's output.")
    lines = ["# `snnconv bench` on the bundled networks", "", intro, ""]
    for network in dict.fromkeys(r["network"] for r in records):
        mine = [r for r in records if r["network"] == network]
        lines += [f"## {network}", "", *_network_table(mine), "", _best_line(mine), ""]
    timing = ("Wall clock and CPU seconds of each `snnconv bench` process (compile, simulation of the samples, "
              "ANN measurement, HTML), and the CPU pressure during it (`/proc/pressure/cpu` some: the share of the "
              "run's wall time in which a task waited for a CPU; high means other work competed).")
    lines += ["## Time of each run", "", timing, "",
              "| network | target | coding | wall s | CPU s | CPU pressure % | HTML KB |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['network']} | {r['target']} | {r['coding']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{_pressure(r)} | {r['html_bytes'] / 1024:.0f} |" for r in records]
    slowest = max(records, key=lambda r: r["cpu_s"])
    summary = (f"{len(records)} runs; the most CPU: {slowest['network']} on {slowest['target']} "
               f"({slowest['coding']}), {slowest['cpu_s']:.1f} s of CPU in {slowest['wall_s']:.1f} s wall; "
               f"{sum(r['cpu_s'] < 60 for r in records)} of {len(records)} runs took under 60 s of CPU, so under a "
               f"minute on 2 cores of their own; {sum(r['wall_s'] < 60 for r in records)} under 60 s wall on this "
               "shared machine.")
    lines += ["", summary]
    return "\n".join(lines) + "\n"


def _network_table(records: list[dict]) -> list[str]:
    header = [("| configuration | how | latency | energy | dynamic | synaptic / arithmetic | neuron updates | "
               "routing / memory | static | EDP | accuracy | same as ANN |"), "|---" * 12 + "|"]
    rows = [row for r in records for row in r["result"]["rows"] if row["system"] == "snn"]
    rows += [row for row in records[0]["result"]["rows"] if row["system"] == "ann"]
    return header + [_markdown_row(row) for row in rows]


def _markdown_row(row: dict) -> str:
    if row["reason"]:
        return f"| {row['name']} | does not run: {row['reason']} |" + " - |" * 10
    split = benchmark_text.split_cells(row["energy_split_uj"]) if row["energy_split_uj"] else ["-"] * 4
    energy = _energy(row["energy_uj"]) if row["energy_uj"] is not None else benchmark_text.NOT_MEASURABLE
    dynamic = _energy(row["dynamic_energy_uj"]) if row["dynamic_energy_uj"] is not None else "-"
    cells = [row["name"], row["how"], _duration(row["latency_us"]), energy, dynamic, *split,
             benchmark_text.edp(row["edp_js"]), benchmark_text.percent(row["accuracy"]),
             benchmark_text.percent(row["agreement_with_ann"])]
    return "| " + " | ".join(cells) + " |"


def _best_line(records: list[dict]) -> str:
    """The lowest latency, energy and EDP over every configuration of the network, and the SNN's best of each."""
    rows = [row for r in records for row in r["result"]["rows"] if row["system"] == "snn"]
    rows += [row for row in records[0]["result"]["rows"] if row["system"] == "ann"]
    parts = []
    for key, label, unit in (("latency_us", "latency", _duration), ("energy_uj", "energy", _energy),
                             ("edp_js", "EDP", benchmark_text.edp)):
        known = [row for row in rows if row[key]]
        best = min(known, key=lambda row: row[key])
        snn = min((row for row in known if row["system"] == "snn"), key=lambda row: row[key], default=None)
        ratio = "" if snn is None or snn is best else (f" (the best SNN, {snn['name']}: {unit(snn[key])}, "
                                                       f"{snn[key] / best[key]:,.0f}x)")
        parts.append(f"lowest {label}: {best['name']} {unit(best[key])}{ratio}")
    return ". ".join(parts) + "."


def _stalled_us() -> int | None:
    """``some total`` of ``/proc/pressure/cpu``: microseconds in which some task waited for a CPU, since boot."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(dict(part.split("=") for part in first.split()[1:])["total"])


def sources(records: list[dict]) -> dict[str, str]:
    """Every modeled figure's source, once (``system / parameter``), taken out of the runs, which repeat them."""
    found = {}
    for record in records:
        result = record["result"]
        for config in result["snn"]:
            found.update({f"{config['target']} / {key}": text for key, text in config.pop("sources", {}).items()})
        for model in result["ann_platforms"]:
            found.update({f"{model['platform']} / {key}": text for key, text in model.pop("sources").items()})
    return found


def _pressure(record: dict) -> str:
    value = record["cpu_pressure_percent"]
    return "-" if value is None else f"{value:.0f}"


def main() -> None:
    records = []
    with tempfile.TemporaryDirectory() as folder:
        for network, target, coding, steps in runs():
            records.append(bench(network, target, coding, steps, Path(folder)))
            print(f"{network} {target} {coding}: {records[-1]['wall_s']:.1f} s wall, {records[-1]['cpu_s']:.1f} s CPU",
                  flush=True)
    meta = {"snnconv": snnconv.__version__, "machine": platform.machine(), "processor": platform.processor(),
            "samples": SAMPLES, "calibration_samples": CALIBRATION_SAMPLES, "graded_timesteps": GRADED_TIMESTEPS}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps({"meta": meta, "sources": sources(records), "runs": records},
                                                   indent=1) + "\n")
    (RESULTS / "bench.md").write_text(markdown(records))
    print(markdown(records))


if __name__ == "__main__":
    main()
