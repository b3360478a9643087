"""Plain-text tables for the terminal: aligned columns, numbers right-aligned, a rule
under the header and above the totals row."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render_table", "human"]


def human(value: int) -> str:
    """An integer with thousands separators (``1,234,567``)."""
    return f"{value:,}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[object]], totals: Sequence[object] | None = None) -> str:
    """The table as one string; columns whose body cells are all numbers align right."""
    body = [[str(cell) for cell in row] for row in rows]
    foot = [str(cell) for cell in totals] if totals is not None else None
    everything = [list(header), *body, *([foot] if foot else [])]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule, *(line(row) for row in body)]
    if foot:
        out += [rule, line(foot)]
    return "\n".join(out)


def _is_number(cell: object) -> bool:
    return isinstance(cell, (int, float)) or str(cell).replace(",", "").replace(".", "", 1).isdigit()
