"""``coco_2017_train`` / ``coco_2017_val`` from a root folder, with a hint when it is missing.

detectron2 registers these names itself at ``$DETECTRON2_DATASETS/coco``; they are registered again
here with the same loader and metadata, so that ``DATASETS.ROOTS.COCO`` can point elsewhere and an
unprepared folder is reported with the path and ``datasets/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from detectron2.data.datasets import load_coco_json
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata

from .catalog import datasets_root, register_dataset

__all__ = ["COCO_2017_SPLITS", "register_coco_2017"]

COCO_2017_SPLITS = {
    "coco_2017_train": ("train2017", "annotations/instances_train2017.json"),
    "coco_2017_val": ("val2017", "annotations/instances_val2017.json"),
}
"""dataset name -> (image folder, annotation file), relative to the COCO root (detectron2's layout)."""


def register_coco_2017(root: str | Path | None = None) -> None:
    """Register ``coco_2017_{train,val}`` below ``root`` (default ``$DETECTRON2_DATASETS/coco``)."""
    root = Path(root) if root else datasets_root() / "coco"
    for name, (image_dir, json_rel) in COCO_2017_SPLITS.items():
        json_file, image_root = root / json_rel, root / image_dir
        register_dataset(
            name,
            lambda j=json_file, i=image_root, n=name: load_coco_json(str(j), str(i), n),
            **_get_builtin_metadata("coco"),
            json_file=str(json_file),
            image_root=str(image_root),
            evaluator_type="coco",
            how_to_prepare=(
                f"COCO 2017 is not in {root}: put it there in detectron2's layout (or set DATASETS.ROOTS.COCO "
                "or DETECTRON2_DATASETS), see datasets/README.md, section 'COCO 2017'."
            ),
        )
