"""An index.html over per-image PNGs with per-class counts, filterable by class: the page of
``tools/visualize_predictions.py`` (counts: TP / FP / miss) and ``tools/browse_dataset.py`` (boxes),
written beside a ``summary.json`` of the same counts.

The page holds a totals table (a row per class, a column per kind of count), then a row per image
(its PNG, its name, its non-zero counts); a class and a kind chosen at the top show only the images
with such a count (a few lines of JavaScript; without it every image shows).
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

from ..utils import atomic_write_json, atomic_write_text

__all__ = ["IndexRow", "class_colors", "slug", "write_image_index"]


@dataclass(frozen=True)
class IndexRow:
    """One image of the index: its ``name``, its ``png`` and ``counts`` {class: {kind: n}}."""

    name: str
    png: str
    counts: Dict[str, Dict[str, int]]


def slug(text: str) -> str:
    """``text`` as a file name: runs of other characters than letters, digits, ``._-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def class_colors(classes: Sequence[str]) -> Dict[str, tuple]:
    """{class: RGB in [0, 1]}: matplotlib's tab10 (tab20 beyond ten classes), by position."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    return {name: tuple(float(c) for c in cmap(i % cmap.N)[:3]) for i, name in enumerate(classes)}


SCRIPT = """
function filterRows() {
  var cls = document.getElementById('cls').value, kind = document.getElementById('kind').value;
  var rows = document.querySelectorAll('tr.image'), shown = 0;
  rows.forEach(function (row) {
    var counts = JSON.parse(row.dataset.counts), keep = false;
    Object.keys(counts).forEach(function (c) {
      if (cls !== '' && c !== cls) return;
      Object.keys(counts[c]).forEach(function (k) {
        if ((kind === '' || k === kind) && counts[c][k] > 0) keep = true;
      });
    });
    if (cls === '' && kind === '') keep = true;
    row.style.display = keep ? '' : 'none';
    if (keep) shown += 1;
  });
  document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' images';
}
"""


def _options(values: Sequence[str], everything: str) -> str:
    items = [f'<option value="">{html.escape(everything)}</option>']
    items += [f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values]
    return "".join(items)


def write_image_index(
    output_dir: str | os.PathLike,
    title: str,
    rows: Sequence[IndexRow],
    classes: Sequence[str],
    kinds: Sequence[str],
    note: str = "",
    extra: dict | None = None,
) -> Dict[str, Dict[str, int]]:
    """Write ``index.html`` and ``summary.json`` into ``output_dir``, atomically; returns the totals {class: {kind: n}}.

    ``summary.json``: ``{"totals": {class: {kind: n}}, "images": [{"name", "png", "counts"}], **extra}``,
    PNG paths relative to ``output_dir``. ``classes`` and ``kinds`` fix the order of the tables.
    """
    output_dir = Path(output_dir)
    totals = {c: {k: sum(r.counts.get(c, {}).get(k, 0) for r in rows) for k in kinds} for c in classes}
    colors = class_colors(classes)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in kinds)
    summary_rows = []
    for c in classes:
        r, g, b = (round(255 * v) for v in colors[c])
        cells = "".join(f"<td>{totals[c][k]:,}</td>" for k in kinds)
        summary_rows.append(f'<tr><th style="color:rgb({r},{g},{b})">{html.escape(c)}</th>{cells}</tr>')
    all_row = "".join(f"<td>{sum(totals[c][k] for c in classes):,}</td>" for k in kinds)
    summary_rows.append(f"<tr><th>all classes</th>{all_row}</tr>")
    body = []
    for row in rows:
        src = html.escape(os.path.relpath(row.png, output_dir))
        counts = {c: {k: n for k, n in v.items() if n} for c, v in row.counts.items()}
        counts = {c: v for c, v in counts.items() if v}
        text = "<br>".join(
            html.escape(f"{c}: " + ", ".join(f"{k} {n}" for k, n in v.items())) for c, v in counts.items()
        )
        data, name = html.escape(json.dumps(counts), quote=True), html.escape(row.name)
        body.append(
            f'<tr class="image" data-counts="{data}"><td><a href="{src}"><img src="{src}" alt="{name}"></a></td>'
            f"<td>{name}</td><td>{text or '(nothing)'}</td></tr>"
        )
    style = (
        "img{max-width:480px;height:auto}td,th{padding:4px;vertical-align:top;text-align:left;font:13px sans-serif}"
        "table.totals td{text-align:right}"
    )
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style><script>{SCRIPT}</script></head><body>\n<h2>{html.escape(title)}</h2>\n"
        + (f"<p>{html.escape(note)}</p>\n" if note else "")
        + f'<table class="totals">\n<tr><th>class</th>{head}</tr>\n'
        + "\n".join(summary_rows)
        + "\n</table>\n<p>show images with: <select id='cls' onchange='filterRows()'>"
        + _options(classes, "any class")
        + "</select> <select id='kind' onchange='filterRows()'>"
        + _options(kinds, "anything")
        + f"</select> <span id='shown'>{len(rows)} of {len(rows)} images</span></p>\n<table>\n"
        + "\n".join(body)
        + "\n</table>\n</body></html>\n"
    )
    images: List[dict] = [{"name": r.name, "png": os.path.relpath(r.png, output_dir), "counts": r.counts} for r in rows]
    atomic_write_json(output_dir / "summary.json", {"totals": totals, "images": images, **(extra or {})})
    atomic_write_text(output_dir / "index.html", page)
    return totals
