"""The ``snnconv`` command line. Thin: parse, call the library, print.

User mistakes print one line ``error: ...`` to stderr and exit with code 2 (with
``--debug`` the traceback too). ``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from snnconv import files, html_codings, neurons, options
from snnconv.errors import BadDataError, BadOptionError, SnnconvError
from snnconv.neurons import burst, graded
from snnconv.progress import Progress, reporting, silence
from snnconv.version import __version__

__all__ = ["main"]


def _option(check, *args):
    """An argparse type from a check of ``snnconv.options``: one definition of what each option accepts."""
    def convert(text: str):
        try:
            return check(text, *args)
        except BadOptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None
    convert.__name__ = check.__name__  # argparse names the type in its message
    return convert


_shape = _option(options.shape)
_percentile = _option(options.percentile)
_positive = _option(options.positive, "value")
_timesteps = _option(options.timesteps)
_timesteps_list = _option(options.timesteps_list)
_neuron_list = _option(options.choices, "neuron", neurons.names())


def _cmd_inspect(args: argparse.Namespace) -> None:
    from snnconv.frontend import load_onnx
    from snnconv.summary import render_summary, summary_dict

    graph = load_onnx(args.model, input_shape=args.input_shape)
    summary = summary_dict(graph, str(args.model))
    refusal = None
    if args.target is not None:  # the structure checked as compile would lower it, before any calibration
        from snnconv import targets
        from snnconv.pipeline import check_structure

        chip = targets.get(args.target)
        try:
            summary["structure"] = {"target": chip.name, "lowered_layers": check_structure(graph, chip)}
        except SnnconvError as exc:
            summary["structure"], refusal = {"target": chip.name, "refused": str(exc)}, exc
    _show(args, summary, lambda: render_summary(summary))
    if refusal is not None:
        raise refusal


def _cmd_targets(args: argparse.Namespace) -> None:
    from snnconv import targets
    from snnconv.table import render_table

    if args.toml:
        print(targets.get(args.toml).to_toml(), end="")
        return
    chips = [targets.get(name) for name in targets.names()]
    _show(args, [chip.to_dict() for chip in chips], lambda: render_table(
        ["target", "neurons/core", "cores/chip", "weights", "state", "reset", "neurons", "pJ/synop", "about"],
        [_target_row(chip) for chip in chips])
        + "\n\n`snnconv targets --toml NAME` prints a target as TOML: edit it and pass the file as --target.")


def _target_row(chip) -> list[str]:
    p = chip.precision
    weights = "float" if p.is_float else f"{p.weight_bits}-bit" + (
        f" x 2^[{p.weight_exponent[0]},{p.weight_exponent[1]}]" if p.weight_exponent[1] > p.weight_exponent[0] else "")
    per_core = chip.core.neurons
    per_core = f"{min(per_core):,}-{max(per_core):,}" if isinstance(per_core, tuple) else _limit(per_core)
    models = ", ".join(name for name, model in neurons.MODELS.items() if model.unsupported(chip) is None)
    reset = "subtract" if "subtract" in chip.neuron.reset else f"zero (subtract: x{chip.neuron.subtract_compartments})"
    return [chip.name, per_core, _limit(chip.chip.cores), weights, "float" if p.is_float else f"{p.state_bits}-bit",
            reset, models, f"{chip.costs.synop_pj:g}", chip.description]


def _limit(value) -> str:
    return "no limit" if value == float("inf") else f"{value:,}"


def _show(args: argparse.Namespace, data, text: Callable[[], str]) -> None:
    """``data`` as JSON with ``--json``, else ``text()`` for a terminal."""
    print(json.dumps(_json_safe(data), indent=2, allow_nan=False) if args.json else text())


def _json_safe(value):
    """JSON has no infinity or NaN (``Infinity`` is not JSON): unlimited or undefined numbers become null."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _target_file(target: str) -> str | None:
    """``--target`` when it names a file (as ``snnconv.targets.get`` reads it), else None."""
    return target if Path(target).suffix else None


