from .class_table import format_class_table
from .detection_ap import (
    coco_ap_per_class,
    evaluate_detections,
    format_ap_table,
    format_skipped,
    load_coco_gt,
    voc2010_ap,
    voc2010_ap_per_class,
)
from .evaluator import EVALUATORS, build_evaluator
from .per_class_ap_evaluator import PerClassAPEvaluator

__all__ = [
    "EVALUATORS",
    "PerClassAPEvaluator",
    "build_evaluator",
    "coco_ap_per_class",
    "evaluate_detections",
    "format_ap_table",
    "format_class_table",
    "format_skipped",
    "load_coco_gt",
    "voc2010_ap",
    "voc2010_ap_per_class",
]
