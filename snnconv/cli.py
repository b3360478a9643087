"""The ``snnconv`` command line. Thin: parse, call the library, print.

User mistakes print one line ``error: ...`` to stderr and exit with code 2 (with
``--debug`` the traceback too). ``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

from snnconv import __version__
from snnconv.errors import SnnconvError

__all__ = ["main"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 3,32,32") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive integer")
    return dims


def _cmd_inspect(args: argparse.Namespace) -> None:
    from snnconv.frontend import load_onnx
    from snnconv.summary import render_summary, summary_dict

    summary = summary_dict(load_onnx(args.model, input_shape=args.input_shape), str(args.model))
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))


def _cmd_targets(args: argparse.Namespace) -> None:
    from snnconv import targets
    from snnconv.table import render_table

    if args.toml:
        print(targets.get(args.toml).to_toml(), end="")
        return
    chips = [targets.get(name) for name in targets.names()]
    if args.json:
        print(json.dumps([_json_safe(chip.to_dict()) for chip in chips], indent=2))
        return
    print(render_table(["target", "neurons/core", "cores/chip", "weights", "state", "reset", "pJ/synop", "about"],
                       [_target_row(chip) for chip in chips]))
    print("\n`snnconv targets --toml NAME` prints a target as TOML: edit it and pass the file as --target.")


def _target_row(chip) -> list[str]:
    p = chip.precision
    weights = "float" if p.is_float else f"{p.weight_bits}-bit" + (
        f" x 2^[{p.weight_exponent[0]},{p.weight_exponent[1]}]" if p.weight_exponent[1] > p.weight_exponent[0] else "")
    neurons = chip.core.neurons
    neurons = f"{min(neurons):,}-{max(neurons):,}" if isinstance(neurons, tuple) else _limit(neurons)
    reset = "subtract" if "subtract" in chip.neuron.reset else f"zero (subtract: x{chip.neuron.subtract_compartments})"
    return [chip.name, neurons, _limit(chip.chip.cores), weights, "float" if p.is_float else f"{p.state_bits}-bit",
            reset, f"{chip.costs.synop_pj:g}", chip.description]


def _limit(value) -> str:
    return "no limit" if value == float("inf") else f"{value:,}"


def _json_safe(value):
    """JSON has no infinity: unlimited numbers are written as null."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return None if value == float("inf") else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnconv", description="ANN-to-SNN conversion compiler for neuromorphic chips.")
    parser.add_argument("--version", action="version", version=f"snnconv {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="show a model as snnconv reads it: layers, shapes, params, MACs")
    inspect.add_argument("model", help="path of an .onnx model")
    inspect.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                         help="one sample's shape, for models whose non-batch dimensions are dynamic")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(run=_cmd_inspect)

    chips = commands.add_parser("targets", help="list the chips snnconv compiles for, with their limits")
    chips.add_argument("--json", action="store_true", help="print every field as JSON (unlimited: null)")
    chips.add_argument("--toml", metavar="NAME", help="print one target as a TOML file to start your own from")
    chips.set_defaults(run=_cmd_targets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except SnnconvError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
