"""Fusing several radiologists' boxes of one finding on one image (``--fusion``).

- ``per-finding`` (default): exactly one box, the coordinate-wise mean of all the readers' boxes
  (the box ``wbf`` would give if all of them formed one cluster). The paper's Table 4 counts one box
  per (image, finding), so this is the paper's setting.
- ``wbf``: weighted boxes fusion (ensemble-boxes): a box joins the cluster whose fused box it
  overlaps by IoU > ``iou_thr``, else starts one; each cluster becomes the mean of its boxes (all
  readers weigh the same).
- ``nms``: non-maximum suppression (ensemble-boxes): a box is dropped when it overlaps an earlier
  kept one by IoU > ``iou_thr``; earlier = first in (rad_id, coordinates) order.
- ``none``: every reader's box is kept.

Boxes are (N, 4) arrays of (x_min, y_min, x_max, y_max) in pixels. ensemble-boxes wants coordinates
in [0, 1]; the boxes are mapped there by the affine map sending their own extent to [0, 1] (IoU and
averages do not change under it) and mapped back.
"""

from __future__ import annotations

import numpy as np
from ensemble_boxes import nms, weighted_boxes_fusion

__all__ = ["FUSIONS", "fuse_boxes"]

FUSIONS = ("per-finding", "wbf", "nms", "none")


def _to_unit(boxes: np.ndarray):
    lo = np.array([boxes[:, 0].min(), boxes[:, 1].min()] * 2)
    span = np.array([boxes[:, 2].max() - lo[0], boxes[:, 3].max() - lo[1]] * 2)
    return (boxes - lo) / span, lo, span


def fuse_boxes(boxes: np.ndarray, method: str, iou_thr: float = 0.5) -> np.ndarray:
    """(N, 4) boxes of one class on one image -> (M, 4) fused boxes, M <= N (``per-finding``: M = 1).

    Rows are in the readers' order (callers sort them); the result is sorted by coordinates.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if method not in FUSIONS:
        raise ValueError(f"fusion {method!r} is not one of {FUSIONS}")
    if len(boxes) <= 1 or method == "none":
        return boxes.copy()
    if method == "per-finding":
        return boxes.mean(axis=0, keepdims=True)
    unit, lo, span = _to_unit(boxes)
    labels = [np.zeros(len(boxes))]
    if method == "wbf":
        fused, _, _ = weighted_boxes_fusion([unit], [np.ones(len(boxes))], labels, iou_thr=iou_thr, skip_box_thr=0.0)
    else:  # distinct decreasing scores: the reader order decides which of overlapping boxes is kept
        fused, _, _ = nms([unit], [np.linspace(1.0, 0.5, len(boxes))], labels, iou_thr=iou_thr)
    fused = np.asarray(fused, dtype=np.float64).reshape(-1, 4) * span + lo
    return fused[np.lexsort(fused.T[::-1])]
