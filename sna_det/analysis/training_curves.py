"""Training curves from detectron2's ``metrics.json``: losses, AP and any logged scalar, several runs overlaid.

The runs' records are read by ``sna_det.utils.metrics_json.read_metrics`` (a resumed run's later line
wins, key by key).
"""

from __future__ import annotations

import csv
import io
import math
import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.lines import Line2D

from ..utils import atomic_write_text
from ..utils.figure_io import new_figure, save_figure
from ..utils.metrics_json import read_metrics

__all__ = [
    "AP_PATTERNS",
    "LOSS_PATTERNS",
    "curves_csv",
    "matching_keys",
    "metric_series",
    "plot_metric_grid",
    "write_training_curves",
]

LOSS_PATTERNS = ("total_loss", "loss_*")
AP_PATTERNS = ("*/AP", "*/AP50", "*/AP75")


def metric_series(records: Dict[int, dict], key: str) -> Tuple[np.ndarray, np.ndarray]:
    """(iterations, values) of ``key`` where it is a finite number, as two (N,) arrays."""
    points = [
        (iteration, float(r[key]))
        for iteration, r in records.items()
        if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(r[key])
    ]
    if not points:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    iterations, values = zip(*points)
    return np.array(iterations, dtype=np.int64), np.array(values, dtype=np.float64)


def matching_keys(runs: Dict[str, Dict[int, dict]], patterns: Sequence[str]) -> List[str]:
    """Keys of any run that match one of the shell-style ``patterns`` and have a finite value, ordered
    by pattern then name."""
    keys = sorted({k for records in runs.values() for r in records.values() for k in r if k != "iteration"})
    keys = [k for k in keys if any(metric_series(records, k)[0].size for records in runs.values())]
    ordered: List[str] = []
    for pattern in patterns:
        ordered += [k for k in keys if fnmatch(k, pattern) and k not in ordered]
    return ordered


def plot_metric_grid(
    runs: Dict[str, Dict[int, dict]], keys: Sequence[str], path: str | os.PathLike, title: str = "", columns: int = 3
) -> None:
    """One subplot per key (x: iteration), every run of ``runs`` ({label: read_metrics(...)}) overlaid.

    Each run keeps its colour on every subplot (one legend below them); a series of fewer than 10
    points (e.g. AP evaluated at the end only) is drawn with markers.
    """
    if not keys:
        raise ValueError(f"nothing to plot into {path}: no key matched")
    columns = min(columns, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure = new_figure(3.6 * columns, 2.7 * rows + (0.3 if title else 0))
    grid = figure.subplots(rows, columns, squeeze=False)
    colors = {label: f"C{i % 10}" for i, label in enumerate(runs)}  # one colour per run on every subplot
    for axes, key in zip(grid.flat, keys):
        for label, records in runs.items():
            iterations, values = metric_series(records, key)
            if len(values):
                axes.plot(iterations, values, color=colors[label], marker="o" if len(values) < 10 else None)
        axes.set_title(key, fontsize=10)
        axes.set_xlabel("iteration")
        axes.grid(alpha=0.3)
    for axes in grid.flat[len(keys) :]:
        axes.axis("off")
    handles = [Line2D([], [], color=color, label=label) for label, color in colors.items()]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=9)
    if title:
        figure.suptitle(title)
    save_figure(figure, path)


def curves_csv(runs: Dict[str, Dict[int, dict]], keys: Sequence[str]) -> str:
    """CSV text in long form: run, key, iteration, value, for every point of every key."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", "key", "iteration", "value"])
    for label, records in runs.items():
        for key in keys:
            for iteration, value in zip(*metric_series(records, key)):
                writer.writerow([label, key, int(iteration), repr(float(value))])
    return buffer.getvalue()


def write_training_curves(
    runs: Dict[str, str | os.PathLike], output_dir: str | os.PathLike, extra_patterns: Sequence[str] = ()
) -> Dict[str, List[str]]:
    """Read each run's metrics.json ({label: file or OUTPUT_DIR}) and write into ``output_dir``:
    ``losses.png``, ``ap.png`` (when a run was evaluated), ``metrics.png`` (keys matching
    ``extra_patterns``, e.g. "sna_power/*/map_rel_error_max") and ``training_curves.csv`` (every
    plotted point). Returns {file name: keys plotted}."""
    output_dir = Path(output_dir)
    loaded = {label: read_metrics(path) for label, path in runs.items()}
    figures = {"losses.png": (LOSS_PATTERNS, "Losses"), "ap.png": (AP_PATTERNS, "Average precision")}
    if extra_patterns:
        figures["metrics.png"] = (tuple(extra_patterns), "")
    written: Dict[str, List[str]] = {}
    for name, (patterns, title) in figures.items():
        keys = matching_keys(loaded, patterns)
        if keys:
            plot_metric_grid(loaded, keys, output_dir / name, title)
            written[name] = keys
        elif name != "ap.png":
            raise ValueError(f"no key of {', '.join(map(str, runs.values()))} matches {', '.join(patterns)}")
    all_keys = [k for keys in written.values() for k in keys]
    atomic_write_text(output_dir / "training_curves.csv", curves_csv(loaded, all_keys))
    written["training_curves.csv"] = all_keys
    return written
