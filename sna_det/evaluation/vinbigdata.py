"""The VinBigData challenge (Kaggle, 2021): its submission format and its metric.

Submission: a CSV ``image_id,PredictionString``, one row per test image; ``PredictionString`` is
``class score x_min y_min x_max y_max`` repeated, in the original DICOM's pixels, class 0-13 the
findings in ``VINDR_CXR_CLASSES`` order and 14 "No finding" with the box ``0 0 1 1``; an image without
any box has the row ``14 1 0 0 1 1``.

Metric: the mean over the 15 classes of PASCAL VOC 2010's all-point AP at IoU > 0.4
(``detection_ap.voc2010_ap``), boxes in DICOM pixels. "No finding" is a class like the others: every
image without a finding box has one ground-truth box ``[0, 0, 1, 1]`` of class 14, and the
submission's class-14 entries are its detections. Classes without ground truth are left out of the
mean (null). The ground truth is a prepared COCO JSON (``datasets/prepare_vindr_cxr.py``): its boxes
are mapped from the PNG to the DICOM by ``dicom_width / width`` and ``dicom_height / height`` of each
image entry (taken as 1 when a folder prepared before these fields existed lacks them), and an
image's id is its file name's stem, as in the challenge.

Two-threshold filter with an image-level classifier (``apply_normal_filter``), as the strongest
public pipelines did: with ``q`` the probability that an image has a finding (1 - the classifier's
probability of normal ``p``), ``q < low``: the row becomes ``14 1 0 0 1 1``; ``low <= q < high``:
``14 p 0 0 1 1`` is appended; ``q >= high``: unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..data.classes import VINDR_CXR_CLASSES
from ..utils import atomic_write_text
from ..utils.tables import format_class_table
from .detection_ap import voc2010_ap

__all__ = [
    "NO_FINDING_BOX",
    "NO_FINDING_ID",
    "NO_FINDING_ROW",
    "VINBIGDATA_CLASSES",
    "VINBIGDATA_IOU",
    "Detection",
    "apply_normal_filter",
    "coco_results_to_submission",
    "format_vinbigdata_table",
    "parse_prediction_string",
    "prediction_string",
    "read_normal_probabilities",
    "read_submission",
    "vinbigdata_ground_truth",
    "vinbigdata_image_sizes",
    "vinbigdata_of_detections",
    "vinbigdata_score",
    "write_submission",
]

NO_FINDING_ID = 14
NO_FINDING_BOX = (0.0, 0.0, 1.0, 1.0)
NO_FINDING_ROW = "14 1 0 0 1 1"
VINBIGDATA_CLASSES = (*VINDR_CXR_CLASSES, "No finding")
"""The challenge's 15 class ids 0-14."""
VINBIGDATA_IOU = 0.4
HEADER = ("image_id", "PredictionString")

Detection = Tuple[int, float, Tuple[float, float, float, float]]
"""(class id 0-14, score, (x_min, y_min, x_max, y_max) in DICOM pixels)."""


def _number(value: float, digits: int) -> str:
    """``value`` with at most ``digits`` decimals, trailing zeros dropped (1.0 -> "1", 0.25 -> "0.25")."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def prediction_string(detections: Iterable[Detection]) -> str:
    """``class score x_min y_min x_max y_max ...`` (scores to 6 decimals, coordinates to 0.1 pixel), in
    the given order; ``NO_FINDING_ROW`` when there is none."""
    parts = [" ".join([str(int(c)), _number(s, 6), *(_number(v, 1) for v in box)]) for c, s, box in detections]
    return " ".join(parts) if parts else NO_FINDING_ROW


def parse_prediction_string(text: str, where: str) -> List[Detection]:
    """The detections of one ``PredictionString``; ValueError naming ``where`` for a malformed one."""
    fields = text.split()
    if len(fields) % 6:
        raise ValueError(f"{where}: PredictionString has {len(fields)} fields, not a multiple of 6")
    detections = []
    for k in range(0, len(fields), 6):
        try:
            class_id, score, *box = (float(v) for v in fields[k : k + 6])
        except ValueError:
            raise ValueError(f"{where}: PredictionString entry {k // 6}: {fields[k : k + 6]} are not numbers") from None
        if not all(math.isfinite(v) for v in (class_id, score, *box)):
            raise ValueError(f"{where}: PredictionString entry {k // 6}: {fields[k : k + 6]} are not finite numbers")
        if class_id != int(class_id) or not 0 <= class_id <= NO_FINDING_ID:
            raise ValueError(f"{where}: PredictionString entry {k // 6}: class {fields[k]} is not one of 0-14")
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError(
                f"{where}: entry {k // 6}: box {fields[k + 2 : k + 6]} is inverted (x_max < x_min or y_max < y_min)"
            )
        detections.append((int(class_id), score, tuple(box)))
    return detections


def write_submission(path: str | Path, rows: Mapping[str, str]) -> None:
    """Write ``{image_id: PredictionString}`` as the challenge's CSV (atomically), in the given order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows.items())
    atomic_write_text(path, buffer.getvalue())


