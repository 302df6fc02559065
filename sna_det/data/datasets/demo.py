"""``sna_demo_train`` / ``sna_demo_val``: the synthetic demo dataset, written on first use.

The images and COCO JSONs are drawn by ``sna_det.data.prepare.demo`` into ``$SNA_DET_CACHE``
(default ``~/.cache/sna_det``).
"""

from __future__ import annotations

from detectron2.data.datasets import load_coco_json

from ..prepare.demo import DEMO_CLASSES, DEMO_SPLITS, demo_dataset_dir, ensure_demo_dataset
from .catalog import register_dataset

__all__ = ["DEMO_DATASETS", "register_demo_datasets"]

DEMO_DATASETS = tuple(f"sna_demo_{split}" for split in DEMO_SPLITS)


def _load_demo(split: str) -> list:
    root = ensure_demo_dataset()
    return load_coco_json(str(root / f"{split}.json"), str(root / "images"), f"sna_demo_{split}")


def register_demo_datasets() -> None:
    """Register ``sna_demo_<split>`` for every split of the demo dataset (written on first load)."""
    root = demo_dataset_dir()
    for split in DEMO_SPLITS:
        register_dataset(
            f"sna_demo_{split}",
            lambda split=split: _load_demo(split),
            thing_classes=list(DEMO_CLASSES),
            evaluator_type="coco",
            json_file=str(root / f"{split}.json"),
            image_root=str(root / "images"),
            ensure_ready=ensure_demo_dataset,
        )
