"""Fusing several detectors' boxes with weighted boxes fusion (ensemble-boxes), per image: the logic
behind ``tools/ensemble_detections.py``.

Inputs are COCO results (a list of {image_id, category_id, bbox [x, y, w, h], score}) or
``predictions.json`` files (a COCO dict: ``images`` with id, file_name, width, height; ``categories``;
``annotations`` with image_id, category_id, bbox, score). Every input is put on one *reference* set
of images and categories: the ground truth when given, else the first input that is a predictions
file. A results list's ids are the reference's ids; a predictions file's images are matched to the
reference by ``file_name`` (exactly, else by the file's base name when that is unique), its
categories by name. Boxes are normalised by the image's width and height (WBF works in [0, 1]),
clipped to the image, fused per image and class with ``ensemble_boxes.weighted_boxes_fusion``, and
mapped back to pixels. Detections of an unknown image or category, and boxes of zero area, are left
out and counted (``ENSEMBLE_SKIPPED_REASONS``).

VinBigData submissions (``submission.csv``, boxes in DICOM pixels) are fused by ``fuse_submissions``:
the same WBF on the findings, normalised by the DICOM sizes a prepared dataset records, and the
"No finding" entries averaged per image as the challenge's 2nd-place solution did.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from ensemble_boxes import weighted_boxes_fusion

from ..utils.skip_report import SkipReport
from .coco_json import DETECTION_FIELDS, check_detection, is_id, is_number, read_json

__all__ = [
    "CONF_TYPES",
    "ENSEMBLE_SKIPPED_REASONS",
    "DetectionFile",
    "align_detections",
    "Reference",
    "fuse_detections",
    "fuse_submissions",
    "read_detection_file",
    "reference_from_gt",
]

Json = Union[str, os.PathLike, dict, list]

CONF_TYPES = ("avg", "max", "box_and_model_avg", "absent_model_aware_avg")
"""ensemble-boxes' ways of scoring a fused box (``conf_type``)."""
ENSEMBLE_SKIPPED_REASONS = ("unknown image", "unknown category", "zero-area box")


@dataclass
class DetectionFile:
    """One input: ``detections`` (COCO results, its own ids), and for a predictions file its ``images``
    ({id: image record}) and ``categories`` ({id: name}); None for a results list."""

    name: str
    detections: List[dict]
    images: Optional[Dict[object, dict]] = None
    categories: Optional[Dict[object, str]] = None

    @property
    def is_predictions(self) -> bool:
        return self.images is not None


@dataclass
class Reference:
    """The images ({id: record with width, height, file_name}) and categories ({id: name}) all inputs map to."""

    images: Dict[object, dict]
    categories: Dict[object, str] = field(default_factory=dict)


def _checked_detection(d, where: str) -> dict:
    check_detection(d, where)
    return {key: d[key] for key in DETECTION_FIELDS}


def _image_table(records, name: str, key: str = "images") -> Dict[object, dict]:
    if not isinstance(records, list):
        raise ValueError(f"{name}: field {key} is not a list")
    table = {}
    for i, image in enumerate(records):
        where = f"{name}: {key}[{i}]"
        if not isinstance(image, dict) or "id" not in image or not is_id(image["id"]):
            raise ValueError(f"{where}: not an object with an integer or string id")
        for size in ("width", "height"):
            if not is_number(image.get(size)) or image[size] <= 0:
                raise ValueError(f"{where}: field {size} {image.get(size)!r} is not a number > 0")
        table[image["id"]] = image
    return table


def _category_table(records, name: str) -> Dict[object, str]:
    if not isinstance(records, list):
        raise ValueError(f"{name}: field categories is not a list")
    table = {}
    for i, category in enumerate(records):
        if not isinstance(category, dict) or not is_id(category.get("id")):
            raise ValueError(f"{name}: categories[{i}]: not an object with an integer or string id")
        table[category["id"]] = str(category.get("name", category["id"]))
    return table


def read_detection_file(source: Json, name: Optional[str] = None) -> DetectionFile:
    """A COCO results list or a predictions.json (file or loaded JSON), checked; ``ValueError`` naming
    the file and the record for input that is neither."""
    data, read_name = read_json(source, name or "detections")
    name = name or read_name
    if isinstance(data, list):
        return DetectionFile(name, [_checked_detection(d, f"{name}: detection {i}") for i, d in enumerate(data)])
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        annotations = data["annotations"]
        if not isinstance(annotations, list):
            raise ValueError(f"{name}: field annotations is not a list")
        detections = [_checked_detection(d, f"{name}: annotations[{i}]") for i, d in enumerate(annotations)]
        categories = _category_table(data.get("categories", []), name)
        return DetectionFile(name, detections, _image_table(data["images"], name), categories)
    raise ValueError(
        f"{name}: neither COCO results (a list of image_id, category_id, bbox, score) "
        "nor a predictions file (an object with images and annotations)"
    )


def reference_from_gt(gt: Json) -> Reference:
    """The reference images and categories of a COCO ground truth (file or loaded JSON)."""
    data, name = read_json(gt, "ground truth")
    if not isinstance(data, dict) or "images" not in data:
        raise ValueError(f"{name}: not COCO ground truth (an object with images, annotations, categories)")
    return Reference(_image_table(data["images"], name), _category_table(data.get("categories", []), name))


