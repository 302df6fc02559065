"""``vindr_cxr_{train,val,test}``: a VinDr-CXR folder prepared in COCO format.

Root: ``DATASETS.ROOTS.VINDR_CXR`` in the config, else ``$SNA_VINDR_CXR_ROOT``, else
``$DETECTRON2_DATASETS/vindr_cxr``; layout in ``datasets/README.md``, written by
``datasets/prepare_vindr_cxr.py``. Evaluated by ``PerClassAPEvaluator`` at IoU 0.4 (the paper's Table 4),
with the VinBigData challenge's metric beside it (``vinbigdata_metric``); ``vindr_cxr_challenge_test``
is the challenge's unlabelled test (VinBigData's ``test/``), for ``tools/predict.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from detectron2.data.datasets import load_coco_json

from ..classes import VINDR_CXR_CLASSES
from .catalog import datasets_root, register_dataset

__all__ = ["VINDR_CXR_CLASSES", "register_vindr_cxr_datasets", "vindr_cxr_classes", "vindr_cxr_root"]


def vindr_cxr_root() -> Path:
    """``$SNA_VINDR_CXR_ROOT``, else ``$DETECTRON2_DATASETS/vindr_cxr`` (``datasets/vindr_cxr``)."""
    if os.environ.get("SNA_VINDR_CXR_ROOT"):
        return Path(os.environ["SNA_VINDR_CXR_ROOT"])
    return datasets_root() / "vindr_cxr"


def vindr_cxr_classes(root: Path) -> list:
    """The prepared folder's class names (``prepare_report.json``: 14, or more with ``--all-labels``),
    else ``VINDR_CXR_CLASSES``."""
    report = root / "prepare_report.json"
    if report.is_file():
        return list(json.loads(report.read_text())["classes"])
    return list(VINDR_CXR_CLASSES)


def register_vindr_cxr_datasets(root: str | Path | None = None) -> None:
    """Register ``vindr_cxr_{train,val,test}`` from ``<root>/annotations/<split>.json`` + ``<root>/images``,
    and ``vindr_cxr_<name>`` for any other split there (``prepare_vindr_cxr.py --split-file``)."""
    root = Path(root) if root else vindr_cxr_root()
    classes = vindr_cxr_classes(root)
    given = sorted(p.stem for p in (root / "annotations").glob("*.json")) if (root / "annotations").is_dir() else []
    for split in dict.fromkeys(["train", "val", "test", *given]):
        name = f"vindr_cxr_{split}"
        json_file, image_root = root / "annotations" / f"{split}.json", root / "images"
        register_dataset(
            name,
            lambda j=json_file, i=image_root, n=name: load_coco_json(str(j), str(i), n),
            thing_classes=classes,
            evaluator_type="per_class_ap",
            eval_iou_threshold=0.4,
            # the VinBigData challenge's metric beside per-class AP; not on the unlabelled challenge test
            vinbigdata_metric=split != "challenge_test",
            json_file=str(json_file),
            image_root=str(image_root),
            how_to_prepare=(
                f"VinDr-CXR is not prepared in {root}: run datasets/prepare_vindr_cxr.py --vindr-root <download> "
                f"--output-dir {root} (or set DATASETS.ROOTS.VINDR_CXR or SNA_VINDR_CXR_ROOT to a prepared "
                "folder); see datasets/README.md, section 'VinDr-CXR'."
            ),
        )
