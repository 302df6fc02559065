"""Final metrics of several training runs as one table (the paper's Tables 3 and 4), for ``tools/compare_runs.py``.

Runs given the same name (one configuration trained with several seeds) are one row: mean ± sample
standard deviation (n). ``bootstrap_markdown`` shows ``evaluation.paired_bootstrap``'s intervals: is
a difference between two runs on the same images more than the test set's sampling noise?

A run is an ``OUTPUT_DIR`` of ``tools/train_net.py``. Its metrics come from
``inference/results.json`` (written after every evaluation: ``{dataset: {task: {metric: value}}}``),
else from the last evaluation record of detectron2's ``metrics.json`` (keys ``<task>/<metric>``).
Tasks are detectron2's: ``bbox`` and ``segm`` (COCOEvaluator: AP, AP50, AP75, APs, APm, APl and
``AP-<class>``) and ``per_class_ap@<iou>`` (the VinDr-CXR evaluator: AP and ``AP-<class>``), and the
image classifier's ``auroc`` (``AUROC`` and ``AUROC-<class>``, in %: the paper's Fig. 5 as a table).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tabulate import tabulate

from ..utils.metrics_json import read_metrics

__all__ = [
    "COCO_METRICS",
    "RunMetrics",
    "comparison_csv",
    "bootstrap_markdown",
    "comparison_markdown",
    "detections_file",
    "group_runs",
    "load_run_metrics",
    "mean_std",
]

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
    """``bbox/AP``, ``segm/AP-cat``, ``per_class_ap@0.4/AP``, ``auroc/AUROC``: yes; ``total_loss``, ``sna/...``: no."""
    task = key.split("/", 1)[0] if "/" in key else ""
    return task in ("bbox", "segm", "keypoints", "auroc") or task.startswith("per_class_ap@")


def _columns(runs: Sequence[RunMetrics]) -> List[tuple]:
    """(task, metric) columns of the summary: the COCO metrics and the means of each task (no per-class values)."""
    tasks = list(dict.fromkeys(task for run in runs for task in run))
    columns = []
    for task in tasks:
        names = [m for m in dict.fromkeys(m for run in runs for m in run.get(task, {})) if "-" not in m]
        ordered = [m for m in COCO_METRICS if m in names] + [m for m in names if m not in COCO_METRICS]
        columns += [(task, m) for m in ordered]
    return columns


def _per_class(runs: Sequence[RunMetrics], task: str) -> Dict[str, List[str]]:
    """{metric prefix ("AP", "AP_voc2010", "hit_rate"): [class, ...]} of ``<prefix>-<class>`` keys of ``task``."""
    found: Dict[str, List[str]] = {}
    for run in runs:
        for key in run.get(task, {}):
            if "-" in key:
                prefix, cls = key.split("-", 1)
                found.setdefault(prefix, [])
                if cls not in found[prefix]:
                    found[prefix].append(cls)
    return found


def group_runs(names: Sequence[str], runs: Sequence[RunMetrics]) -> Dict[str, List[RunMetrics]]:
    """Runs of the same name (e.g. one configuration, several seeds) together, in order of first appearance."""
    groups: Dict[str, List[RunMetrics]] = {}
    for name, run in zip(names, runs):
        groups.setdefault(name, []).append(run)
    return groups


def mean_std(values: Sequence[Optional[float]]) -> Tuple[Optional[float], Optional[float], int]:
    """(mean, sample standard deviation (ddof 1; None for one value), n) of the values that are not None."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None, 0
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return float(np.mean(present)), std, len(present)


def _cell(values: Sequence[Optional[float]]) -> str:
    """Cell text: "33.10" for one run, "33.10 ± 1.20 (n=3)" for several, "" for none."""
    mean, std, n = mean_std(values)
    if mean is None:
        return ""
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f} (n={n})"


def comparison_markdown(names: Sequence[str], runs: Sequence[RunMetrics]) -> str:
    """Markdown: a summary (one row per name: runs of one name, e.g. seeds, as mean ± std (n)) and, per
    task and per-class metric (AP, AP_voc2010, hit_rate), classes × names."""
    groups = group_runs(names, runs)
    columns = _columns(runs)
    align = ("left", *("right" for _ in columns))
    rows = [
        [name, *(_cell([r.get(t, {}).get(m) for r in members]) for t, m in columns)] for name, members in groups.items()
    ]
    headers = ["run", *(f"{task} {metric}" for task, metric in columns)]
    parts = [tabulate(rows, headers, tablefmt="pipe", colalign=align, disable_numparse=True)]
    for task in dict.fromkeys(task for run in runs for task in run):
        for prefix, classes in _per_class(runs, task).items():
            rows = [
                [cls, *(_cell([r.get(task, {}).get(f"{prefix}-{cls}") for r in m]) for m in groups.values())]
                for cls in classes
            ]
            rows.append(["mean", *(_cell([r.get(task, {}).get(prefix) for r in m]) for m in groups.values())])
            headers = ["class", *groups]
            align = ("left", *("right" for _ in groups))
            table = tabulate(rows, headers, tablefmt="pipe", colalign=align, disable_numparse=True)
            parts += [f"{task}, {prefix} per class", table]
    return "\n\n".join(parts)


def detections_file(output_dir: str | Path, dataset: Optional[str] = None) -> Path:
    """The COCO results a run's evaluation saved: ``inference/coco_instances_results_<dataset>.json`` (the
    per-class AP evaluator) or ``inference/coco_instances_results.json`` (detectron2's COCOEvaluator).

    Without ``dataset``, the only such file. Raises ``FileNotFoundError`` naming the folder and what it holds.
    """
    folder = Path(output_dir) / "inference"
    found = sorted(folder.glob("coco_instances_results*.json"))
    if dataset is not None:
        found = [f for f in found if f.name == f"coco_instances_results_{dataset}.json"] or [
            f for f in found if f.name == "coco_instances_results.json"
        ]
    if len(found) != 1:
        what = "none" if not found else ", ".join(f.name for f in found) + " (choose one with --dataset)"
        raise FileNotFoundError(f"{folder}: needs one coco_instances_results*.json of the evaluation; found {what}")
    return found[0]


def bootstrap_markdown(names: Sequence[str], results: Sequence[dict]) -> str:
    """``paired_bootstrap`` results as a table: one row per compared pair (``names``: "B vs A")."""
    rows = []
    for name, result in zip(names, results):
        row = [name, f"{result['images']:,}"]
        for key in ("AP", "hit_rate"):
            m = result["metrics"][key]
            if m["difference"] is None or m["low"] is None:
                row += ["", "", ""]
                continue
            row += [
                f"{m['a']:.2f} → {m['b']:.2f}",
                f"{m['difference']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}]",
                "noise (holds 0)" if m["holds_zero"] else "yes",
            ]
        rows.append(row)
    first = results[0] if results else {"iou": 0.4, "confidence": 0.95}
    iou, level = f"{first['iou']:g}", f"{100 * first['confidence']:g} %"
    headers = ["B vs A", "images"]
    for label in (f"AP@{iou}", f"hit@{iou}"):
        headers += [f"{label} A → B", f"B − A [{level} CI]", "differs?"]
    align = ("left", *("right" for _ in headers[1:]))
    return tabulate(rows, headers, tablefmt="pipe", colalign=align, disable_numparse=True)


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
