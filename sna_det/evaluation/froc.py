"""FROC: sensitivity at a given number of false positives per image, per class, at one IoU threshold.

The free-response ROC of medical detection: detections of a class ranked by score; as the score
threshold falls, sensitivity (the share of the class's ground-truth boxes found) rises with the false
positives per image (false positive detections of the class / images of the ground truth, every
image counted, with boxes or without). Matching is the COCO one of ``detection_ap.matched_coco_eval``
(pycocotools: by score, each detection to the best unmatched ground truth box of its image and class
with IoU >= ``iou``; a second detection of a found box is a false positive; ``iscrowd`` boxes and
the detections on them are neither; at most ``max_dets`` detections per image and class).

``sensitivity at f`` is the highest sensitivity of a threshold whose false positives per image are
<= f (thresholds between detections of equal score are not taken; 0 when even the best-scored
detection exceeds f). Reported at ``FROC_FP_RATES`` (1/8 ... 8, as LUNA16 and most lesion
detection papers), in percent, with their mean (LUNA16's "competition performance metric"), for
each class, the mean over classes with ground truth, and all classes pooled (every detection
ranked together, a box found by a detection of its own class).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO

from ..utils.tables import format_class_table
from .coco_json import Json, load_coco_gt, read_json, usable_detections
from .detection_ap import matched_coco_eval

__all__ = [
    "ALL_CLASSES",
    "FROC_FP_RATES",
    "evaluate_froc",
    "format_froc_table",
    "froc_curves",
    "plot_froc",
    "sensitivity_at",
]

FROC_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""False positives per image at which sensitivity is reported."""
ALL_CLASSES = "all classes (pooled)"

Curve = Tuple[np.ndarray, np.ndarray]
"""(false positives per image, sensitivity in [0, 1]) at each threshold, highest score first; from (0, 0)."""


def _curve(scores: np.ndarray, true_positive: np.ndarray, n_gt: int, n_images: int) -> Curve:
    """The FROC points of ranked detections: one per distinct score (ties taken together), after (0, 0)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, tp = scores[order], true_positive[order].astype(np.float64)
    tp_sum, fp_sum = np.cumsum(tp), np.cumsum(1.0 - tp)
    last_of_tie = np.append(scores[1:] != scores[:-1], True) if len(scores) else np.zeros(0, bool)
    fp = np.concatenate([[0.0], fp_sum[last_of_tie] / n_images])
    sensitivity = np.concatenate([[0.0], tp_sum[last_of_tie] / n_gt])
    return fp, sensitivity


def sensitivity_at(curve: Curve, fp_rates: Sequence[float] = FROC_FP_RATES) -> List[float]:
    """Per rate f, the highest sensitivity of the curve's points with false positives per image <= f."""
    fp, sensitivity = curve
    return [float(sensitivity[fp <= f + 1e-12].max()) for f in fp_rates]


def froc_curves(gt: COCO, detections: List[dict], iou: float, max_dets: int = 100) -> Dict[str, Optional[Curve]]:
    """{class name: its FROC curve (None without ground truth boxes)} and ``ALL_CLASSES``: the pooled curve.

    ``detections``: COCO results of the ground truth's images and categories (already checked).
    """
    evaluation = matched_coco_eval(gt, detections, iou, max_dets)
    n_images = max(len(gt.getImgIds()), 1)
    per_class: Dict[object, list] = {cat: [[], [], 0] for cat in evaluation.params.catIds}
    for record in evaluation.evalImgs:
        if record is None:
            continue
        kept = ~record["dtIgnore"][0].astype(bool)
        found = per_class[record["category_id"]]
        found[0].extend(np.asarray(record["dtScores"], np.float64)[kept])
        found[1].extend(record["dtMatches"][0][kept] > 0)
        found[2] += int((~record["gtIgnore"].astype(bool)).sum())
    curves: Dict[str, Optional[Curve]] = {}
    pooled = [[], [], 0]
    for cat, (scores, tp, n_gt) in per_class.items():
        name = gt.cats[cat]["name"]
        curves[name] = _curve(np.array(scores), np.array(tp, bool), n_gt, n_images) if n_gt else None
        pooled[0] += scores
        pooled[1] += tp
        pooled[2] += n_gt
    curves[ALL_CLASSES] = (
        _curve(np.array(pooled[0]), np.array(pooled[1], bool), pooled[2], n_images) if pooled[2] else None
    )
    return curves