def _image_matcher(reference: Reference):
    """file_name -> reference image id: exact name, else the base name when only one image has it."""
    exact = {str(image.get("file_name", "")): image_id for image_id, image in reference.images.items()}
    base: Dict[str, list] = defaultdict(list)
    for file_name, image_id in exact.items():
        base[Path(file_name).name].append(image_id)

    def match(file_name: str):
        if file_name in exact:
            return exact[file_name]
        found = base.get(Path(file_name).name, [])
        return found[0] if len(found) == 1 else None

    return match


def _only(ids: list):
    return ids[0] if len(ids) == 1 else None


def align_detections(
    inputs: Sequence[DetectionFile], reference: Optional[Reference] = None
) -> Tuple[List[List[dict]], Reference, SkipReport]:
    """Every input's detections with the ``reference``'s image and category ids (module docstring).

    Without a reference the first predictions file is it; with none among the inputs either, a
    ``ValueError`` says that image sizes need ``--gt``. Returns (aligned detections per input, the
    reference, the ``SkipReport`` of what was left out).
    """
    if reference is None:
        first = next((f for f in inputs if f.is_predictions), None)
        if first is None:
            raise ValueError(
                "COCO results lists carry no image sizes: give the ground truth (--gt) or predictions files"
            )
        reference = Reference(first.images, first.categories)
    match_image = _image_matcher(reference)
    by_name: Dict[str, list] = defaultdict(list)
    for category_id, category_name in reference.categories.items():
        by_name[category_name].append(category_id)
    skipped = SkipReport(ENSEMBLE_SKIPPED_REASONS)
    aligned: List[List[dict]] = []
    for file in inputs:
        image_ids: Dict[object, object] = {}
        category_ids: Dict[object, object] = {}
        if file.is_predictions and file.images is not reference.images:
            image_ids = {i: match_image(str(image.get("file_name", ""))) for i, image in file.images.items()}
            category_ids = {c: _only(by_name.get(n, [])) for c, n in file.categories.items()}
        kept = []
        for index, d in enumerate(file.detections):
            skipped.count_read()
            image_id = image_ids.get(d["image_id"]) if image_ids else d["image_id"]
            category_id = category_ids.get(d["category_id"]) if category_ids else d["category_id"]
            where = f"{file.name}: detection {index}"
            if image_id is None or image_id not in reference.images:
                skipped.skip("unknown image", where, f"image_id {d['image_id']!r} is not among the reference's images")
            elif reference.categories and (category_id is None or category_id not in reference.categories):
                skipped.skip("unknown category", where, f"category_id {d['category_id']!r} is not a reference category")
            elif d["bbox"][2] <= 0 or d["bbox"][3] <= 0:
                skipped.skip("zero-area box", where, f"bbox {d['bbox']!r}")
            else:
                kept.append({**d, "image_id": image_id, "category_id": category_id})
                skipped.count_kept()
        aligned.append(kept)
    return aligned, reference, skipped


