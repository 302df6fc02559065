"""What ``tools/predict.py`` writes from ``predictor.ImagePrediction`` s: a COCO file, a CSV, a VinBigData
submission and drawings (detectron2's ``Visualizer``). Files are written atomically.

- ``predictions.json``: COCO: ``images`` (``id``, ``file_name``, ``width``, ``height``: the input's own
  size), ``categories`` (``id``, ``name``), ``annotations`` (``id``, ``image_id``, ``category_id``,
  ``bbox`` [x, y, w, h], ``score``, ``area``), boxes in the input's own pixels;
- ``predictions.csv``: ``file_name,class,score,x_min,y_min,x_max,y_max``, one row per detection;
- ``submission.csv``: the VinBigData challenge's ``image_id,PredictionString`` (``evaluation.vinbigdata``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from detectron2.data.detection_utils import convert_image_to_rgb
from detectron2.structures import Boxes, Instances
from detectron2.utils.visualizer import Visualizer
from PIL import Image

from ..data.classes import VINDR_CXR_CLASSES
from ..evaluation.vinbigdata import Detection, apply_normal_filter, prediction_string, write_submission
from ..utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from .predictor import ImagePrediction

__all__ = [
    "CSV_HEADER",
    "check_vinbigdata_classes",
    "coco_predictions",
    "draw_prediction",
    "submission_rows",
    "write_predictions_csv",
    "write_predictions_json",
    "write_submission",
]

CSV_HEADER = ("file_name", "class", "score", "x_min", "y_min", "x_max", "y_max")


def coco_predictions(
    predictions: Sequence[ImagePrediction], names: Sequence[str], category_ids: Optional[Sequence[int]] = None
) -> dict:
    """The COCO dict of ``predictions.json``; ``category_ids``: the id of each class index (default 1..K);
    an image keeps its dataset id, else it is numbered 1..N."""
    category_ids = list(category_ids) if category_ids is not None else list(range(1, len(names) + 1))
    images, annotations = [], []
    for number, p in enumerate(predictions, start=1):
        image_id = p.image_id if p.image_id is not None else number
        images.append({"id": image_id, "file_name": p.file_name, "width": p.width, "height": p.height})
        for (x, y, w, h), score, c in zip(p.boxes_xywh.tolist(), p.scores.tolist(), p.classes.tolist()):
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[c]}
                | {"bbox": [x, y, w, h], "score": score, "area": w * h}
            )
    categories = [{"id": i, "name": n} for i, n in zip(category_ids, names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_predictions_json(path: str | Path, coco: dict) -> None:
    """``predictions.json``: ``coco_predictions``' dict, compact."""
    atomic_write_json(path, coco, indent=None)


def write_predictions_csv(path: str | Path, predictions: Sequence[ImagePrediction], names: Sequence[str]) -> None:
    """``predictions.csv`` (module docstring): one row per detection, the input's own pixels."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for p in predictions:
        for box, score, c in zip(p.boxes.tolist(), p.scores.tolist(), p.classes.tolist()):
            writer.writerow([p.file_name, names[c], f"{score:.6f}", *(f"{v:.2f}" for v in box)])
    atomic_write_text(path, buffer.getvalue())


def check_vinbigdata_classes(names: Sequence[str]) -> None:
    """ValueError unless the model's classes are VinBigData's 14 findings in their class_id order."""
    if list(names) != list(VINDR_CXR_CLASSES):
        raise ValueError(
            f"--format vinbigdata needs a model of VinDr-CXR's 14 findings in class_id order; its classes are "
            f"{list(names)[:4]}{' ...' if len(names) > 4 else ''} ({len(names)})"
        )


def submission_rows(
    predictions: Sequence[ImagePrediction],
    normal_probabilities: Optional[Mapping[str, float]] = None,
    low: float = 0.0,
    high: float = 0.0,
) -> Dict[str, str]:
    """{image_id (the file name's stem): PredictionString} of every prediction, boxes in its own (DICOM)
    pixels by score; ``14 1 0 0 1 1`` without any; then the two-threshold filter when
    ``normal_probabilities`` ({image_id: probability of normal}) are given. ValueError for two inputs of
    one image id, or an image without a probability."""
    rows: Dict[str, str] = {}
    for p in predictions:
        image_id = Path(p.file_name).stem
        if image_id in rows:
            raise ValueError(f"{p.file_name}: image_id {image_id} is given twice (two files with that name)")
        order = np.argsort(-p.scores, kind="stable")
        entries: List[Detection] = [(int(p.classes[i]), float(p.scores[i]), tuple(p.boxes[i].tolist())) for i in order]
        if normal_probabilities is not None:
            if image_id not in normal_probabilities:
                raise ValueError(f"--normal-probs: no probability for image_id {image_id} ({p.file_name})")
            base = entries or [(14, 1.0, (0.0, 0.0, 1.0, 1.0))]
            entries = apply_normal_filter(base, normal_probabilities[image_id], low, high)
        rows[image_id] = prediction_string(entries)
    return rows


def draw_prediction(
    path: str | Path, prediction: ImagePrediction, input_format: str, metadata, score_thr: float
) -> None:
    """The model's image with the detections scoring at least ``score_thr`` (detectron2's ``Visualizer``), as a PNG."""
    keep = prediction.scores >= score_thr
    sx, sy = prediction.scale
    image = convert_image_to_rgb(prediction.model_image, input_format)
    instances = Instances(image.shape[:2])
    instances.pred_boxes = Boxes(prediction.boxes[keep] / np.array([sx, sy, sx, sy]))
    instances.scores = prediction.scores[keep]
    instances.pred_classes = prediction.classes[keep]
    drawn = Visualizer(image, metadata).draw_instance_predictions(instances).get_image()
    buffer = io.BytesIO()
    Image.fromarray(drawn).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