def _cmd_compile(args: argparse.Namespace) -> None:
    import snnconv
    from snnconv.data import load_npz

    files.check_outputs({"the artifact (-o)": args.output, "the NIR file (--nir)": args.nir},
                        {"the model": args.model, "the calibration data": args.calibration,
                         "the target file": _target_file(args.target)})
    calibration = load_npz(args.calibration)[0] if args.calibration else None
    with reporting("compiling"):
        net = snnconv.compile(args.model, args.target, calibration, input_shape=args.input_shape,
                              timesteps=args.timesteps, chips=args.chips, percentile=args.percentile, reset=args.reset,
                              neuron=args.neuron, decay=args.decay, payload_bits=args.payload_bits, burst=args.burst,
                              tune=args.tune, uncalibrated=args.uncalibrated, spread=args.spread)
    path = net.save(args.output)
    written = {"artifact": str(path)}
    if args.nir:
        written["nir"], written["nir_warnings"] = str(args.nir), net.to_nir(args.nir)
    report = net.report
    _show(args, {**written, "report": report.to_dict()},
          lambda: report.render() + f"\n\nwrote {path}" + (f"\nwrote {args.nir}" if args.nir else ""))


def _cmd_run(args: argparse.Namespace) -> None:
    import snnconv
    from snnconv.data import check_labels, load_npz

    net = snnconv.load(args.artifact)
    x, y = load_npz(args.data)
    check_labels(y, net.classes, f"{args.data}: y")  # before the run, not after
    result = net.run(x, args.timesteps, args.batch_size, args.device, Progress("simulating", len(x), "samples"),
                     **_executor(args))
    summary = {"samples": len(x), "timesteps": result.timesteps, "predictions": result.predictions.tolist(),
               "accuracy": result.accuracy(y) if y is not None else None,
               "stats": {k: v for k, v in result.stats.items() if k != "per_core"}}
    if hasattr(result, "item_outputs"):  # a recurrent network: each item's prediction too (the last is the final)
        summary["item_predictions"] = result.item_outputs.argmax(axis=2).tolist()
    _show(args, summary, lambda: _run_text(summary, net.target.name))


def _run_text(summary: dict, target: str) -> str:
    from snnconv.table import render_table

    stats, lines = summary["stats"], []
    per_item = stats.get("per_item")
    at = f"T = {summary['timesteps']}" if per_item is None else \
        f"K = {summary['timesteps']} steps per item x {stats['items']} items (the last item's output)"
    if summary["accuracy"] is not None:
        lines.append(f"accuracy: {100 * summary['accuracy']:.2f}% on {summary['samples']:,} samples at {at}")
    ann = stats.get("ann", {})
    rows = [["operations", f"{stats['synaptic_ops']:,.0f} synaptic ops", f"{ann['macs']:,} MACs" if ann else "-"],
            ["spikes", f"{stats['spikes']:,.0f}", "-"],
            ["energy", f"{stats['energy_uj']:,.1f} uJ", f"{ann['energy_uj']:,.2f} uJ" if ann else "-"],
            ["latency", f"{stats['latency_us']:,.0f} us",
             f"{ann['latency_us']:,.0f} us (onnxruntime, batch 1)" if ann.get("latency_us") else "-"]]
    if per_item is not None:
        rows.append(["per item", f"{per_item['energy_uj']:,.2f} uJ, {per_item['latency_us']:,.1f} us",
                     f"{ann['energy_uj'] / stats['items']:,.3f} uJ" if ann else "-"])
    lines.append(render_table(["per inference" if per_item is None else "per sequence", f"SNN on {target} (modeled)",
                               "ANN"], rows))
    bench = stats.get("neurobench")
    if bench:
        ops = bench["synaptic_operations"]
        lines.append(f"NeuroBench: effective ACs {ops['effective_acs']:,.0f}, effective MACs "
                     f"{ops['effective_macs']:,.0f}, activation sparsity {bench['activation_sparsity']:.3f}, "
                     f"connection sparsity {bench['connection_sparsity']:.3f}, "
                     f"footprint {bench['footprint_bytes']:,} bytes")
    return "\n".join(lines)


