"""COCO-format input, checked: ground truth (``load_coco_gt``) and detection results
(``usable_detections``). Structurally broken input (not JSON, not a list / object, a detection or
annotation lacking a field, a box that is not 4 finite numbers with width, height >= 0, a score that
is not a finite number) raises ``ValueError`` naming the file and the index; a detection of an image
or category that the ground truth does not have is left out and counted (``SKIPPED_REASONS``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence, Union

from pycocotools.coco import COCO

from ..utils.skip_report import SkipReport

__all__ = [
    "DETECTION_FIELDS",
    "GT_NAME",
    "SKIPPED_REASONS",
    "Json",
    "check_box",
    "check_detection",
    "is_id",
    "is_number",
    "load_coco_gt",
    "read_json",
    "usable_detections",
]

Json = Union[str, Path, dict, list]
"""A COCO file's path, or its parsed content."""

SKIPPED_REASONS = ("unknown image_id", "unknown category_id")
"""Why a detection is left out of the evaluation (counted in the result's ``skipped``)."""
GT_NAME = "ground truth"
DETECTION_FIELDS = ("image_id", "category_id", "bbox", "score")
"""The fields of a COCO result (one detection)."""


def read_json(source: Json, default_name: str) -> tuple:
    """(data, name) of a JSON file or already-loaded JSON; ValueError naming the file if it is not JSON."""
    if not isinstance(source, (str, Path)):
        return source, default_name
    try:
        return json.loads(Path(source).read_bytes()), str(source)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: not a JSON file ({error})") from None


def is_number(value) -> bool:
    """A finite int or float (JSON's huge integers that overflow a float are not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def check_box(bbox, where: str) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)) or min(bbox[2:]) < 0:
        raise ValueError(f"{where}: field bbox {bbox!r} is not [x, y, width >= 0, height >= 0] of finite numbers")


def check_detection(d: Any, where: str) -> None:
    """ValueError naming ``where`` unless ``d`` is a COCO result: an object with ``DETECTION_FIELDS``, integer or
    string ids, a ``check_box`` box and a finite score."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} is a {type(d).__name__}, not an object")
    missing = sorted(set(DETECTION_FIELDS) - set(d))
    if missing:
        raise ValueError(f"{where} lacks field(s) {missing}")
    for field in ("image_id", "category_id"):
        if not is_id(d[field]):
            raise ValueError(f"{where}: field {field} {d[field]!r} is not an integer or string")
    check_box(d["bbox"], where)
    if not is_number(d["score"]):
        raise ValueError(f"{where}: field score {d['score']!r} is not a finite number")


def _records(data: dict, key: str, fields: Sequence[str], name: str) -> list:
    records = data.get(key, [])
    if not isinstance(records, list):
        raise ValueError(f"{name}: field {key} is a {type(records).__name__}, not a list")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{name}: {key}[{i}] is a {type(record).__name__}, not an object")
        missing = [f for f in fields if f not in record]
        if missing:
            raise ValueError(f"{name}: {key}[{i}] lacks field(s) {missing}")
    return records


def _checked_gt(data, name: str) -> dict:
    """A copy of COCO ground truth that pycocotools evaluates correctly, or ValueError naming the field.

    Annotations are renumbered 1..N (pycocotools takes id 0 for "unmatched" and needs unique ids);
    ``iscrowd`` defaults to 0 and ``area`` to the box area.
    """
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"{name}: not COCO ground truth: a {kind}, not an object with images, annotations, categories")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise ValueError(
            f"{name}: not COCO ground truth: lacks {', '.join(missing)} (COCO has images, annotations, categories)"
        )
    images = _records(data, "images", ["id"], name)
    categories = _records(data, "categories", ["id", "name"], name)
    annotations = _records(data, "annotations", ["image_id", "category_id", "bbox"], name)
    for key, records, field, valid in (
        ("images", images, "id", is_id),
        ("categories", categories, "id", is_id),
        ("categories", categories, "name", lambda v: isinstance(v, str)),
    ):
        seen = set()
        for i, record in enumerate(records):
            value = record[field]
            if not valid(value):
                kind = "an integer or string" if field == "id" else "a string"
                raise ValueError(f"{name}: {key}[{i}]: field {field} {value!r} is not {kind}")
            if value in seen:
                raise ValueError(f"{name}: {key}[{i}]: field {field} {value!r} appears twice")
            seen.add(value)
    image_ids, category_ids = {i["id"] for i in images}, {c["id"] for c in categories}
    checked = []
    for i, ann in enumerate(annotations):
        where = f"{name}: annotations[{i}]"
        for field, known in (("image_id", image_ids), ("category_id", category_ids)):
            if not is_id(ann[field]) or ann[field] not in known:
                raise ValueError(f"{where}: field {field} {ann[field]!r} is not an id of the {field[:-3]}s")
        check_box(ann["bbox"], where)
        area = ann.get("area", ann["bbox"][2] * ann["bbox"][3])
        if not is_number(area) or area < 0:
            raise ValueError(f"{where}: field area {area!r} is not a finite number >= 0")
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, float):
            raise ValueError(f"{where}: field iscrowd {iscrowd!r} is not 0 or 1")
        checked.append({**ann, "id": i + 1, "area": area, "iscrowd": int(iscrowd)})
    return {**data, "images": images, "categories": categories, "annotations": checked}


def load_coco_gt(gt: Json) -> COCO:
    """A pycocotools ``COCO`` from a COCO JSON file or dict (pycocotools' progress prints silenced).

    Raises ValueError naming the file and the field for input pycocotools cannot evaluate (``_checked_gt``).
    """
    data, name = read_json(gt, GT_NAME)
    coco = COCO()
    coco.dataset = _checked_gt(data, name)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def usable_detections(gt: COCO, detections, name: str) -> tuple:
    """(detections of GT images and categories, ``SkipReport`` of the others); ValueError if broken."""
    if not isinstance(detections, list):
        raise ValueError(f"{name}: expected a list of COCO results (image_id, category_id, bbox, score)")
    images, categories = set(gt.getImgIds()), set(gt.getCatIds())
    usable, skipped = [], SkipReport(SKIPPED_REASONS)
    for i, d in enumerate(detections):
        where = f"{name}: detection {i}"
        check_detection(d, where)
        reason = None
        if d["image_id"] not in images:
            reason, value = "unknown image_id", d["image_id"]
        elif d["category_id"] not in categories:
            reason, value = "unknown category_id", d["category_id"]
        if reason is None:
            usable.append(d)
            continue
        skipped.skip(reason, where, f"{reason[8:]} {value!r} is not in the ground truth")
    return usable, skipped
