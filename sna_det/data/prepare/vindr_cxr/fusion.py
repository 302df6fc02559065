"""Fusing several radiologists' boxes of one finding on one image (``--fusion``).

No fusion that writes training boxes merges two boxes of one reader: a cluster holds at most one box
of each reader (``rad_id``), so one radiologist's two boxes of a finding (a lung opacity in each lung,
two nodules) stay two boxes.

- ``wbf`` (default): weighted boxes fusion as ensemble-boxes' ``weighted_boxes_fusion`` computes it
  with every reader weighing the same (the VinBigData challenge's solutions, at IoU 0.4): boxes are
  taken in (rad_id, coordinates) order; a box joins the cluster whose fused box (the mean of its
  boxes) it overlaps most, by IoU > ``iou_thr``, among the clusters without a box of its reader, else
  it starts a cluster; each cluster becomes the mean of its boxes. Where no reader has two boxes of
  the finding on the image, this is exactly ensemble-boxes' result.
- ``nms``: the same clusters, matched against and represented by their first box (ensemble-boxes'
  ``nms`` with scores decreasing in reader order, one reader's boxes never suppressing each other).
- ``none``: every reader's box is kept.
- ``per-finding``: one box per (image, finding), the coordinate-wise mean of all its boxes: the
  counting of the paper's Table 4. It merges one reader's separate boxes too, so it only counts
  (``--stats-only``); the preparer refuses it for a conversion.

Boxes are (N, 4) arrays of (x_min, y_min, x_max, y_max) in pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Counter as CounterType
from typing import List, Optional, Sequence

import numpy as np
from ensemble_boxes.ensemble_boxes_wbf import find_matching_box_fast

__all__ = ["COUNTING_ONLY", "FUSIONS", "FusionCounts", "cluster_boxes", "fuse_boxes"]

FUSIONS = ("wbf", "nms", "none", "per-finding")
COUNTING_ONLY = ("per-finding",)
"""Fusions that merge one reader's boxes: for counting (``--stats-only``) only."""


def cluster_boxes(
    boxes: np.ndarray, method: str, iou_thr: float = 0.4, readers: Optional[Sequence[str]] = None
) -> List[List[int]]:
    """Clusters of the (N, 4) ``boxes`` (row indices, in order) for ``method`` (module docstring).

    ``readers``: the rad_id of each row (None: every row another reader's). A cluster of ``wbf``,
    ``nms`` or ``none`` never holds two rows of one reader.
    """
    if method not in FUSIONS:
        raise ValueError(f"fusion {method!r} is not one of {FUSIONS}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    readers = list(range(len(boxes))) if readers is None else list(readers)
    if method == "per-finding":
        return [list(range(len(boxes)))] if len(boxes) else []
    if method == "none":
        return [[i] for i in range(len(boxes))]
    clusters: List[List[int]] = []
    # ensemble-boxes' cluster rows: label, score, weight, model, x_min, y_min, x_max, y_max; the label
    # column is 1 for the clusters holding a box of the current reader, so that they cannot match it
    matched_to = np.empty((0, 8))  # per cluster: its mean (wbf) or its first box (nms)
    for i, box in enumerate(boxes):
        row = np.array([0.0, 1.0, 1.0, 0.0, *box])
        matched_to[:, 0] = [float(any(readers[j] == readers[i] for j in members)) for members in clusters]
        best, _ = find_matching_box_fast(matched_to, row, iou_thr)
        if best >= 0:
            clusters[best].append(i)
            if method == "wbf":
                matched_to[best, 4:] = boxes[clusters[best]].mean(axis=0)
        else:
            clusters.append([i])
            matched_to = np.vstack([matched_to, row])
    return clusters


@dataclass
class FusionCounts:
    """What a fusion did over many (image, finding) groups: boxes in, clusters out, by readers per cluster."""

    boxes: int = 0
    clusters: int = 0
    readers_per_cluster: CounterType[int] = field(default_factory=Counter)
    """number of distinct readers -> clusters."""
    one_reader_boxes_merged: int = 0
    """Boxes merged into a cluster holding another box of their reader (``per-finding`` only)."""

    def add(self, clusters: List[List[int]], readers: Sequence[str]) -> None:
        """Count the clusters of one group whose rows have these ``readers``."""
        self.boxes += sum(map(len, clusters))
        self.clusters += len(clusters)
        for members in clusters:
            distinct = len({readers[j] for j in members})
            self.readers_per_cluster[distinct] += 1
            self.one_reader_boxes_merged += len(members) - distinct

    def as_dict(self) -> dict:
        return {
            "boxes": self.boxes,
            "clusters": self.clusters,
            "clusters_by_readers": {str(k): v for k, v in sorted(self.readers_per_cluster.items())},
            "one_reader_boxes_merged": self.one_reader_boxes_merged,
        }


def fuse_boxes(
    boxes: np.ndarray,
    method: str,
    iou_thr: float = 0.4,
    readers: Optional[Sequence[str]] = None,
    clusters: Optional[List[List[int]]] = None,
) -> np.ndarray:
    """(N, 4) boxes of one class on one image -> (M, 4) fused boxes, sorted by coordinates.

    Rows are in the readers' order (callers sort them, ``annotations.sorted_by_reader``); ``clusters``:
    those ``cluster_boxes`` gave for them, if already computed.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if clusters is None:
        clusters = cluster_boxes(boxes, method, iou_thr, readers)
    if method == "nms":
        fused = np.array([boxes[members[0]] for members in clusters]).reshape(-1, 4)
    else:
        fused = np.array([boxes[members].mean(axis=0) for members in clusters]).reshape(-1, 4)
    return fused[np.lexsort(fused.T[::-1])]
