"""The layer table of ``snnconv inspect``: what each layer is, its size and its cost."""

from __future__ import annotations

import numpy as np

from snnconv.ir import Graph, Layer
from snnconv.ir import layers as L
from snnconv.table import human, render_table

__all__ = ["layer_rows", "summary_dict", "render_summary"]

COLUMNS = ("layer", "kind", "details", "output shape", "params", "MACs", "fan-in")


def _details(layer: Layer, one_d: bool = False) -> str:
    """A short description of the layer's options (kernel, stride, ...).

    In a 1-D network (``Input.one_d``: feature maps (C, 1, L) standing for (C, L)) a window
    is shown along its one axis: kernel ``5``, stride ``s2``, pads ``p1,2`` (begin, end).
    """
    if isinstance(layer, L.Conv):
        text = f"{_window(layer.weight.shape[2:], one_d)} {_per_axis('s', layer.stride, one_d)}"
        if any(layer.pads):
            text += " " + _pads(layer.pads, one_d)
        if layer.dilation != (1, 1):
            text += " " + _per_axis("d", layer.dilation, one_d)
        return text + (f" g{layer.groups}" if layer.groups > 1 else "")
    if isinstance(layer, L.Pool):
        text = f"{layer.mode} {_window(layer.kernel, one_d)} {_per_axis('s', layer.stride, one_d)}"
        if layer.dilation != (1, 1):
            text += " " + _per_axis("d", layer.dilation, one_d)
        return text + (" ceil" if layer.ceil_mode else "") + (" " + _pads(layer.pads, one_d) if any(layer.pads) else "")
    if isinstance(layer, L.Pad):
        return _pads(layer.pads, one_d)
    if isinstance(layer, L.Upsample):
        return f"nearest {_window(layer.factor, one_d)}"
    if isinstance(layer, L.ReLU) and layer.max_value is not None:
        ceiling = np.asarray(layer.max_value)
        return f"max {ceiling.min():g}" + (f"..{ceiling.max():g} per channel" if ceiling.size > 1 else "")
    if isinstance(layer, L.Output) and layer.activation:
        return layer.activation
    if isinstance(layer, L.Add):
        return f"{len(layer.inputs)} inputs"
    return ""


def _window(size: tuple[int, int], one_d: bool) -> str:
    return str(size[1]) if one_d else f"{size[0]}x{size[1]}"


def _per_axis(prefix: str, values: tuple[int, int], one_d: bool) -> str:
    return f"{prefix}{values[1]}" if one_d else f"{prefix}{values[0]},{values[1]}"


def _pads(pads: tuple[int, int, int, int], one_d: bool) -> str:
    """``p`` and the pads: (top, left, bottom, right), or in 1-D (begin, end)."""
    return "p" + ",".join(map(str, (pads[1], pads[3]) if one_d else pads))


def layer_rows(graph: Graph) -> list[dict]:
    """One dict per layer: name, kind, details, shape, params, MACs, fan-in, inputs.

    Shapes and windows are the source model's: (C, L) and kernel ``k`` in a 1-D network.
    """
    rows = []
    one_d = graph.input.one_d
    for layer in graph:
        in_shapes = graph.input_shapes(layer)
        rows.append({
            "name": layer.name,
            "kind": layer.kind,
            "details": _details(layer, one_d),
            "inputs": list(layer.inputs),
            "shape": list(graph.user_shape(layer.shape)),
            "params": layer.params(),
            "macs": layer.macs(in_shapes),
            "fan_in": layer.fan_in(in_shapes),
        })
    return rows


def summary_dict(graph: Graph, model: str) -> dict:
    """The table as JSON-ready data, with totals."""
    rows = layer_rows(graph)
    totals = {"layers": len(rows), "params": sum(r["params"] for r in rows), "macs": sum(r["macs"] for r in rows)}
    return {"model": model, "graph": graph.name, "layers": rows, "totals": totals}


def render_summary(summary: dict) -> str:
    """The table for a terminal."""
    rows = [
        (r["name"], r["kind"], r["details"], "x".join(map(str, r["shape"])), human(r["params"]), human(r["macs"]),
         human(r["fan_in"]))
        for r in summary["layers"]
    ]
    totals = summary["totals"]
    foot = (f"total ({totals['layers']} layers)", "", "", "", human(totals["params"]), human(totals["macs"]), "")
    text = f"{summary['model']}\n\n" + render_table(COLUMNS, rows, foot)
    structure = summary.get("structure")
    if structure and "lowered_layers" in structure:
        text += (f"\n\nstructure: converts for {structure['target']} (lowered to {structure['lowered_layers']} "
                 f"layers of synapse maps, neurons and routing)")
    return text
