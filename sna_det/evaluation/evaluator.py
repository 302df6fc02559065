"""Choose a detectron2 evaluator from a dataset's ``evaluator_type`` metadata."""

from __future__ import annotations

from typing import Callable, Dict, Optional

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, LVISEvaluator, PascalVOCDetectionEvaluator

from .per_class_ap_evaluator import PerClassAPEvaluator

__all__ = ["EVALUATORS", "build_dataset_evaluator", "build_evaluator"]

EVALUATORS: Dict[str, Callable[[CfgNode, str, Optional[str]], DatasetEvaluator]] = {
    "coco": lambda cfg, name, out: COCOEvaluator(
        name, output_dir=out, max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE
    ),
    "lvis": lambda cfg, name, out: LVISEvaluator(name, output_dir=out),
    "pascal_voc": lambda cfg, name, out: PascalVOCDetectionEvaluator(name),
    "per_class_ap": lambda cfg, name, out: PerClassAPEvaluator(
        name, output_dir=out, max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE
    ),
}
"""evaluator_type -> (cfg, dataset name, output folder) -> evaluator. Add entries to extend."""


def build_evaluator(cfg: CfgNode, dataset_name: str, output_folder: Optional[str] = None) -> DatasetEvaluator:
    """The evaluator for ``dataset_name``, chosen by its metadata's ``evaluator_type``."""
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if evaluator_type not in EVALUATORS:
        raise NotImplementedError(
            f"dataset {dataset_name!r} has evaluator_type {evaluator_type!r}; known: {sorted(EVALUATORS)}"
        )
    return EVALUATORS[evaluator_type](cfg, dataset_name, output_folder)


def build_dataset_evaluator(
    dataset_name: str, output_dir: Optional[str] = None, *, max_dets_per_image: int = 100
) -> DatasetEvaluator:
    """``build_evaluator`` without a YAML config, for LazyConfigs (``dataloader.evaluator``);
    ``max_dets_per_image`` is ``TEST.DETECTIONS_PER_IMAGE``."""
    return build_evaluator(
        CfgNode({"TEST": CfgNode({"DETECTIONS_PER_IMAGE": max_dets_per_image})}), dataset_name, output_dir
    )