def fuse_detections(
    inputs: Sequence[Sequence[dict]],
    image_sizes: Dict[object, Tuple[float, float]],
    *,
    weights: Optional[Sequence[float]] = None,
    iou_thr: float = 0.55,
    skip_box_thr: float = 0.0,
    conf_type: str = "avg",
) -> List[dict]:
    """Weighted boxes fusion of several detectors' COCO results on the same images and categories.

    inputs: per detector, [{image_id, category_id, bbox [x, y, w, h] in pixels, score}];
    image_sizes: {image_id: (width, height)} in pixels, for every image of the inputs.
    weights: one per detector (default all 1); iou_thr: boxes of a class with IoU > it are fused;
    skip_box_thr: scores below it are left out before fusing; conf_type: one of ``CONF_TYPES``.
    Returns the fused COCO results (pixels, [x, y, w, h]), by image in first-seen order, then by score.
    """
    if weights is not None and len(weights) != len(inputs):
        raise ValueError(f"{len(weights)} weights for {len(inputs)} inputs: give one weight per input")
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type {conf_type!r} is not one of {list(CONF_TYPES)}")
    for name, value in (("iou_thr", iou_thr), ("skip_box_thr", skip_box_thr)):
        if not 0.0 <= value <= 1.0:  # NaN too
            raise ValueError(f"{name} {value} is not in [0, 1]")
    if weights is not None and not (all(0.0 <= w < float("inf") for w in weights) and any(weights)):
        raise ValueError(f"weights {list(weights)}: each a finite number >= 0, not all 0")
    images: Dict[object, None] = {}
    categories: Dict[object, int] = {}
    for detections in inputs:
        for d in detections:
            images.setdefault(d["image_id"], None)
            categories.setdefault(d["category_id"], len(categories))
    category_of_label = {label: category for category, label in categories.items()}
    per_image: Dict[object, list] = {image: [[] for _ in inputs] for image in images}
    for model, detections in enumerate(inputs):
        for d in detections:
            per_image[d["image_id"]][model].append(d)
    fused: List[dict] = []
    for image, by_model in per_image.items():
        if image not in image_sizes:
            raise ValueError(f"image {image!r}: no width and height to normalise its boxes by")
        width, height = (float(v) for v in image_sizes[image])
        scale = np.array([width, height, width, height])
        boxes, scores, labels = [], [], []
        for detections in by_model:
            xywh = np.array([d["bbox"] for d in detections], np.float64).reshape(-1, 4)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            boxes.append(np.clip(xyxy / scale, 0.0, 1.0))
            scores.append(np.array([d["score"] for d in detections], np.float64))
            labels.append(np.array([categories[d["category_id"]] for d in detections], np.int64))
        # a box clipped to nothing (outside the image): WBF would warn and drop it
        keep = [(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]) for b in boxes]
        boxes, scores, labels = ([a[k] for a, k in zip(arrays, keep)] for arrays in (boxes, scores, labels))
        out_boxes, out_scores, out_labels = weighted_boxes_fusion(
            boxes,
            scores,
            labels,
            weights=None if weights is None else list(weights),
            iou_thr=iou_thr,
            skip_box_thr=skip_box_thr,
            conf_type=conf_type,
        )
        for box, score, label in zip(np.asarray(out_boxes).reshape(-1, 4) * scale, out_scores, out_labels):
            x0, y0, x1, y1 = (float(v) for v in box)
            fused.append(
                {
                    "image_id": image,
                    "category_id": category_of_label[int(label)],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return fused


def fuse_submissions(
    submissions: Sequence[Dict[str, List[tuple]]],
    image_sizes: Dict[str, Tuple[float, float]],
    *,
    names: Optional[Sequence[str]] = None,
    weights: Optional[Sequence[float]] = None,
    iou_thr: float = 0.55,
    skip_box_thr: float = 0.0,
    conf_type: str = "avg",
) -> Dict[str, List[tuple]]:
    """Several VinBigData submissions (``vinbigdata.read_submission``: {image_id: [(class 0-14, score,
    (x_min, y_min, x_max, y_max) in DICOM pixels)]}) fused into one, per image.

    The findings (classes 0-13) are fused by ``fuse_detections`` (WBF on boxes normalised by
    ``image_sizes``, {image_id: (DICOM width, DICOM height)}, the sizes a prepared dataset records).
    "No finding" (class 14, box ``0 0 1 1``) is not a box to fuse: as the VinBigData 2nd-place solution
    did, each image gets one ``14 p 0 0 1 1`` entry whose ``p`` is the weighted mean of the
    submissions' class-14 scores (0 for a submission without one), appended after the fused boxes;
    an image where every submission says ``14 1 0 0 1 1`` stays so. Every submission must have the
    same images, all in ``image_sizes`` (ValueError naming the file and an image otherwise).
    Returns {image_id: detections} in the first submission's order, boxes by score.
    """
    from .vinbigdata import NO_FINDING_BOX, NO_FINDING_ID

    names = list(names or [f"submission {i + 1}" for i in range(len(submissions))])
    if weights is not None and len(weights) != len(submissions):
        raise ValueError(f"{len(weights)} weights for {len(submissions)} inputs: give one weight per input")
    first = list(submissions[0])
    for name, rows in zip(names, submissions):
        for image_id in first:
            if image_id not in rows:
                raise ValueError(f"{name}: no row for image_id {image_id} of {names[0]}: one test set's submissions")
        extra = next((i for i in rows if i not in submissions[0]), None)
        if extra is not None:
            raise ValueError(f"{name}: image_id {extra} has no row in {names[0]}: give one test set's submissions")
    unknown = next((i for i in first if i not in image_sizes), None)
    if unknown is not None:
        raise ValueError(f"image_id {unknown}: not among the images whose sizes are given (--gt / --sizes)")
    results = [
        [
            {"image_id": image_id, "category_id": c, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s}
            for image_id, detections in rows.items()
            for c, s, (x0, y0, x1, y1) in detections
            if c != NO_FINDING_ID and x1 > x0 and y1 > y0
        ]
        for rows in submissions
    ]
    fused = fuse_detections(
        results, image_sizes, weights=weights, iou_thr=iou_thr, skip_box_thr=skip_box_thr, conf_type=conf_type
    )
    boxes: Dict[str, List[tuple]] = {image_id: [] for image_id in first}
    for d in fused:
        x, y, w, h = d["bbox"]
        boxes[d["image_id"]].append((int(d["category_id"]), d["score"], (x, y, x + w, y + h)))
    w = np.ones(len(submissions)) if weights is None else np.asarray(weights, np.float64)
    out: Dict[str, List[tuple]] = {}
    for image_id in first:
        normal = [max((s for c, s, _ in rows[image_id] if c == NO_FINDING_ID), default=0.0) for rows in submissions]
        p = float(np.dot(w, normal) / w.sum())
        found = sorted(boxes[image_id], key=lambda t: -t[1])
        out[image_id] = [*found, (NO_FINDING_ID, p, NO_FINDING_BOX)] if p > 0 else found  # none: "14 1 0 0 1 1"
    return out