def _cmd_report(args: argparse.Namespace) -> None:
    import snnconv
    from snnconv.data import check_labels, load_npz

    if not args.html:
        report = snnconv.load(args.artifact).report
        _show(args, report.to_dict(), report.render)
        return
    files.check_outputs({"the HTML report (--html)": args.html}, {"the artifact": args.artifact,
                                                                 "the data (--data)": args.data,
                                                                 "the evaluation (--eval)": args.eval})
    net = snnconv.load(args.artifact)
    evaluation = html_codings.read(args.eval) if args.eval else None
    run, accuracy = None, None
    if args.data:
        x, y = load_npz(args.data)
        check_labels(y, net.classes, f"{args.data}: y")
        run = net.run(x, batch_size=args.batch_size, progress=Progress("simulating", len(x), "samples"))
        accuracy = {"snn": {run.timesteps: run.accuracy(y)}} if y is not None else None
    path = net.write_html(args.html, run, accuracy, evaluation)
    _show(args, {"html": str(path)}, lambda: f"wrote {path}")


def _cmd_eval(args: argparse.Namespace) -> None:
    import snnconv
    from snnconv.data import load_npz

    x, y = load_npz(args.data)
    if y is None:
        raise BadDataError(f"{args.data}: has no labels y; eval needs them to score accuracy")
    calibration = load_npz(args.calibration)[0] if args.calibration else None
    evaluation = snnconv.evaluate(args.model, (x, y), target=args.target, timesteps=args.timesteps,
                                  calibration=calibration, input_shape=args.input_shape, reset=args.reset,
                                  neuron=args.neuron, decay=args.decay, payload_bits=args.payload_bits,
                                  burst=args.burst, batch_size=args.batch_size,
                                  compile_once=args.compile_once, **_executor(args))
    _show(args, evaluation.to_dict(), evaluation.render)


def _executor(args: argparse.Namespace) -> dict:
    """``--ray [ADDRESS]`` as the API's ``executor`` and ``ray_address``."""
    if args.ray is None:
        return {}
    return {"executor": "ray", "ray_address": None if args.ray == _LOCAL_RAY else args.ray}


def _cmd_bench(args: argparse.Namespace) -> None:
    import snnconv
    from snnconv.data import load_npz

    targets = args.target.split(",")
    files.check_outputs({"the HTML page (--html)": args.html},
                        {"the model": args.model, "the data (--data)": args.data,
                         "the calibration data": args.calibration,
                         **{f"the target file {t}": _target_file(t) for t in targets}})
    x, y = load_npz(args.data) if args.data else (None, None)
    calibration = load_npz(args.calibration)[0] if args.calibration else None
    result = snnconv.bench(args.model, targets, codings=args.coding.split(","), timesteps=args.timesteps, data=x,
                           labels=y, calibration=calibration, input_shape=args.input_shape, samples=args.samples,
                           tune=args.tune, calibration_samples=args.calibration_samples,
                           batch_size=args.batch_size, **_executor(args))
    written = {"html": str(result.write_html(args.html))} if args.html else {}
    _show(args, {**result.to_dict(), **written},
          lambda: result.render() + (f"\n\nwrote {written['html']}" if written else ""))


DEMO_CALIBRATION = 256  # of the 500 bundled digits: 98.7% on the test digits at T = 32 (98.5% with all 500), 1 s quicker


