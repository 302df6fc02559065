"""``voc_2012_coco_{train,val}`` (boxes and masks) and ``voc_2012_coco_detection_{train,val,trainval}``.

The COCO JSONs written by ``datasets/prepare_voc2012_coco.py``. Root: ``DATASETS.ROOTS.VOC_2012_COCO``
in the config, else ``$DETECTRON2_DATASETS/voc_2012_coco``; layout in ``datasets/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from detectron2.data.datasets import load_coco_json

from ..classes import VOC_2012_COCO_SPLITS, VOC_CLASSES
from .catalog import datasets_root, register_dataset

__all__ = ["VOC_CLASSES", "VOC_2012_COCO_SPLITS", "register_voc_2012_coco"]


def register_voc_2012_coco(root: str | Path | None = None) -> None:
    """Register the converted VOC2012 splits below ``root`` (default ``$DETECTRON2_DATASETS/voc_2012_coco``)."""
    root = Path(root) if root else datasets_root() / "voc_2012_coco"
    image_root = root / "JPEGImages"
    for name, stem in VOC_2012_COCO_SPLITS.items():
        json_file = root / "annotations" / f"{stem}.json"
        register_dataset(
            name,
            lambda j=json_file, n=name: load_coco_json(str(j), str(image_root), n),
            thing_classes=list(VOC_CLASSES),
            evaluator_type="coco",
            json_file=str(json_file),
            image_root=str(image_root),
            how_to_prepare=(
                f"VOC2012 is not converted into {root}: run datasets/prepare_voc2012_coco.py --voc-root "
                f"<VOCdevkit/VOC2012> --output-dir {root} (--detection-splits for the detection_* splits), "
                "or set DATASETS.ROOTS.VOC_2012_COCO; see datasets/README.md, section 'Pascal VOC 2012'."
            ),
        )
