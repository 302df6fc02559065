"""Your own COCO-format datasets, named in a config alone (``DATASETS.REGISTER``), as in mmdetection:

.. code-block:: yaml

    DATASETS:
      REGISTER:
        my_train: {JSON: "data/train.json", IMAGES: "data/images"}
        my_val: {JSON: "data/val.json", IMAGES: "data/images", EVALUATOR: "per_class_ap", EVAL_IOU: 0.4}
      TRAIN: ("my_train",)
      TEST: ("my_val",)

Each entry is registered with detectron2's ``load_coco_json`` (what ``register_coco_instances``
does), evaluated by the COCO evaluator, or by ``PerClassAPEvaluator`` at ``EVAL_IOU`` when
``EVALUATOR: per_class_ap``. Relative paths are relative to the working directory.
"""

from __future__ import annotations

from detectron2.config import CfgNode
from detectron2.data.datasets import load_coco_json

from .catalog import register_dataset

__all__ = ["OWN_DATASET_KEYS", "register_own_datasets"]

OWN_DATASET_KEYS = {"JSON": "", "IMAGES": "", "EVALUATOR": "coco", "EVAL_IOU": 0.5}
"""Keys of a ``DATASETS.REGISTER`` entry and their defaults ("" = required)."""
EVALUATOR_TYPES = ("coco", "per_class_ap")


def register_own_datasets(cfg: CfgNode) -> None:
    """Register every ``DATASETS.REGISTER`` entry; ``ValueError`` naming the entry and key when malformed."""
    for name, entry in cfg.DATASETS.get("REGISTER", {}).items():
        where = f"DATASETS.REGISTER.{name}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: is {entry!r}, not a mapping like {{JSON: train.json, IMAGES: images/}}")
        unknown = sorted(set(entry) - set(OWN_DATASET_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(OWN_DATASET_KEYS)}")
        values = {**OWN_DATASET_KEYS, **entry}
        missing = [key for key in ("JSON", "IMAGES") if not values[key]]
        if missing:
            raise ValueError(f"{where}: needs {' and '.join(missing)} (the COCO JSON and its image folder)")
        if values["EVALUATOR"] not in EVALUATOR_TYPES:
            raise ValueError(f"{where}: EVALUATOR {values['EVALUATOR']!r} is not one of {EVALUATOR_TYPES}")
        json_file, image_root = str(values["JSON"]), str(values["IMAGES"])
        register_dataset(
            name,
            lambda j=json_file, i=image_root, n=name: load_coco_json(j, i, n),
            json_file=json_file,
            image_root=image_root,
            evaluator_type=values["EVALUATOR"],
            eval_iou_threshold=float(values["EVAL_IOU"]),
            how_to_prepare=f"Check {where} in the config (a COCO JSON and its image folder).",
            check_coco=True,
        )
