"""The prepared VinDr-CXR boxes as COCO: the readers' boxes fused (``fusion.py``) into the shared COCO
writer's objects, and each split written by that writer (``coco_writer.convert_split``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..annotated import AnnotatedImage, AnnotatedObject
from ..coco_writer import convert_split
from .annotations import FindingBox, sorted_by_reader
from .fusion import FusionCounts, cluster_boxes, fuse_boxes
from .problems import InputProblems

__all__ = ["coco_split", "fused_objects"]


def fused_objects(
    boxes: List[FindingBox],
    classes: Sequence[str],
    fusion: str,
    iou_thr: float,
    scale: Tuple[float, float],
    counts: FusionCounts,
) -> List[AnnotatedObject]:
    """Fused boxes of one image, in class order, as the COCO writer's objects (``(x, y, w, h)`` in the
    written PNG's pixels: the original's times ``scale`` (x, y)); the fusion's clusters added to ``counts``."""
    by_class = defaultdict(list)
    for box in boxes:
        by_class[box.class_name].append(box)
    sx, sy = scale
    objects = []
    for name in classes:
        if name not in by_class:
            continue
        ordered = sorted_by_reader(by_class[name])
        raw, readers = np.array([b.box for b in ordered]), [b.rad_id for b in ordered]
        clusters = cluster_boxes(raw, fusion, iou_thr, readers)
        counts.add(clusters, readers)
        for x0, y0, x1, y1 in fuse_boxes(raw, fusion, clusters=clusters).tolist():
            box = (x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)
            objects.append(AnnotatedObject(name, box=box, where=f"{name} box {len(objects) + 1}"))
    return objects


class _FusedImages:
    """The COCO writer's ``Reader`` of one split: image_id -> its ``AnnotatedImage`` (PNG and fused boxes)."""

    def __init__(self, records: Dict[str, AnnotatedImage]):
        self.records = records

    def read(self, item: str) -> AnnotatedImage:
        return self.records[item]

    def count_objects(self, item: str) -> int:
        return len(self.records[item].objects)


def coco_split(
    records: Dict[str, AnnotatedImage],
    classes: Sequence[str],
    geometry: Dict[str, Tuple[int, int, int, int]],
    problems: InputProblems,
    description: str,
) -> dict:
    """One split's COCO dict from the shared writer (``coco_writer.convert_split``: its checks, ids,
    categories); each image also gives ``dicom_width`` / ``dicom_height``. What the writer leaves out is
    counted in ``problems``."""
    coco, written, files = convert_split(
        _FusedImages(records), list(records), classes=classes, description=description, supercategory="finding"
    )
    for item in written.images_skipped.skipped:
        problems.skip(item["reason"], item["where"], item["detail"])
    for image, file in zip(coco["images"], files):
        image["file_name"] = file.name
        image["dicom_width"], image["dicom_height"] = geometry[file.stem][:2]
    return coco