def _cmd_demo(args: argparse.Namespace) -> None:
    from importlib import resources

    import numpy as np

    import snnconv

    models = resources.files("snnconv.models")
    calibration = np.load(models.joinpath("mnist_calib.npz"), allow_pickle=False)["x"][:DEMO_CALIBRATION]
    test = np.load(models.joinpath("mnist_test.npz"), allow_pickle=False)
    model = str(models.joinpath("mnist_cnn.onnx"))
    if not args.json:
        print(f"compiling the bundled MNIST CNN for loihi (calibration: {len(calibration)} bundled digits, T = 32) ...",
              file=sys.stderr)
    with reporting("compiling"):
        net = snnconv.compile(model, "loihi", calibration, timesteps=32)  # what runs is what the artifact holds
    ann = float((snnconv.ann.evaluate(snnconv.load_onnx(model), test["x"]).argmax(1) == test["y"]).mean())
    result = net.run(test["x"], 32, progress=Progress("simulating", len(test["x"]), "samples"))
    summary = {"samples": len(test["x"]), "timesteps": 32, "ann_accuracy": ann, "accuracy": result.accuracy(test["y"]),
               "stats": {k: v for k, v in result.stats.items() if k != "per_core"}}
    _show(args, {**summary, "report": net.report.to_dict()},
          lambda: f"{net.report.render()}\n\nANN accuracy: {100 * ann:.2f}%  (float, onnx model)\n"
                  + _run_text(summary, net.target.name))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="snnconv", description="ANN-to-SNN conversion compiler for neuromorphic chips.")
    parser.add_argument("--version", action="version", version=f"snnconv {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they only show on a terminal)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="show a model as snnconv reads it: layers, shapes, params, MACs")
    inspect.add_argument("model", help="path of an .onnx model")
    inspect.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                         help="one sample's shape, for models whose non-batch dimensions are dynamic")
    inspect.add_argument("--target", help="also check that the structure converts for this target (a name or "
                                          ".toml file), as compile would lower it, without calibration data")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(run=_cmd_inspect)

    compile_ = commands.add_parser("compile", help="compile an ONNX model for a chip into a .snn artifact")
    compile_.add_argument("model", help="path of an .onnx model")
    compile_.add_argument("--target", default="loihi", help="a target name (see `snnconv targets`) or a .toml file")
    compile_.add_argument("--calibration", metavar="DATA.npz", help="calibration samples (x), as the ANN expects them")
    compile_.add_argument("--uncalibrated", action="store_true",
                          help="compile without calibration data: scales from a weight-based bound, accuracy near "
                               "chance (for a mapping report)")
    compile_.add_argument("--timesteps", type=_timesteps,
                          help="the T to tune for (default 32, or L for a network trained with QCFS)")
    compile_.add_argument("--chips", type=_positive, help="chips available (default: the target's)")
    compile_.add_argument("--percentile", type=_percentile, default="auto",
                          help="normalization percentile, or auto (default: tuned for T)")
    compile_.add_argument("--reset", choices=("emulate", "zero"), default="emulate",
                          help="on chips without subtractive reset: emulate it (2 compartments) or reset to zero")
    _neuron_options(compile_)
    compile_.add_argument("--tune", choices=("off", "fast", "full"), default="fast",
                          help="percentile, initial-membrane and readout burn-in tuning: candidates simulated "
                               "on up to 128 calibration samples within a work budget (fast, default; networks too big "
                               "for it keep the defaults), on up to 512 (full), or the defaults (off)")
    compile_.add_argument("--spread", action="store_true",
                          help="spread the synaptic operations over all of one chip's cores instead of packing the "
                               "fewest: shorter steps, less static energy, more cores")
    compile_.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="one sample's shape, if dynamic")
    compile_.add_argument("-o", "--output", required=True, metavar="OUT.snn", help="where to write the artifact")
    compile_.add_argument("--nir", metavar="FILE.nir", help="also export the network to NIR (see the README)")
    compile_.add_argument("--json", action="store_true", help="print the report as JSON")
    compile_.set_defaults(run=_cmd_compile)

    run = commands.add_parser("run", help="run a .snn artifact on the chip model")
    run.add_argument("artifact", help="a .snn file from `snnconv compile`")
    run.add_argument("--data", required=True, metavar="DATA.npz", help="samples x (and labels y for accuracy)")
    run.add_argument("--timesteps", type=_timesteps, help="T (default: what it was compiled for)")
    run.add_argument("--batch-size", type=_positive, default=256)
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the chip model runs")
    _ray_option(run)
    run.add_argument("--json", action="store_true", help="print predictions and statistics as JSON")
    run.set_defaults(run=_cmd_run)

    report = commands.add_parser("report", help="the partitioning report of a .snn artifact")
    report.add_argument("artifact", help="a .snn file from `snnconv compile`")
    report.add_argument("--html", metavar="FILE.html", help="write a self-contained HTML report with pictures")
    report.add_argument("--data", metavar="DATA.npz", help="with --html: run these samples to add spikes and energy")
    report.add_argument("--eval", metavar="EVAL.json", help="with --html: the output of `snnconv eval --json`, drawn "
                        "as accuracy against energy, one curve per coding")
    report.add_argument("--batch-size", type=_positive, default=256, help=argparse.SUPPRESS)
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(run=_cmd_report)

    evaluate = commands.add_parser("eval", help="ANN vs SNN accuracy at several T, compiled for each")
    evaluate.add_argument("model", help="path of an .onnx model")
    evaluate.add_argument("--data", required=True, metavar="DATA.npz", help="samples x and labels y")
    evaluate.add_argument("--target", default="loihi", help="a target name or a .toml file")
    evaluate.add_argument("--timesteps", type=_timesteps_list, default=(8, 16, 32), metavar="T,T,...",
                          help="the T to score (default 8,16,32); compiled for the largest")
    evaluate.add_argument("--calibration", metavar="DATA.npz", help="calibration samples (default: the first 500 of --data)")
    evaluate.add_argument("--reset", choices=("emulate", "zero"), default="emulate", help=argparse.SUPPRESS)
    _neuron_options(evaluate, several=True)
    evaluate.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="one sample's shape, if dynamic")
    evaluate.add_argument("--batch-size", type=_positive, default=256)
    evaluate.add_argument("--compile-once", action="store_true",
                          help="compile once, for the largest T, and read the smaller T off it (faster; understates "
                               "small-T accuracy)")
    _ray_option(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the table as JSON")
    evaluate.set_defaults(run=_cmd_eval)

    bench = commands.add_parser("bench", help="one inference at batch 1: the SNN per target, coding and T beside "
                                "the ANN measured here and modeled on a CPU, GPU and edge accelerator")
    bench.add_argument("model", help="path of an .onnx model")
    bench.add_argument("--target", default="loihi", metavar="T,T,...",
                       help="target names or .toml files, comma-separated (default loihi)")
    bench.add_argument("--coding", default="if", metavar="NEURON,...",
                       help="neuron models, comma-separated: if (rate coding, default), graded (loihi2, spinnaker2)")
    bench.add_argument("--timesteps", type=_timesteps_list, metavar="T,T,...",
                       help="the T to compile and run each for (default 32, or L for a QCFS-trained network)")
    bench.add_argument("--data", metavar="DATA.npz", help="samples x (and labels y) for accuracy and the SNN's activity")
    bench.add_argument("--samples", type=_positive, help="use the first N samples of --data (default all)")
    bench.add_argument("--calibration", metavar="DATA.npz", help="samples to compile with (default: those of --data)")
    bench.add_argument("--calibration-samples", type=_positive, default=128,
                       help="compile with the first N calibration samples (default 128)")
    bench.add_argument("--tune", choices=("off", "fast", "full"), default="off",
                       help="tuning while compiling (default off, for speed; see `snnconv compile --help`)")
    bench.add_argument("--input-shape", type=_shape, metavar="C,H,W", help="one sample's shape, if dynamic")
    bench.add_argument("--batch-size", type=_positive, default=256, help="samples simulated per batch (or Ray task)")
    bench.add_argument("--ray", nargs="?", const=_LOCAL_RAY, metavar="ADDRESS",
                       help="simulate the samples' counts (accuracy, spikes, synaptic ops, modeled energy) as tasks "
                            "on a Ray cluster: ADDRESS, or without one a cluster started here; the same result. The "
                            "ANN's wall-clock measurement stays here (needs pip install ray)")
    bench.add_argument("--html", metavar="FILE.html", help="write a self-contained page with the latency-energy plane")
    bench.add_argument("--json", action="store_true", help="print every configuration and source as JSON")
    bench.set_defaults(run=_cmd_bench)

    demo = commands.add_parser("demo", help="compile, run and report the bundled MNIST CNN on loihi")
    demo.add_argument("--json", action="store_true", help="print accuracy, statistics and report as JSON")
    demo.set_defaults(run=_cmd_demo)

    chips = commands.add_parser("targets", help="list the chips snnconv compiles for, with their limits")
    chips.add_argument("--json", action="store_true", help="print every field as JSON (unlimited: null)")
    chips.add_argument("--toml", metavar="NAME", help="print one target as a TOML file to start your own from")
    chips.set_defaults(run=_cmd_targets)
    for command in commands.choices.values():  # ``snnconv compile -q`` as well as ``snnconv -q compile``
        command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                             help="no progress bars (they only show on a terminal)")
    return parser


