"""Per-class tables in the layout of the paper's Table 4: one row per class, a total row, Markdown."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

from tabulate import tabulate

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
    align = ("left", *("right" for _ in columns))
    return tabulate(rows, headers, tablefmt="pipe", colalign=align, disable_numparse=True)