def read_submission(path: str | Path) -> Dict[str, List[Detection]]:
    """{image_id: detections} of a submission CSV; ValueError naming the file and row when malformed."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not set(HEADER) <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: needs the columns image_id,PredictionString; header: {reader.fieldnames}")
        found: Dict[str, List[Detection]] = {}
        for row in reader:
            where = f"{path}, row {reader.line_num}"
            image_id = (row["image_id"] or "").strip()
            if not image_id:
                raise ValueError(f"{where}: field image_id is empty")
            if image_id in found:
                raise ValueError(f"{where}: image_id {image_id} appears twice")
            found[image_id] = parse_prediction_string(row["PredictionString"] or "", where)
    return found


def read_normal_probabilities(path: str | Path) -> Dict[str, float]:
    """{image_id: probability of normal ("No finding")} from a CSV with the columns ``image_id,normal``;
    ValueError naming the file and row for anything else."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"image_id", "normal"} <= set(reader.fieldnames or []):
            raise ValueError(
                f"{path}: needs the columns image_id,normal (the probability that the image has no finding; "
                f"a classifier's probability p of a finding gives normal = 1 - p); header: {reader.fieldnames}"
            )
        found = {}
        for row in reader:
            where = f"{path}, row {reader.line_num}"
            try:
                p = float(row["normal"])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: field normal {row['normal']!r} is not a number") from None
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{where}: field normal {p} is not a probability in [0, 1]")
            found[(row["image_id"] or "").strip()] = p
    return found


def apply_normal_filter(detections: List[Detection], p_normal: float, low: float, high: float) -> List[Detection]:
    """The two-threshold filter (module docstring) on one image's submission entries (after the
    ``14 1 0 0 1 1`` rule for an image without boxes)."""
    p_finding = 1.0 - p_normal
    if p_finding < low:
        return [(NO_FINDING_ID, 1.0, NO_FINDING_BOX)]
    if p_finding < high:
        return [*detections, (NO_FINDING_ID, p_normal, NO_FINDING_BOX)]
    return list(detections)


def _image_id(file_name: str) -> str:
    return Path(file_name).stem


def _class_of_category(categories: Sequence[dict]) -> Dict[int, int]:
    """{COCO category id: challenge class id 0-13} by name; categories outside the 14 are left out."""
    index = {name: i for i, name in enumerate(VINDR_CXR_CLASSES)}
    return {c["id"]: index[c["name"]] for c in categories if c["name"] in index}


def _dicom_scale(image: dict) -> Tuple[float, float]:
    return image.get("dicom_width", image["width"]) / image["width"], image.get(
        "dicom_height", image["height"]
    ) / image["height"]


def vinbigdata_image_sizes(gt: str | Path | dict) -> Dict[str, Tuple[int, int]]:
    """{image_id (file name's stem): (DICOM width, DICOM height)} of a prepared COCO JSON (file or dict):
    ``dicom_width`` / ``dicom_height`` of each image entry, else its ``width`` / ``height``."""
    data = json.loads(Path(gt).read_bytes()) if isinstance(gt, (str, Path)) else gt
    return {
        _image_id(i["file_name"]): (int(i.get("dicom_width", i["width"])), int(i.get("dicom_height", i["height"])))
        for i in data["images"]
    }


def vinbigdata_ground_truth(gt: str | Path | dict) -> Dict[str, Dict[int, np.ndarray]]:
    """{image_id: {class id 0-14: (G, 4) xyxy boxes in DICOM pixels}} of a prepared COCO JSON (file or
    dict), every image present (those without a finding box with the class-14 box ``[0, 0, 1, 1]``)."""
    data = json.loads(Path(gt).read_bytes()) if isinstance(gt, (str, Path)) else gt
    name = gt if isinstance(gt, (str, Path)) else "ground truth"
    known = {c["name"] for c in data["categories"]}
    missing = [c for c in VINDR_CXR_CLASSES if c not in known]
    if missing:
        raise ValueError(
            f"{name}: not VinDr-CXR ground truth: its categories lack {len(missing)} of the 14 findings "
            f"({', '.join(repr(c) for c in missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            "--metric vinbigdata scores datasets/prepare_vindr_cxr.py's JSONs"
        )
    class_of = _class_of_category(data["categories"])
    boxes: Dict[int, Dict[int, list]] = {image["id"]: {} for image in data["images"]}
    images = {image["id"]: image for image in data["images"]}
    for annotation in data["annotations"]:
        if annotation["category_id"] not in class_of or annotation.get("iscrowd", 0):
            continue
        sx, sy = _dicom_scale(images[annotation["image_id"]])
        x, y, w, h = annotation["bbox"]
        boxes[annotation["image_id"]].setdefault(class_of[annotation["category_id"]], []).append(
            [x * sx, y * sy, (x + w) * sx, (y + h) * sy]
        )
    truth = {}
    for image_id, by_class in boxes.items():
        name = _image_id(images[image_id]["file_name"])
        if name in truth:
            raise ValueError(f"{gt if isinstance(gt, (str, Path)) else 'ground truth'}: image_id {name} appears twice")
        if not by_class:
            by_class = {NO_FINDING_ID: [list(NO_FINDING_BOX)]}
        truth[name] = {c: np.array(b, dtype=np.float64).reshape(-1, 4) for c, b in by_class.items()}
    return truth


