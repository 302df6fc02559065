"""A registered dataset's ground truth drawn image by image, as prepared or after the train
augmentations: the report of ``tools/browse_dataset.py``, to check a preparation before training.

As detectron2's ``tools/visualize_data.py``: the dataset's records (``DatasetCatalog``), drawn as they
are, or each passed once through the training mapper ``IntensityDatasetMapper(cfg, is_train=True)`` (the train
resize, flip and any other ``INPUT`` augmentation; crowd boxes dropped, as in training), drawn on the
augmented image. Boxes in the class's colour with its name, by detectron2's Visualizer. Written:
``<NNNN>_<image>.png`` per image, ``index.html`` and ``summary.json`` (boxes per class and image).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import List, Tuple

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import convert_image_to_rgb
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import Visualizer

from ..data.datasets.mapper import IntensityDatasetMapper
from ..data.images import Intensity, read_model_image
from ..utils.figure_io import save_png
from .image_index import IndexRow, class_colors, slug, write_image_index

__all__ = ["browse_dataset"]


def _drawn(image_rgb: np.ndarray, boxes: np.ndarray, names: List[str], colors: dict, max_size: int) -> np.ndarray:
    height, width = image_rgb.shape[:2]
    scale = min(1.0, max_size / max(height, width)) if max_size > 0 else 1.0
    visualizer = Visualizer(image_rgb, scale=scale)
    if len(boxes):
        visualizer.overlay_instances(boxes=boxes, labels=names, assigned_colors=[colors[n] for n in names])
    return np.ascontiguousarray(visualizer.get_output().get_image())


def browse_dataset(
    cfg: CfgNode,
    dataset_name: str,
    output_dir: str | os.PathLike,
    *,
    augment: bool = False,
    max_images: int = 0,
    max_size: int = 1024,
) -> Tuple[List[IndexRow], dict]:
    """Draw the ground truth of ``dataset_name`` (registered) into ``output_dir`` (module docstring).

    ``augment``: after ``IntensityDatasetMapper(cfg, is_train=True)``; ``max_images``: the first N records
    (0: all); ``max_size``: the longer side of the PNGs (0: the image's). Returns (rows, totals).
    """
    output_dir = Path(output_dir)
    records = DatasetCatalog.get(dataset_name)
    records = records[:max_images] if max_images > 0 else records
    classes = list(MetadataCatalog.get(dataset_name).thing_classes)
    colors = class_colors(classes)
    mapper = IntensityDatasetMapper(cfg, is_train=True) if augment else None
    intensity = Intensity.from_node(cfg.INPUT.get("INTENSITY"))
    rows: List[IndexRow] = []
    for number, record in enumerate(records):
        if mapper is not None:
            mapped = mapper(copy.deepcopy(record))
            image = convert_image_to_rgb(mapped["image"].permute(1, 2, 0).numpy(), cfg.INPUT.FORMAT)
            instances = mapped["instances"]
            boxes = instances.gt_boxes.tensor.numpy().reshape(-1, 4)
            labels = [int(c) for c in instances.gt_classes]
        else:
            image = read_model_image(record["file_name"], "RGB", 0, intensity=intensity).image  # its own pixels
            annotations = [a for a in record.get("annotations", [])]
            boxes = np.array(
                [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations], np.float64
            ).reshape(-1, 4)
            labels = [int(a["category_id"]) for a in annotations]
        names = [classes[c] for c in labels]
        counts = {c: {"boxes": names.count(c)} for c in classes if c in names}
        png = output_dir / f"{number:04d}_{slug(Path(record['file_name']).stem)}.png"
        save_png(_drawn(np.ascontiguousarray(image), boxes, names, colors, max_size), png)
        rows.append(IndexRow(os.path.basename(record["file_name"]), str(png), counts))
    how = "after the train augmentations (the training mapper, is_train=True)" if augment else "as prepared"
    extra = {"dataset": dataset_name, "augmented": augment, "images_without_boxes": sum(not r.counts for r in rows)}
    title = f"{dataset_name}: ground truth {how}"
    totals = write_image_index(output_dir, title, rows, classes, ("boxes",), f"{len(rows):,} images", extra)
    return rows, totals
