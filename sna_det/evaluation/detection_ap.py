"""Per-class average precision at one IoU threshold, two ways, from COCO-format files.

- ``coco``: COCO-style, by pycocotools' ``COCOeval`` with ``iouThrs = [iou]``: precision
  interpolated at the 101 recall points 0, 0.01, ..., 1 and averaged; a detection matches a ground
  truth box when IoU >= ``iou``; at most ``max_dets`` detections per image and class (highest scores).
- ``voc2010``: all-point interpolated AP (PASCAL VOC 2010 on, the VinBigData competition metric):
  detections of a class sorted by score (ties keep the detections' order), each matched to the
  unmatched ground truth box of its image with the highest IoU when that IoU > ``iou``; the area
  under the precision-recall curve made monotone (precision at recall r = max precision at recall
  >= r). IoU of continuous boxes (no +1 pixel). ``iscrowd`` ground truth counts as VOC "difficult":
  neither found nor missed.
- ``hit_rate``: the metric behind the paper's Table 4 ("AP at IoU > 0.4"), as its authors' code
  computes it (``main_vincxr_det.py``, GitHub fjssharpsword/SFSAttention, commit 4d65811): the share of
  a class's ground-truth boxes that some detection of the same class on the same image overlaps with
  IoU > ``iou``. Every detection counts, whatever its score (no ranking, no precision term, a detection
  may hit several boxes); ``iscrowd`` boxes are neither hit nor missed. Not an average precision:
  detections of a class can only raise it.

A class without ground truth boxes has AP None (reported as null), not 0; means are over the
other classes. AP is in percent in ``evaluate_detections``' result.

Input checks (``evaluate_detections``): structurally broken input (not JSON, not a list / object, a
detection or annotation lacking a field, a box that is not 4 finite numbers with width, height >= 0,
a score that is not a finite number) raises ``ValueError`` naming the file and the index. A
detection of an image or category that the ground truth does not have is left out and counted
(``skipped``); images without any detection are counted too (their ground truth boxes are misses).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from detectron2.evaluation.pascal_voc_evaluation import voc_ap
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..utils.tables import format_class_table
from .coco_json import Json, load_coco_gt, read_json, usable_detections

__all__ = [
    "coco_ap_per_class",
    "evaluate_detections",
    "format_ap_table",
    "format_skipped",
    "boxes_hit",
    "hit_rate_per_class",
    "hits_per_image",
    "matched_coco_eval",
    "voc2010_ap",
    "voc2010_ap_per_class",
]

HIT_RATE_ABOUT = (
    "the metric behind the paper's Table 4 ('AP at IoU > 0.4'): % of a class's ground-truth boxes with a "
    "same-class detection of IoU > {iou:g} on their image, every detection counted; mean over classes with boxes"
)
MAX_EXAMPLES = 5


def _results(gt: COCO, detections: List[dict]) -> COCO:
    """``gt.loadRes`` (which cannot take an empty list), silenced."""
    if detections:
        with contextlib.redirect_stdout(io.StringIO()):
            # only the result fields: loadRes picks its mode by the first result's keys (e.g. "caption")
            return gt.loadRes([{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in detections])
    return load_coco_gt({"images": gt.dataset["images"], "annotations": [], "categories": gt.dataset["categories"]})


def matched_coco_eval(gt: COCO, detections: List[dict], iou: float, max_dets: int = 100) -> COCOeval:
    """pycocotools' ``COCOeval`` at the one IoU ``iou``, all areas, ``max_dets`` per image and class, after
    ``evaluate()`` (its ``evalImgs`` hold each image's matches), before ``accumulate()``."""
    evaluation = COCOeval(gt, _results(gt, detections), "bbox")
    evaluation.params.iouThrs = np.array([iou], dtype=np.float64)
    evaluation.params.maxDets = [max_dets]
    evaluation.params.areaRng, evaluation.params.areaRngLbl = [evaluation.params.areaRng[0]], ["all"]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
    return evaluation


def coco_ap_per_class(gt: COCO, detections: List[dict], iou: float, max_dets: int = 100) -> Dict[int, Optional[float]]:
    """{category id: COCO-style AP in [0, 1] at IoU >= ``iou``, None without ground truth} (module docstring)."""
    evaluation = matched_coco_eval(gt, detections, iou, max_dets)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, 0]  # (101 recall points, K)
    return {
        cat: (None if (precision[:, k] < 0).all() else float(precision[:, k].mean()))
        for k, cat in enumerate(evaluation.params.catIds)
    }


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) xyxy box with (G, 4) xyxy boxes -> (G,)."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, np.finfo(np.float64).tiny)