class _Parser(argparse.ArgumentParser):
    """Option errors as one line ``error: ...`` and exit code 2, like every other error (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


_LOCAL_RAY = "local"


def _ray_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--ray", nargs="?", const=_LOCAL_RAY, metavar="ADDRESS",
                         help="simulate the batches as tasks on a Ray cluster: ADDRESS (e.g. auto, ray://host:10001), "
                              "or without one a cluster started here; the same result (needs pip install ray)")


def _neuron_options(command: argparse.ArgumentParser, several: bool = False) -> None:
    """``--neuron`` and each model's own options; ``several``: ``--neuron`` takes a comma-separated list (eval)."""
    models = ", ".join(f"{name} ({model.description})" for name, model in neurons.MODELS.items())
    if several:
        command.add_argument("--neuron", type=_neuron_list, default="if", metavar="NEURON,...",
                             help=f"the codings to compare, comma-separated, e.g. if,graded: {models}")
    else:
        command.add_argument("--neuron", choices=neurons.names(), default="if", help=f"the neuron model: {models}")
    command.add_argument("--decay", metavar="FRACTION", help="with --neuron lif: membrane decay per step "
                         "(default 1/256 = 0.0039; kept to 4096ths)")
    command.add_argument("--payload-bits", metavar="BITS", help="with --neuron graded: bits of a spike's payload, "
                         f"1 to {graded.MAX_PAYLOAD_BITS} (default {graded.DEFAULT_PAYLOAD_BITS}: up to 255 per step)")
    command.add_argument("--burst", metavar="SPIKES", help="with --neuron burst: the most spikes of one burst, 1 to "
                         f"{burst.MAX_BURST} (default {burst.DEFAULT_BURST})")


def _one_line(text) -> str:
    return " ".join(str(text).split())


@contextmanager
def _warnings_after_success() -> Iterator[list[str]]:
    """Hold the warnings (Python's and snnconv's log) a command emits; print them only if it succeeds.

    An error is then the only thing a failed command prints; a successful one ends with
    one ``warning: ...`` line per distinct warning.
    """
    held: list[str] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record.getMessage())

    logger, handler = logging.getLogger("snnconv"), Hold(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield held
        held.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    silence(args.quiet)
    with _warnings_after_success() as held:
        try:
            args.run(args)
        except BrokenPipeError:  # the reader of our output left (``snnconv report --json | head``): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            return 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away
        except (SnnconvError, OSError) as exc:  # OSError: a full disk or a denied permission while writing
            if args.debug:
                raise
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
    for message in dict.fromkeys(held):
        print(f"warning: {_one_line(message)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
