"""Final metrics of several training runs as one table (the paper's Tables 3 and 4), for ``tools/compare_runs.py``.

A run is an ``OUTPUT_DIR`` of ``tools/train_net.py``. Its metrics come from
``inference/results.json`` (written after every evaluation: ``{dataset: {task: {metric: value}}}``),
else from the last evaluation record of detectron2's ``metrics.json`` (keys ``<task>/<metric>``).
Tasks are detectron2's: ``bbox`` and ``segm`` (COCOEvaluator: AP, AP50, AP75, APs, APm, APl and
``AP-<class>``) and ``per_class_ap@<iou>`` (the VinDr-CXR evaluator: AP and ``AP-<class>``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .analysis.training_curves import read_metrics

__all__ = ["COCO_METRICS", "RunMetrics", "comparison_csv", "comparison_markdown", "load_run_metrics"]

COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
RunMetrics = Dict[str, Dict[str, Optional[float]]]
"""task -> metric -> value (None where the evaluator gave NaN: no ground truth)."""


def _clean(value) -> Optional[float]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def load_run_metrics(output_dir: str | Path, dataset: Optional[str] = None) -> RunMetrics:
    """The final metrics of one run: ``{task: {metric: value}}`` of ``dataset`` (default: the first).

    Raises ``FileNotFoundError`` naming the folder when it holds neither file, ``ValueError`` when
    ``dataset`` was not evaluated or the files hold no evaluation.
    """
    output_dir = Path(output_dir)
    results_file = output_dir / "inference" / "results.json"
    if results_file.is_file():
        try:
            by_dataset = json.loads(results_file.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{results_file}: not valid JSON ({error})") from None
        if not by_dataset:
            raise ValueError(f"{results_file}: no evaluation results")
        name = dataset or next(iter(by_dataset))
        if name not in by_dataset:
            raise ValueError(f"{results_file}: no results for dataset {name!r}; it has {sorted(by_dataset)}")
        return {task: {k: _clean(v) for k, v in metrics.items()} for task, metrics in by_dataset[name].items()}
    metrics_file = output_dir / "metrics.json"
    if not metrics_file.is_file():
        raise FileNotFoundError(f"{output_dir}: neither inference/results.json nor metrics.json (not a train_net run?)")
    evaluations = [
        {k: v for k, v in record.items() if _is_evaluation_key(k)} for record in read_metrics(metrics_file).values()
    ]
    last = next((e for e in reversed(evaluations) if e), {})
    if not last:
        raise ValueError(f"{metrics_file}: no evaluation record (keys like 'bbox/AP')")
    run: RunMetrics = {}
    for key, value in last.items():
        task, metric = key.split("/", 1)
        run.setdefault(task, {})[metric] = _clean(value)
    return run


def _is_evaluation_key(key: str) -> bool:
    """``bbox/AP``, ``segm/AP-cat``, ``per_class_ap@0.4/AP``: yes; ``total_loss``, ``sna/...``: no."""
    task = key.split("/", 1)[0] if "/" in key else ""
    return task in ("bbox", "segm", "keypoints") or task.startswith("per_class_ap@")


def _columns(runs: Sequence[RunMetrics]) -> List[tuple]:
    """(task, metric) columns of the summary: the COCO metrics and the mean AP of each task present."""
    tasks = list(dict.fromkeys(task for run in runs for task in run))
    columns = []
    for task in tasks:
        names = list(dict.fromkeys(m for run in runs for m in run.get(task, {})))
        others = [m for m in names if not m.startswith("AP-") and m not in COCO_METRICS]
        ordered = [m for m in COCO_METRICS if m in names] + others
        columns += [(task, m) for m in ordered]
    return columns


def _classes(runs: Sequence[RunMetrics], task: str) -> List[str]:
    return list(dict.fromkeys(m[3:] for run in runs for m in run.get(task, {}) if m.startswith("AP-")))


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}"


def comparison_markdown(names: Sequence[str], runs: Sequence[RunMetrics]) -> str:
    """Markdown: a summary (one row per run) and, per task with per-class AP, classes × runs."""
    columns = _columns(runs)
    lines = [
        "| run | " + " | ".join(f"{task} {metric}" for task, metric in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, run in zip(names, runs):
        lines.append(f"| {name} | " + " | ".join(_fmt(run.get(t, {}).get(m)) for t, m in columns) + " |")
    for task in dict.fromkeys(task for run in runs for task in run):
        classes = _classes(runs, task)
        if not classes:
            continue
        lines += ["", f"{task}, AP per class", "", "| class | " + " | ".join(names) + " |"]
        lines.append("|---|" + "---:|" * len(names))
        for cls in classes:
            lines.append(f"| {cls} | " + " | ".join(_fmt(run.get(task, {}).get(f"AP-{cls}")) for run in runs) + " |")
        lines.append("| mean | " + " | ".join(_fmt(run.get(task, {}).get("AP")) for run in runs) + " |")
    return "\n".join(lines)


def comparison_csv(names: Sequence[str], runs: Sequence[RunMetrics]) -> str:
    """CSV, one row per run, one column per ``task/metric`` of any run (per-class APs included)."""
    keys = list(dict.fromkeys(f"{task}/{metric}" for run in runs for task, m in run.items() for metric in m))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *keys])
    for name, run in zip(names, runs):
        row = [run.get(k.split("/", 1)[0], {}).get(k.split("/", 1)[1]) for k in keys]
        writer.writerow([name, *("" if v is None else repr(v) for v in row)])
    return out.getvalue()