def voc2010_ap(
    gt_boxes: Dict[object, np.ndarray],
    detections: Sequence[tuple],
    iou: float,
    gt_difficult: Optional[Dict[object, np.ndarray]] = None,
) -> Optional[float]:
    """All-point AP in [0, 1] of one class; None without (non-difficult) ground truth.

    gt_boxes: {image: (G, 4) xyxy}; detections: (image, score, (4,) xyxy) in input order;
    gt_difficult: {image: (G,) bool}, boxes neither found nor missed.
    """
    if gt_difficult is None:
        gt_difficult = {img: np.zeros(len(b), bool) for img, b in gt_boxes.items()}
    difficult = gt_difficult
    n_gt = int(sum((~d).sum() for d in difficult.values()))
    if n_gt == 0:
        return None
    order = np.argsort([-score for _, score, _ in detections], kind="stable")
    matched = {img: np.zeros(len(b), bool) for img, b in gt_boxes.items()}
    tp, fp = [], []
    for i in order:
        image, _, box = detections[i]
        boxes = gt_boxes.get(image, np.zeros((0, 4)))
        overlaps = _iou(np.asarray(box, np.float64), boxes) if len(boxes) else np.zeros(0)
        j = int(np.argmax(overlaps)) if len(overlaps) else -1
        if j >= 0 and overlaps[j] > iou:
            if difficult[image][j]:
                continue
            hit = not matched[image][j]
            matched[image][j] = True
        else:
            hit = False
        tp.append(hit)
        fp.append(not hit)
    tp_sum, fp_sum = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    # the area under the monotone precision-recall curve: detectron2's (py-faster-rcnn's) VOC2010 code
    return float(voc_ap(tp_sum / n_gt, tp_sum / np.maximum(tp_sum + fp_sum, 1e-12), use_07_metric=False))


def _xyxy(bbox: Sequence[float]) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def voc2010_ap_per_class(gt: COCO, detections: List[dict], iou: float) -> Dict[int, Optional[float]]:
    """{category id: VOC2010 all-point AP in [0, 1] at IoU > ``iou``, None without ground truth}."""
    result = {}
    for cat in gt.getCatIds():
        boxes, difficult = {}, {}
        for img in gt.getImgIds():
            anns = gt.loadAnns(gt.getAnnIds(imgIds=[img], catIds=[cat]))
            boxes[img] = np.array([_xyxy(a["bbox"]) for a in anns]).reshape(-1, 4)
            difficult[img] = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
        dets = [(d["image_id"], d["score"], _xyxy(d["bbox"])) for d in detections if d["category_id"] == cat]
        result[cat] = voc2010_ap(boxes, dets, iou, difficult)
    return result


def boxes_hit(gt_boxes: np.ndarray, detected_boxes: np.ndarray, iou: float) -> np.ndarray:
    """Which ground-truth boxes of one class on one image are hit: (G,) bool.

    gt_boxes: (G, 4) xyxy; detected_boxes: (D, 4) xyxy, the same class on the same image. A box is hit
    when its IoU with some detection is > ``iou`` (continuous coordinates, no +1 pixel).
    """
    detected_boxes = np.asarray(detected_boxes, np.float64).reshape(-1, 4)
    if not len(detected_boxes):
        return np.zeros(len(gt_boxes), dtype=bool)
    return np.array([_iou(box, detected_boxes).max() > iou for box in np.asarray(gt_boxes, np.float64)], dtype=bool)


def hits_per_image(gt: COCO, detections: List[dict], iou: float) -> Dict[tuple, Tuple[int, int]]:
    """{(image id, category id): (boxes hit, non-crowd boxes)} for every image and class with ground truth."""
    detected: Dict[tuple, list] = defaultdict(list)
    for d in detections:
        detected[d["image_id"], d["category_id"]].append(_xyxy(d["bbox"]))
    truth: Dict[tuple, list] = defaultdict(list)
    for a in gt.dataset["annotations"]:
        if not a.get("iscrowd", 0):
            truth[a["image_id"], a["category_id"]].append(_xyxy(a["bbox"]))
    return {
        key: (int(boxes_hit(np.array(boxes), np.array(detected[key]), iou).sum()), len(boxes))
        for key, boxes in truth.items()
    }


def hit_rate_per_class(gt: COCO, detections: List[dict], iou: float) -> Dict[int, Optional[float]]:
    """{category id: share in [0, 1] of its (non-crowd) ground-truth boxes hit, None without any}.

    The paper's Table 4 metric (module docstring): every detection counts, whatever its score.
    """
    hits, totals = Counter(), Counter()
    for (_, cat), (hit, boxes) in hits_per_image(gt, detections, iou).items():
        hits[cat] += hit
        totals[cat] += boxes
    return {cat: (hits[cat] / totals[cat] if totals[cat] else None) for cat in gt.getCatIds()}


