"""Ground truth against detections, per image: the report of ``tools/visualize_predictions.py``.

Per image and class, at one IoU threshold, with the matching of the paper's hit rate
(``sna_det.evaluation.detection_ap.boxes_hit``: IoU > ``iou``, continuous coordinates):

- a detection (score >= the threshold) is a *true positive* when it overlaps some ground-truth box
  of its class, else a *false positive*; a second detection of a found box is a true positive too
  (as in the hit rate, unlike AP, where it is a duplicate);
- a ground-truth box no such detection overlaps is a *miss*.

``iscrowd`` boxes are left out. Drawn with detectron2's Visualizer in the class's colour:
ground truth dashed (faint when found, labelled "miss" when not), true positives solid with their
score, false positives dotted, labelled "FP". Written: ``<NNNN>_<image>.png`` per image, then
``index.html`` and ``summary.json`` (``image_index.write_image_index``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from detectron2.utils.visualizer import Visualizer
from tqdm import tqdm

from ..data.images import read_model_image
from ..evaluation.detection_ap import boxes_hit
from ..utils.figure_io import save_png
from .image_index import IndexRow, class_colors, slug, write_image_index

__all__ = ["OUTCOMES", "ImageOutcome", "match_image", "visualize_predictions"]

OUTCOMES = ("TP", "FP", "miss")


@dataclass(frozen=True)
class ImageOutcome:
    """One class on one image: ``tp`` (D,) bool per detection, ``found`` (G,) bool per ground-truth box."""

    tp: np.ndarray
    found: np.ndarray

    @property
    def counts(self) -> Dict[str, int]:
        return {"TP": int(self.tp.sum()), "FP": int((~self.tp).sum()), "miss": int((~self.found).sum())}


def match_image(gt_boxes: np.ndarray, detected_boxes: np.ndarray, iou: float) -> ImageOutcome:
    """TP / FP per detection and found / missed per ground-truth box, one class on one image.

    gt_boxes: (G, 4) xyxy; detected_boxes: (D, 4) xyxy, in the same pixels. Both ways by ``boxes_hit``.
    """
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    detected_boxes = np.asarray(detected_boxes, np.float64).reshape(-1, 4)
    return ImageOutcome(boxes_hit(detected_boxes, gt_boxes, iou), boxes_hit(gt_boxes, detected_boxes, iou))


def _xyxy(bbox: Sequence[float]) -> List[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _draw(
    image_rgb: np.ndarray,
    items: List[Tuple[str, str, List[float], Optional[float], bool]],
    colors: Dict[str, tuple],
    max_size: int,
) -> np.ndarray:
    """``items``: (kind "gt" / "dt", class, xyxy, score, outcome: found or TP) drawn over the image."""
    height, width = image_rgb.shape[:2]
    scale = min(1.0, max_size / max(height, width)) if max_size > 0 else 1.0
    visualizer = Visualizer(image_rgb, scale=scale)
    font = max(visualizer._default_font_size * 0.7, 7)
    for kind, name, box, score, good in items:
        color = colors[name]
        if kind == "gt":
            visualizer.draw_box(box, alpha=0.4 if good else 1.0, edge_color=color, line_style="--")
            if not good:
                visualizer.draw_text(
                    f"miss {name}", (box[0], box[3]), font_size=font, color=color, horizontal_alignment="left"
                )
        else:
            visualizer.draw_box(box, alpha=0.9, edge_color=color, line_style="-" if good else ":")
            label = f"{name} {score:.2f}" if good else f"FP {name} {score:.2f}"
            visualizer.draw_text(label, (box[0], box[1]), font_size=font, color=color, horizontal_alignment="left")
    return visualizer.get_output().get_image()


def visualize_predictions(
    gt: dict,
    detections: List[dict],
    output_dir: str | os.PathLike,
    image_root: str | os.PathLike,
    *,
    iou: float = 0.4,
    score_threshold: float = 0.5,
    classes: Optional[Sequence[str]] = None,
    max_images: int = 0,
    max_size: int = 1024,
    progress: bool = False,
) -> Tuple[List[IndexRow], Dict[str, Dict[str, int]], List[str]]:
    """Draw and count TP / FP / miss (module docstring) for every image of the COCO ground truth ``gt``.

    detections: COCO results of ``gt``'s images and categories (checked, e.g. by ``load_coco_gt`` and
    ``evaluate_detections``' reader); image files are ``image_root / file_name``. ``classes``: only
    these class names (default all); ``max_images``: the first N images (0: all); ``max_size``: the
    longer side of the PNGs, in pixels (0: the image's); ``progress``: a tqdm bar on stderr. Returns
    (rows, totals {class: {kind: n}},
    file names of images that could not be read, left out).
    """
    output_dir = Path(output_dir)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    chosen = list(names.values()) if classes is None else list(classes)
    colors = class_colors(list(names.values()))
    truth: Dict[object, List[dict]] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd", 0) and names[a["category_id"]] in chosen:
            truth.setdefault(a["image_id"], []).append(a)
    found: Dict[object, List[dict]] = {}
    for d in detections:
        if d["score"] >= score_threshold and names[d["category_id"]] in chosen:
            found.setdefault(d["image_id"], []).append(d)
    images = gt["images"][:max_images] if max_images > 0 else gt["images"]
    rows: List[IndexRow] = []
    unreadable: List[str] = []
    bar = tqdm(images, unit="image", desc="drawing", file=sys.stderr, disable=not progress)
    for number, image in enumerate(bar):
        path = Path(image_root) / image["file_name"]
        try:
            pixels = read_model_image(path, "RGB", max_size=0).image  # a DICOM in its own pixels, as predict's boxes
        except ValueError:
            unreadable.append(str(image["file_name"]))
            continue
        counts: Dict[str, Dict[str, int]] = {}
        items = []
        gts, dts = truth.get(image["id"], []), found.get(image["id"], [])
        for cat, name in names.items():
            if name not in chosen:
                continue
            g = [a for a in gts if a["category_id"] == cat]
            d = sorted((x for x in dts if x["category_id"] == cat), key=lambda x: -x["score"])
            if not g and not d:
                continue
            outcome = match_image([_xyxy(a["bbox"]) for a in g], [_xyxy(x["bbox"]) for x in d], iou)
            counts[name] = outcome.counts
            items += [("gt", name, _xyxy(a["bbox"]), None, bool(f)) for a, f in zip(g, outcome.found)]
            items += [("dt", name, _xyxy(x["bbox"]), x["score"], bool(t)) for x, t in zip(d, outcome.tp)]
        png = output_dir / f"{number:04d}_{slug(Path(str(image['file_name'])).stem)}.png"
        save_png(np.ascontiguousarray(_draw(np.ascontiguousarray(pixels), items, colors, max_size)), png)
        rows.append(IndexRow(str(image["file_name"]), str(png), counts))
    note = (
        f"IoU > {iou:g}, detections scored >= {score_threshold:g}. Dashed: ground truth (faint: found; 'miss': not);"
        " solid: true positive (overlaps a box of its class); dotted 'FP': false positive."
    )
    extra = {"iou": iou, "score_threshold": score_threshold, "unreadable": unreadable}
    totals = write_image_index(output_dir, "Ground truth and detections", rows, chosen, OUTCOMES, note, extra)
    return rows, totals, unreadable
