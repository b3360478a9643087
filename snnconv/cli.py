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
