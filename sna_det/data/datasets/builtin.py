"""Registration of the project's datasets, at import and again from a config's ``DATASETS.ROOTS``.

| names | module | default root |
| --- | --- | --- |
| ``sna_demo_{train,val}`` | ``demo.py`` | ``$SNA_DET_CACHE`` (written on first use) |
| ``coco_2017_{train,val}`` | ``coco.py`` | ``$DETECTRON2_DATASETS/coco`` |
| ``voc_2012_coco_*`` | ``voc_2012_coco.py`` | ``$DETECTRON2_DATASETS/voc_2012_coco`` |
| ``vindr_cxr_{train,val,test}`` | ``vindr_cxr.py`` | ``$SNA_VINDR_CXR_ROOT``, else ``$DETECTRON2_DATASETS/vindr_cxr`` |
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

from detectron2.config import CfgNode

from .coco import register_coco_2017
from .demo import register_demo_datasets
from .own_coco import register_own_datasets
from .vindr_cxr import register_vindr_cxr_datasets
from .voc_2012_coco import register_voc_2012_coco

__all__ = ["ROOT_REGISTRARS", "register_all_datasets", "register_datasets_from_config"]

ROOT_REGISTRARS: Dict[str, Callable[[str | Path | None], None]] = {
    "COCO": register_coco_2017,
    "VOC_2012_COCO": register_voc_2012_coco,
    "VINDR_CXR": register_vindr_cxr_datasets,
}
"""``DATASETS.ROOTS`` key -> function registering that dataset's names below a root (None: default root)."""


def register_all_datasets() -> None:
    """Register every dataset of the project at its default root."""
    register_demo_datasets()
    for register in ROOT_REGISTRARS.values():
        register(None)


def register_datasets_from_config(cfg: CfgNode) -> None:
    """Register again, below the given folder, each dataset whose ``DATASETS.ROOTS`` entry is set, and
    the config's own COCO datasets (``DATASETS.REGISTER``, ``own_coco.py``)."""
    for key, register in ROOT_REGISTRARS.items():
        root = cfg.DATASETS.ROOTS.get(key, "")
        if root:
            register(root)
    register_own_datasets(cfg)