def _percent(per_class: Dict[int, Optional[float]], names: Dict[int, str]) -> dict:
    values = [v for v in per_class.values() if v is not None]
    return {
        "per_class": {names[c]: (None if v is None else 100.0 * v) for c, v in per_class.items()},
        "mean": 100.0 * float(np.mean(values)) if values else None,
    }


def evaluate_detections(gt: Json, detections: Json, iou: float = 0.4, max_dets: int = 100) -> dict:
    """Per-class AP of COCO-format ``detections`` against COCO ``gt`` (files, loaded JSON or a ``COCO``), in percent.

    Returns ``{"iou": iou, "coco": {"per_class": {name: AP | None}, "mean": AP | None}, "voc2010": ...,
    "hit_rate": {"per_class": {name: % | None}, "mean": % | None, "about": text} (the paper's Table 4
    metric), "gt_boxes": {name: count}, "detections": {"read": n, "evaluated": n}, "images_without_detections": n,
    "skipped": {reason: count}, "skipped_examples": {reason: [message, ...]}}``, classes in category id
    order. Detections of unknown images or categories are skipped and counted (``SKIPPED_REASONS``);
    structurally broken input raises ValueError naming the file and the detection (module docstring).
    """
    if not 0.0 <= iou <= 1.0 or max_dets < 1:
        raise ValueError(f"iou must be in [0, 1] and max_dets >= 1, not {iou} and {max_dets}")
    coco_gt = gt if isinstance(gt, COCO) else load_coco_gt(gt)
    raw, name = read_json(detections, "detections")
    dets, skipped = usable_detections(coco_gt, raw, name)
    cat_ids = sorted(coco_gt.getCatIds())
    names = {c: coco_gt.cats[c]["name"] for c in cat_ids}
    coco = coco_ap_per_class(coco_gt, dets, iou, max_dets)
    voc = voc2010_ap_per_class(coco_gt, dets, iou)
    hits = hit_rate_per_class(coco_gt, dets, iou)
    return {
        "iou": iou,
        "coco": _percent({c: coco[c] for c in cat_ids}, names),
        "voc2010": _percent({c: voc[c] for c in cat_ids}, names),
        "hit_rate": {**_percent({c: hits[c] for c in cat_ids}, names), "about": HIT_RATE_ABOUT.format(iou=iou)},
        "gt_boxes": {names[c]: len(coco_gt.getAnnIds(catIds=[c])) for c in cat_ids},
        "detections": {"read": len(raw), "evaluated": len(dets)},
        "images_without_detections": len(set(coco_gt.getImgIds()) - {d["image_id"] for d in dets}),
        "skipped": skipped.counts,
        "skipped_examples": skipped.examples(MAX_EXAMPLES),
    }


def format_skipped(result: dict) -> str:
    """One line on what ``evaluate_detections`` read, evaluated and left out, then the examples."""
    read, evaluated = result["detections"]["read"], result["detections"]["evaluated"]
    lines = [
        f"detections: {read:,} read, {evaluated:,} evaluated, skipped: "
        + ", ".join(f"{reason} {count:,}" for reason, count in result["skipped"].items())
        + f"; images without detections: {result['images_without_detections']:,}"
    ]
    lines += [f"  e.g. {e}" for found in result["skipped_examples"].values() for e in found[:2]]
    return "\n".join(lines)


def format_ap_table(result: dict) -> str:
    """``evaluate_detections``' result as Table 4: class, GT boxes, AP (COCO 101-point), AP (VOC2010), hit rate."""
    iou = result["iou"]
    metrics = {
        f"AP@{iou:g} coco": result["coco"],
        f"AP@{iou:g} voc2010": result["voc2010"],
        f"hit@{iou:g} (Table 4)": result["hit_rate"],
    }
    columns = {"GT boxes": result["gt_boxes"], **{k: v["per_class"] for k, v in metrics.items()}}
    total = {"GT boxes": sum(result["gt_boxes"].values()), **{k: v["mean"] for k, v in metrics.items()}}
    table = format_class_table(list(result["gt_boxes"]), columns, total, total_label="Total (mean)")
    return table + (
        "\n(in %; '-': no ground truth boxes of that class, left out of the mean; hit: % of ground-truth boxes"
        f" with a same-class detection of IoU > {iou:g}, any score: what the paper's Table 4 reports as AP)"
    )