def coco_results_to_submission(gt: dict, results: Iterable[dict]) -> Dict[str, str]:
    """{image_id: PredictionString} for every image of the prepared COCO ``gt`` (a dict) from COCO
    results in the PNGs' pixels (``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``):
    boxes mapped to DICOM pixels, ordered by score, ``14 1 0 0 1 1`` for an image without any."""
    class_of = _class_of_category(gt["categories"])
    images = {image["id"]: image for image in gt["images"]}
    per_image: Dict[int, List[Detection]] = {image_id: [] for image_id in images}
    for r in results:
        if r["image_id"] not in images or r["category_id"] not in class_of:
            continue
        sx, sy = _dicom_scale(images[r["image_id"]])
        x, y, w, h = r["bbox"]
        per_image[r["image_id"]].append(
            (class_of[r["category_id"]], float(r["score"]), (x * sx, y * sy, (x + w) * sx, (y + h) * sy))
        )
    return {
        _image_id(images[i]["file_name"]): prediction_string(sorted(d, key=lambda t: -t[1]))
        for i, d in per_image.items()
    }


def vinbigdata_score(
    truth: Mapping[str, Mapping[int, np.ndarray]],
    submission: Mapping[str, Sequence[Detection]],
    iou: float = VINBIGDATA_IOU,
) -> dict:
    """The challenge's metric (module docstring), in percent.

    Returns ``{"iou", "mean": % | None, "per_class": {name: % | None} (15 classes), "gt_boxes": {name: n},
    "images": ground-truth images, "images_without_row": of them, not in the submission (their boxes are
    missed), "rows_not_in_gt": submission rows of other images (left out)}``.
    """
    per_class: Dict[str, Optional[float]] = {}
    gt_boxes: Dict[str, int] = {}
    for class_id, name in enumerate(VINBIGDATA_CLASSES):
        boxes = {image: by_class.get(class_id, np.zeros((0, 4))) for image, by_class in truth.items()}
        detections = [
            (image, score, np.asarray(box, np.float64))
            for image, entries in submission.items()
            if image in truth
            for c, score, box in entries
            if c == class_id
        ]
        ap = voc2010_ap(boxes, detections, iou)
        per_class[name] = None if ap is None else 100.0 * ap
        gt_boxes[name] = int(sum(len(b) for b in boxes.values()))
    if submission and not set(submission) & set(truth):
        example = next(iter(submission))
        raise ValueError(
            f"none of the submission's {len(submission):,} image_ids (e.g. {example!r}) is an image of the ground "
            f"truth (e.g. {next(iter(truth), None)!r}): another dataset's submission"
        )
    values = [v for v in per_class.values() if v is not None]
    return {
        "iou": iou,
        "mean": float(np.mean(values)) if values else None,
        "per_class": per_class,
        "gt_boxes": gt_boxes,
        "images": len(truth),
        "images_without_row": len(set(truth) - set(submission)),
        "rows_not_in_gt": len(set(submission) - set(truth)),
    }


def format_vinbigdata_table(result: dict) -> str:
    """``vinbigdata_score``'s result as a table: class, ground-truth boxes, AP, and the mean."""
    iou = result["iou"]
    column = f"AP@{iou:g} voc2010 (VinBigData)"
    table = format_class_table(
        list(VINBIGDATA_CLASSES),
        {"GT boxes": result["gt_boxes"], column: result["per_class"]},
        {"GT boxes": sum(result["gt_boxes"].values()), column: result["mean"]},
        total_label="Total (mean)",
    )
    return table + (
        f"\n(in %; the VinBigData challenge's metric over 15 classes, 'No finding' as a box [0, 0, 1, 1] on each"
        f" normal image; {result['images']:,} images, {result['images_without_row']:,} without a submission row,"
        f" {result['rows_not_in_gt']:,} rows of other images left out)"
    )


def vinbigdata_of_detections(gt: dict, results: Iterable[dict], iou: float = VINBIGDATA_IOU) -> dict:
    """``vinbigdata_score`` of the submission that COCO ``results`` (PNG pixels) make on the prepared
    ``gt`` (a dict): written as the CSV's strings and read back, so the figure is the one the
    written file scores."""
    rows = coco_results_to_submission(gt, results)
    submission = {image_id: parse_prediction_string(text, image_id) for image_id, text in rows.items()}
    return vinbigdata_score(vinbigdata_ground_truth(gt), submission, iou)
