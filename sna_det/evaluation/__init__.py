from ..utils.tables import format_class_table
from .coco_json import load_coco_gt
from .detection_ap import (
    boxes_hit,
    coco_ap_per_class,
    evaluate_detections,
    format_ap_table,
    format_skipped,
    hit_rate_per_class,
    voc2010_ap,
    voc2010_ap_per_class,
)
from .evaluator import EVALUATORS, build_dataset_evaluator, build_evaluator
from .per_class_ap_evaluator import PerClassAPEvaluator

__all__ = [
    "EVALUATORS",
    "PerClassAPEvaluator",
    "boxes_hit",
    "build_dataset_evaluator",
    "build_evaluator",
    "coco_ap_per_class",
    "evaluate_detections",
    "format_ap_table",
    "format_class_table",
    "format_skipped",
    "hit_rate_per_class",
    "load_coco_gt",
    "voc2010_ap",
    "voc2010_ap_per_class",
]