def evaluate_froc(
    gt: Json,
    detections: Json,
    iou: float = 0.4,
    max_dets: int = 100,
    fp_rates: Sequence[float] = FROC_FP_RATES,
    plot: Optional[str | os.PathLike] = None,
) -> dict:
    """FROC of COCO results against COCO ground truth (files, loaded JSON or a ``COCO``), in percent.

    Returns ``{"iou", "fp_rates": [...], "per_class": {name: [sensitivity at each rate] | None},
    "mean": [...] (over classes with boxes) | None, "all_classes": [...] | None (pooled),
    "average": {"per_class", "mean", "all_classes"}: the same, averaged over the rates, "images": n}``; the curves stay
    out (``froc_curves``); ``plot``: a PNG to draw them into (``plot_froc``). Detections of unknown
    images or categories are left out, as by ``evaluate_detections``; broken input raises ``ValueError``.
    """
    if not 0.0 <= iou <= 1.0 or max_dets < 1 or not fp_rates or min(fp_rates) <= 0:
        raise ValueError(f"iou must be in [0, 1], max_dets >= 1 and the rates > 0, not {iou}, {max_dets}, {fp_rates}")
    coco_gt = gt if isinstance(gt, COCO) else load_coco_gt(gt)
    raw, name = read_json(detections, "detections")
    usable, _ = usable_detections(coco_gt, raw, name)
    curves = froc_curves(coco_gt, usable, iou, max_dets)
    if plot is not None:
        plot_froc(curves, plot, iou, fp_rates)
    pooled = curves.pop(ALL_CLASSES)
    per_class = {
        n: (None if c is None else [100.0 * s for s in sensitivity_at(c, fp_rates)]) for n, c in curves.items()
    }
    with_gt = [v for v in per_class.values() if v is not None]
    mean = [float(np.mean(column)) for column in zip(*with_gt)] if with_gt else None
    all_classes = None if pooled is None else [100.0 * s for s in sensitivity_at(pooled, fp_rates)]

    def average(values):
        return None if values is None else float(np.mean(values))

    return {
        "iou": iou,
        "fp_rates": list(fp_rates),
        "per_class": per_class,
        "mean": mean,
        "all_classes": all_classes,
        "average": {
            "per_class": {n: average(v) for n, v in per_class.items()},
            "mean": average(mean),
            "all_classes": average(all_classes),
        },
        "images": len(coco_gt.getImgIds()),
    }


def _rate(f: float) -> str:
    return f"1/{round(1 / f)}" if f < 1 and abs(1 / f - round(1 / f)) < 1e-9 else f"{f:g}"


def format_froc_table(result: dict) -> str:
    """``evaluate_froc``'s result as a table: a row per class, then the mean and the pooled rows; a column per rate."""
    names = [*result["per_class"], "Mean over classes", ALL_CLASSES]
    values = {**result["per_class"], "Mean over classes": result["mean"], ALL_CLASSES: result["all_classes"]}
    averages = result["average"]
    average = {**averages["per_class"], "Mean over classes": averages["mean"], ALL_CLASSES: averages["all_classes"]}
    columns = {
        f"{_rate(f)} FP/img": {n: (None if v is None else v[i]) for n, v in values.items()}
        for i, f in enumerate(result["fp_rates"])
    }
    columns["average"] = average
    table = format_class_table(names[:-1], columns, {h: c[ALL_CLASSES] for h, c in columns.items()}, ALL_CLASSES)
    return table + (
        f"\n(sensitivity in % at IoU >= {result['iou']:g} at each number of false positives per image, over"
        f" {result['images']:,} images; '-': no ground truth boxes of that class)"
    )


def plot_froc(curves: Dict[str, Optional[Curve]], path: str | os.PathLike, iou: float, fp_rates=FROC_FP_RATES) -> None:
    """Write the FROC curves (a line per class, the pooled one thick, dots at ``fp_rates``, the mean over
    classes dashed) as a PNG, atomically."""
    from ..utils.figure_io import new_figure, save_figure

    figure = new_figure(7.0, 4.5)
    axes = figure.add_subplot()
    low, high = min(fp_rates) / 2, max(fp_rates) * 2
    at_rates = []
    for name, curve in curves.items():
        if curve is None:
            continue
        fp, sensitivity = curve
        # the step function of sensitivity_at: flat until the next threshold's false positives
        xs = np.clip(np.append(fp, high), low, high)
        ys = 100.0 * np.append(sensitivity, sensitivity[-1])
        pooled = name == ALL_CLASSES
        style = dict(linewidth=2.5, color="black") if pooled else dict(linewidth=1.2)
        (line,) = axes.step(xs, ys, where="post", label=name, **style)
        points = [100.0 * s for s in sensitivity_at(curve, fp_rates)]
        axes.plot(fp_rates, points, "o", markersize=3.5, color=line.get_color())
        if not pooled:
            at_rates.append(points)
    if at_rates:
        axes.plot(fp_rates, np.mean(at_rates, axis=0), "s--", color="gray", markersize=4, label="mean over classes")
    axes.set_xscale("log", base=2)
    axes.set_xlim(low, high)
    axes.set_xticks(list(fp_rates), [_rate(f) for f in fp_rates])
    axes.set_ylim(0, 100)
    axes.set_xlabel("false positives per image")
    axes.set_ylabel("sensitivity (%)")
    axes.set_title(f"FROC at IoU >= {iou:g}")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(figure, path)
