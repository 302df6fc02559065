"""Per-class tables in the layout of the paper's Table 4: one row per class, a total row, Markdown."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

__all__ = ["format_class_table"]

Value = Optional[Union[int, float]]


def _cell(value: Value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.2f}"


def format_class_table(
    classes: Sequence[str],
    columns: Mapping[str, Mapping[str, Value]],
    total: Mapping[str, Value],
    total_label: str = "Total",
) -> str:
    """A Markdown table: a row per class of ``classes``, a column per ``columns`` entry, then ``total``.

    ``columns``: header -> {class: value}; ``total``: header -> value of the last row. ints print with
    thousands separators (2,433), floats with two decimals (55.75), None as "-".
    """
    headers = ["class", *columns]
    rows = [[name, *(_cell(column.get(name)) for column in columns.values())] for name in classes]
    rows.append([total_label, *(_cell(total.get(header)) for header in columns)])
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        first, rest = cells[0].ljust(widths[0]), [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "| " + " | ".join([first, *rest]) + " |"

    rule = "| " + " | ".join(["-" * widths[0], *("-" * (w - 1) + ":" for w in widths[1:])]) + " |"
    return "\n".join([line(headers), rule, *map(line, rows)])
