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

A class without ground truth boxes has AP None (reported as null), not 0; means are over the
other classes. AP is in percent in ``evaluate_detections``' result.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .class_table import format_class_table

__all__ = [
    "coco_ap_per_class",
    "evaluate_detections",
    "format_ap_table",
    "load_coco_gt",
    "voc2010_ap",
    "voc2010_ap_per_class",
]

Json = Union[str, Path, dict, list]


def load_coco_gt(gt: Json) -> COCO:
    """A pycocotools ``COCO`` from a COCO JSON file or dict (pycocotools' progress prints silenced)."""
    data = json.loads(Path(gt).read_text()) if isinstance(gt, (str, Path)) else gt
    coco = COCO()
    coco.dataset = {"annotations": [], **data}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _check_detections(gt: COCO, detections: List[dict], name: str) -> None:
    images, categories = set(gt.getImgIds()), set(gt.getCatIds())
    for i, d in enumerate(detections):
        missing = {"image_id", "category_id", "bbox", "score"} - set(d)
        if missing:
            raise ValueError(f"{name}: detection {i} lacks field(s) {sorted(missing)}")
        if d["image_id"] not in images:
            raise ValueError(f"{name}: detection {i}: field image_id {d['image_id']!r} is not an image of the GT")
        if d["category_id"] not in categories:
            raise ValueError(f"{name}: detection {i}: field category_id {d['category_id']!r} is not a GT category")
        if len(d["bbox"]) != 4 or not np.all(np.isfinite(d["bbox"])) or d["bbox"][2] < 0 or d["bbox"][3] < 0:
            raise ValueError(f"{name}: detection {i}: field bbox {d['bbox']!r} is not [x, y, width >= 0, height >= 0]")


def _results(gt: COCO, detections: List[dict]) -> COCO:
    """``gt.loadRes`` (which cannot take an empty list), silenced."""
    if detections:
        with contextlib.redirect_stdout(io.StringIO()):
            return gt.loadRes([dict(d) for d in detections])
    return load_coco_gt({"images": gt.dataset["images"], "categories": gt.dataset["categories"]})


def coco_ap_per_class(gt: COCO, detections: List[dict], iou: float, max_dets: int = 100) -> Dict[int, Optional[float]]:
    """{category id: COCO-style AP in [0, 1] at IoU >= ``iou``, None without ground truth} (module docstring)."""
    evaluation = COCOeval(gt, _results(gt, detections), "bbox")
    evaluation.params.iouThrs = np.array([iou], dtype=np.float64)
    evaluation.params.maxDets = [max_dets]
    evaluation.params.areaRng, evaluation.params.areaRngLbl = [evaluation.params.areaRng[0]], ["all"]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation.evaluate()
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
    recall = np.concatenate([[0.0], tp_sum / n_gt, [1.0]])
    precision = np.concatenate([[0.0], tp_sum / np.maximum(tp_sum + fp_sum, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


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


def _percent(per_class: Dict[int, Optional[float]], names: Dict[int, str]) -> dict:
    values = [v for v in per_class.values() if v is not None]
    return {
        "per_class": {names[c]: (None if v is None else 100.0 * v) for c, v in per_class.items()},
        "mean": 100.0 * float(np.mean(values)) if values else None,
    }


def evaluate_detections(gt: Json, detections: Json, iou: float = 0.4, max_dets: int = 100) -> dict:
    """Per-class AP of COCO-format ``detections`` against COCO ``gt`` (files or loaded JSON), in percent.

    Returns ``{"iou": iou, "coco": {"per_class": {name: AP | None}, "mean": AP | None}, "voc2010": ...,
    "gt_boxes": {name: count}}``, classes in category id order. Raises ValueError naming the file and
    the detection for a detection of an unknown image or category or with a malformed box.
    """
    name = str(detections) if isinstance(detections, (str, Path)) else "detections"
    coco_gt = gt if isinstance(gt, COCO) else load_coco_gt(gt)
    dets = json.loads(Path(detections).read_text()) if isinstance(detections, (str, Path)) else detections
    if not isinstance(dets, list):
        raise ValueError(f"{name}: expected a list of COCO results (image_id, category_id, bbox, score)")
    _check_detections(coco_gt, dets, name)
    cat_ids = sorted(coco_gt.getCatIds())
    names = {c: coco_gt.cats[c]["name"] for c in cat_ids}
    coco = coco_ap_per_class(coco_gt, dets, iou, max_dets)
    voc = voc2010_ap_per_class(coco_gt, dets, iou)
    return {
        "iou": iou,
        "coco": _percent({c: coco[c] for c in cat_ids}, names),
        "voc2010": _percent({c: voc[c] for c in cat_ids}, names),
        "gt_boxes": {names[c]: len(coco_gt.getAnnIds(catIds=[c])) for c in cat_ids},
    }


def format_ap_table(result: dict) -> str:
    """``evaluate_detections``' result as Table 4: class, GT boxes, AP (COCO 101-point), AP (VOC2010)."""
    iou = result["iou"]
    columns = {
        "GT boxes": result["gt_boxes"],
        f"AP@{iou:g} coco": result["coco"]["per_class"],
        f"AP@{iou:g} voc2010": result["voc2010"]["per_class"],
    }
    total = {
        "GT boxes": sum(result["gt_boxes"].values()),
        f"AP@{iou:g} coco": result["coco"]["mean"],
        f"AP@{iou:g} voc2010": result["voc2010"]["mean"],
    }
    table = format_class_table(list(result["gt_boxes"]), columns, total, total_label="Total (AP: mean)")
    return table + "\n(AP in %; '-': no ground truth boxes of that class, left out of the mean)"
