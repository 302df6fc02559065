"""Is a difference between two detectors more than noise? A paired bootstrap over the evaluated images.

Both runs' detections are scored against the same ground truth. A bootstrap sample draws the images
with replacement (seeded, ``numpy.random.default_rng(seed)``) and recomputes, for both runs on that
same sample, the mean COCO-style AP at IoU ``iou`` and the mean hit rate (``detection_ap``); the 95 %
interval of run B minus run A is the 2.5th and 97.5th percentiles of the sampled differences. An
interval that holds 0 means the test set cannot tell the runs apart at that confidence.

Each image's matches are computed once (pycocotools' ``COCOeval.evaluate``, and ``hits_per_image``); a
sample only reweights them: an image drawn k times counts k times, exactly as if its ground truth and
detections were repeated k times (checked against pycocotools on such a copy in the tests). So a
sample costs one weighted cumulative sum per class instead of a new evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from pycocotools.coco import COCO

from .coco_json import load_coco_gt, read_json, usable_detections
from .detection_ap import hits_per_image, matched_coco_eval

__all__ = ["ImageMatches", "image_matches", "paired_bootstrap", "weighted_metrics"]


@dataclass
class _ClassMatches:
    image: np.ndarray
    """(D,) index of each kept detection's image, detections sorted by score (highest first)."""
    true_positive: np.ndarray
    """(D,) bool."""
    positives: np.ndarray
    """(I,) non-ignored ground-truth boxes per image."""
    hits: np.ndarray
    """(I,) ground-truth boxes hit per image (``hits_per_image``)."""
    boxes: np.ndarray
    """(I,) non-crowd ground-truth boxes per image (the hit rate's denominator)."""


@dataclass
class ImageMatches:
    """Per image and class, what AP and the hit rate need, for one run's detections."""

    image_ids: List
    classes: Dict[int, _ClassMatches]


def image_matches(gt: COCO, detections: List[dict], iou: float, max_dets: int = 100) -> ImageMatches:
    """Match ``detections`` (COCO results of ``gt``'s images and categories) once, image by image."""
    image_ids = list(gt.getImgIds())
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    evaluation = matched_coco_eval(gt, detections, iou, max_dets)
    n_images = len(image_ids)
    per_class_images = {cat: [] for cat in evaluation.params.catIds}
    # evalImgs is ordered category-major, then area range (one here), then image, as params.imgIds
    for k, cat in enumerate(evaluation.params.catIds):
        for i, image_id in enumerate(evaluation.params.imgIds):
            e = evaluation.evalImgs[k * len(evaluation.params.imgIds) + i]
            if e is not None:
                per_class_images[cat].append((index[image_id], e))
    hits = hits_per_image(gt, detections, iou)
    classes = {}
    for cat, entries in per_class_images.items():
        scores, image, tp = [], [], []
        positives = np.zeros(n_images)
        for i, e in entries:  # as COCOeval.accumulate: images in order, then one stable sort by score
            keep = ~np.asarray(e["dtIgnore"], bool).reshape(1, -1)[0]
            matched = np.asarray(e["dtMatches"]).reshape(1, -1)[0] > 0
            scores.append(np.asarray(e["dtScores"], np.float64)[keep])
            tp.append(matched[keep])
            image.append(np.full(int(keep.sum()), i))
            positives[i] = int((~np.asarray(e["gtIgnore"], bool)).sum())
        scores = np.concatenate(scores) if scores else np.zeros(0)
        order = np.argsort(-scores, kind="mergesort")
        hit_counts, boxes = np.zeros(n_images), np.zeros(n_images)
        for image_id in image_ids:
            hit_counts[index[image_id]], boxes[index[image_id]] = hits.get((image_id, cat), (0, 0))
        classes[cat] = _ClassMatches(
            image=(np.concatenate(image) if image else np.zeros(0, int))[order].astype(int),
            true_positive=(np.concatenate(tp) if tp else np.zeros(0, bool))[order],
            positives=positives,
            hits=hit_counts,
            boxes=boxes,
        )
    return ImageMatches(image_ids, classes)


RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""pycocotools' recThrs."""


def _weighted_ap(matches: _ClassMatches, weights: np.ndarray) -> Optional[float]:
    """COCOeval.accumulate's 101-point AP with each image counted ``weights[image]`` times; None without GT."""
    n_positive = float(weights @ matches.positives)
    if n_positive == 0:
        return None
    w = weights[matches.image]
    tp = np.cumsum(w * matches.true_positive)
    fp = np.cumsum(w * ~matches.true_positive)
    recall = tp / n_positive
    precision = tp / (tp + fp + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    values = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0) if len(tp) else 0.0
    return float(np.mean(values))


def weighted_metrics(matches: ImageMatches, weights: Optional[np.ndarray] = None) -> Dict[str, Optional[float]]:
    """{"AP": mean COCO-style AP, "hit_rate": mean hit rate} in percent, images weighted by ``weights`` (I,)
    (default: each once, which equals ``evaluate_detections``); means over classes with ground truth."""
    if weights is None:
        weights = np.ones(len(matches.image_ids))
    aps, rates = [], []
    for m in matches.classes.values():
        ap = _weighted_ap(m, weights)
        if ap is not None:
            aps.append(ap)
        boxes = float(weights @ m.boxes)
        if boxes:
            rates.append(float(weights @ m.hits) / boxes)
    return {
        "AP": 100.0 * float(np.mean(aps)) if aps else None,
        "hit_rate": 100.0 * float(np.mean(rates)) if rates else None,
    }


def paired_bootstrap(
    gt,
    detections_a,
    detections_b,
    iou: float = 0.4,
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    max_dets: int = 100,
) -> dict:
    """Paired bootstrap interval of (B - A) for the mean AP and the mean hit rate (module docstring).

    ``gt``: COCO JSON (file, loaded, or ``COCO``); ``detections_*``: COCO results (file or list).
    Returns ``{"images", "samples", "seed", "confidence", "iou", "metrics": {"AP" | "hit_rate": {"a", "b",
    "difference", "low", "high", "holds_zero"}}}`` in percent. The same ``seed`` gives the same interval.
    """
    if samples < 1 or not 0 < confidence < 1:
        raise ValueError(f"samples must be >= 1 and confidence in (0, 1), not {samples} and {confidence}")
    coco_gt = gt if isinstance(gt, COCO) else load_coco_gt(gt)
    matches = []
    for source, default_name in ((detections_a, "detections A"), (detections_b, "detections B")):
        raw, name = read_json(source, default_name)
        matches.append(image_matches(coco_gt, usable_detections(coco_gt, raw, name)[0], iou, max_dets))
    a, b = matches
    n = len(a.image_ids)
    rng = np.random.default_rng(seed)
    differences = defaultdict(list)
    for _ in range(samples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        ma, mb = weighted_metrics(a, weights), weighted_metrics(b, weights)
        for key in ma:
            if ma[key] is not None and mb[key] is not None:
                differences[key].append(mb[key] - ma[key])
    point_a, point_b = weighted_metrics(a), weighted_metrics(b)
    tail = 100.0 * (1.0 - confidence) / 2.0
    metrics = {}
    for key in point_a:
        low, high = _percentiles(differences[key], tail)
        difference = None if point_a[key] is None or point_b[key] is None else point_b[key] - point_a[key]
        metrics[key] = {
            "a": point_a[key],
            "b": point_b[key],
            "difference": difference,
            "low": low,
            "high": high,
            "holds_zero": None if low is None else bool(low <= 0.0 <= high),
        }
    return {"images": n, "samples": samples, "seed": seed, "confidence": confidence, "iou": iou, "metrics": metrics}


def _percentiles(values: List[float], tail: float) -> Tuple[Optional[float], Optional[float]]:
    if not values:
        return None, None
    low, high = np.percentile(np.asarray(values), [tail, 100.0 - tail])
    return float(low), float(high)
