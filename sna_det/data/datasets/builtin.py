"""Registration of the project's datasets in detectron2's DatasetCatalog / MetadataCatalog.

- ``sna_demo_train`` / ``sna_demo_val``: the synthetic demo dataset (``demo_dataset.py``), written
  to ``$SNA_DET_CACHE`` (default ``~/.cache/sna_det``) on first use.
- ``vindr_cxr_train`` / ``vindr_cxr_val`` / ``vindr_cxr_test``: a prepared VinDr-CXR folder in COCO
  format at ``$SNA_VINDR_CXR_ROOT`` (default ``$DETECTRON2_DATASETS/vindr_cxr``, detectron2's
  ``DETECTRON2_DATASETS`` defaulting to ``datasets``); layout in ``datasets/README.md``.

COCO 2017 and Pascal VOC are registered by detectron2 itself (``detectron2.data.datasets.builtin``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from ..demo_dataset import DEMO_CLASSES, DEMO_SPLITS, demo_dataset_dir, ensure_demo_dataset

__all__ = [
    "DEMO_DATASETS",
    "DatasetNotPreparedError",
    "VINDR_CXR_CLASSES",
    "check_datasets_ready",
    "register_demo_datasets",
    "register_vindr_cxr_datasets",
    "vindr_cxr_root",
]

VINDR_CXR_CLASSES = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
)
"""The 14 findings of the paper's Table 4, in VinBigData's class_id order (0-13)."""

DEMO_DATASETS = tuple(f"sna_demo_{split}" for split in DEMO_SPLITS)


class DatasetNotPreparedError(FileNotFoundError):
    """A registered dataset whose files are not where its registration expects them."""


def _load_demo(split: str) -> list:
    root = ensure_demo_dataset()
    return load_coco_json(str(root / f"{split}.json"), str(root / "images"), f"sna_demo_{split}")


def register_demo_datasets() -> None:
    """Register ``sna_demo_<split>`` for every split of the demo dataset (written on first load)."""
    root = demo_dataset_dir()
    for split in DEMO_SPLITS:
        name = f"sna_demo_{split}"
        DatasetCatalog.register(name, lambda split=split: _load_demo(split))
        MetadataCatalog.get(name).set(
            thing_classes=list(DEMO_CLASSES),
            evaluator_type="coco",
            json_file=str(root / f"{split}.json"),
            image_root=str(root / "images"),
        )


def vindr_cxr_root() -> Path:
    """``$SNA_VINDR_CXR_ROOT``, else ``$DETECTRON2_DATASETS/vindr_cxr`` (``datasets/vindr_cxr``)."""
    if os.environ.get("SNA_VINDR_CXR_ROOT"):
        return Path(os.environ["SNA_VINDR_CXR_ROOT"])
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets")) / "vindr_cxr"


def register_vindr_cxr_datasets(root: Path | None = None) -> None:
    """Register ``vindr_cxr_{train,val,test}`` from ``<root>/annotations/<split>.json`` + ``<root>/images``."""
    root = Path(root) if root is not None else vindr_cxr_root()
    for split in ("train", "val", "test"):
        name = f"vindr_cxr_{split}"
        json_file, image_root = root / "annotations" / f"{split}.json", root / "images"
        DatasetCatalog.register(name, lambda j=json_file, i=image_root, n=name: load_coco_json(str(j), str(i), n))
        MetadataCatalog.get(name).set(
            thing_classes=list(VINDR_CXR_CLASSES),
            evaluator_type="coco",
            json_file=str(json_file),
            image_root=str(image_root),
            how_to_prepare=(
                "VinDr-CXR is not prepared. Convert it into this folder (set SNA_VINDR_CXR_ROOT to use "
                "another) as described in datasets/README.md, section 'VinDr-CXR'."
            ),
        )


def check_datasets_ready(names: Iterable[str]) -> None:
    """Raise ``DatasetNotPreparedError`` naming the first missing file of any of these datasets.

    The demo dataset is written here if it is not yet; other datasets need their metadata's
    ``json_file`` and ``image_root`` (when set) to exist. Unregistered names raise ``KeyError``.
    """
    for name in names:
        if name not in DatasetCatalog.list():
            raise KeyError(f"dataset {name!r} is not registered; registered: {sorted(DatasetCatalog.list())}")
        if name in DEMO_DATASETS:
            ensure_demo_dataset()
            continue
        meta = MetadataCatalog.get(name)
        for field in ("json_file", "image_root"):
            path = meta.get(field, None)
            if path is not None and not Path(path).exists():
                hint = meta.get("how_to_prepare", "See datasets/README.md for the expected layout.")
                raise DatasetNotPreparedError(f"dataset {name!r}: {field} {path} does not exist. {hint}")
