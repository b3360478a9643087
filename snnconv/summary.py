"""The layer table of ``snnconv inspect``: what each layer is, its size and its cost."""

from __future__ import annotations

from snnconv.ir import Graph, Layer
from snnconv.ir import layers as L
from snnconv.table import human, render_table

__all__ = ["layer_rows", "summary_dict", "render_summary"]

COLUMNS = ("layer", "kind", "details", "output shape", "params", "MACs", "fan-in")


def _details(layer: Layer) -> str:
    """A short description of the layer's options (kernel, stride, ...)."""
    if isinstance(layer, L.Conv):
        kh, kw = layer.weight.shape[2:]
        text = f"{kh}x{kw} s{layer.stride[0]},{layer.stride[1]}"
        if any(layer.pads):
            text += " p" + ",".join(map(str, layer.pads))
        if layer.dilation != (1, 1):
            text += f" d{layer.dilation[0]},{layer.dilation[1]}"
        return text + (f" g{layer.groups}" if layer.groups > 1 else "")
    if isinstance(layer, L.Pool):
        text = f"{layer.mode} {layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]},{layer.stride[1]}"
        return text + (" ceil" if layer.ceil_mode else "") + (" p" + ",".join(map(str, layer.pads)) if any(layer.pads) else "")
    if isinstance(layer, L.ReLU) and layer.max_value is not None:
        return f"max {layer.max_value:g}"
    if isinstance(layer, L.Output) and layer.activation:
        return layer.activation
    if isinstance(layer, L.Add):
        return f"{len(layer.inputs)} inputs"
    return ""


def layer_rows(graph: Graph) -> list[dict]:
    """One dict per layer: name, kind, details, shape, params, MACs, fan-in, inputs."""
    rows = []
    for layer in graph:
        in_shapes = graph.input_shapes(layer)
        rows.append({
            "name": layer.name,
            "kind": layer.kind,
            "details": _details(layer),
            "inputs": list(layer.inputs),
            "shape": list(layer.shape),
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
    return f"{summary['model']}\n\n" + render_table(COLUMNS, rows, foot)
