"""``vindr_cxr_{train,val,test}``: a VinDr-CXR folder prepared in COCO format.

Root: ``DATASETS.ROOTS.VINDR_CXR`` in the config, else ``$SNA_VINDR_CXR_ROOT``, else
``$DETECTRON2_DATASETS/vindr_cxr``; layout in ``datasets/README.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

from detectron2.data.datasets import load_coco_json

from .catalog import datasets_root, register_dataset

__all__ = ["VINDR_CXR_CLASSES", "register_vindr_cxr_datasets", "vindr_cxr_root"]

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


def vindr_cxr_root() -> Path:
    """``$SNA_VINDR_CXR_ROOT``, else ``$DETECTRON2_DATASETS/vindr_cxr`` (``datasets/vindr_cxr``)."""
    if os.environ.get("SNA_VINDR_CXR_ROOT"):
        return Path(os.environ["SNA_VINDR_CXR_ROOT"])
    return datasets_root() / "vindr_cxr"


def register_vindr_cxr_datasets(root: str | Path | None = None) -> None:
    """Register ``vindr_cxr_{train,val,test}`` from ``<root>/annotations/<split>.json`` + ``<root>/images``."""
    root = Path(root) if root else vindr_cxr_root()
    for split in ("train", "val", "test"):
        name = f"vindr_cxr_{split}"
        json_file, image_root = root / "annotations" / f"{split}.json", root / "images"
        register_dataset(
            name,
            lambda j=json_file, i=image_root, n=name: load_coco_json(str(j), str(i), n),
            thing_classes=list(VINDR_CXR_CLASSES),
            evaluator_type="coco",
            json_file=str(json_file),
            image_root=str(image_root),
            how_to_prepare=(
                f"VinDr-CXR is not prepared in {root}. Convert it there (or set DATASETS.ROOTS.VINDR_CXR "
                "or SNA_VINDR_CXR_ROOT to another folder) as described in datasets/README.md, section 'VinDr-CXR'."
            ),
        )
