"""A detectron2 ``DatasetEvaluator``: per-class AP and hit rate at one IoU threshold, in Table 4's layout.

Used through ``evaluator_type: "per_class_ap"`` in a dataset's metadata (the VinDr-CXR datasets set
it, with ``eval_iou_threshold`` 0.4). The dataset needs a COCO ``json_file`` in its metadata. With
``vinbigdata_metric`` in the metadata (the VinDr-CXR datasets), the VinBigData challenge's metric
(``vinbigdata.py``) of the submission these detections make is reported beside it.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import OrderedDict
from typing import Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.utils import comm

from ..utils import atomic_write_json
from .coco_json import load_coco_gt
from .detection_ap import evaluate_detections, format_ap_table, format_skipped
from .vinbigdata import format_vinbigdata_table, vinbigdata_of_detections

__all__ = ["PerClassAPEvaluator"]

logger = logging.getLogger("detectron2")


class PerClassAPEvaluator(DatasetEvaluator):
    """COCO-style (101-point) and VOC2010 (all-point) AP per class at IoU ``iou_threshold``, and the
    hit rate (the metric behind the paper's Table 4, ``detection_ap`` module docstring).

    ``evaluate()`` logs the table, writes ``per_class_ap_<dataset>.json`` (``evaluate_detections``'
    format, AP in percent, null for classes without ground truth) and
    ``coco_instances_results_<dataset>.json`` (the detections, COCO results format, for
    ``tools/evaluate_detections.py``) to ``output_dir``, and returns
    ``{"per_class_ap@<iou>": {"AP": coco mean, "AP_voc2010": voc mean, "hit_rate": mean, "AP-<class>": ...,
    "AP_voc2010-<class>": ..., "hit_rate-<class>": ...}}`` (and ``"vinbigdata"``: the challenge's mean over
    its 15 classes, the JSON's ``vinbigdata`` entry holding its per-class AP, with ``vinbigdata_metric``;
    the same figure as ``tools/evaluate_detections.py --metric vinbigdata`` on the submission
    ``tools/predict.py --format vinbigdata`` writes from these detections)
    with NaN for classes without ground truth (detectron2's hooks need floats).
    """

    def __init__(
        self,
        dataset_name: str,
        *,
        iou_threshold: Optional[float] = None,
        output_dir: Optional[str] = None,
        max_dets_per_image: int = 100,
        distributed: bool = True,
    ):
        """``iou_threshold`` defaults to the metadata's ``eval_iou_threshold`` (else 0.5)."""
        self._metadata = MetadataCatalog.get(dataset_name)
        self._iou = float(iou_threshold if iou_threshold is not None else self._metadata.get("eval_iou_threshold", 0.5))
        self._output_dir = output_dir
        self._max_dets = max_dets_per_image
        self._distributed = distributed
        self._gt = load_coco_gt(self._metadata.json_file)
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id", None)
        if mapping is None:  # what load_coco_json sets: sorted category ids -> 0, 1, ...
            mapping = {cat: i for i, cat in enumerate(sorted(self._gt.getCatIds()))}
        self._category_of_class = {index: cat for cat, index in mapping.items()}
        self.reset()

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs, outputs) -> None:
        for item, output in zip(inputs, outputs):
            if "instances" in output:
                detections = instances_to_coco_json(output["instances"].to("cpu"), item["image_id"])
                for d in detections:
                    d["category_id"] = self._category_of_class[d["category_id"]]
                self._predictions.extend(detections)

    def evaluate(self):
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        result = evaluate_detections(self._gt, predictions, self._iou, self._max_dets)
        logger.info(
            f"Per-class AP at IoU {self._iou:g} on {self._metadata.name} ({len(predictions)} detections):\n"
            + format_ap_table(result)
            + "\n"
            + format_skipped(result)
        )
        if self._metadata.get("vinbigdata_metric", False):
            result["vinbigdata"] = vinbigdata_of_detections(self._gt.dataset, predictions)
            logger.info(
                f"VinBigData challenge metric on {self._metadata.name}:\n"
                + format_vinbigdata_table(result["vinbigdata"])
            )
        if self._output_dir:
            name = self._metadata.name
            atomic_write_json(os.path.join(self._output_dir, f"per_class_ap_{name}.json"), result)
            results_file = os.path.join(self._output_dir, f"coco_instances_results_{name}.json")
            atomic_write_json(results_file, predictions, indent=None)
        nan = float("nan")
        metrics = OrderedDict(
            AP=result["coco"]["mean"], AP_voc2010=result["voc2010"]["mean"], hit_rate=result["hit_rate"]["mean"]
        )
        if "vinbigdata" in result:
            metrics["vinbigdata"] = result["vinbigdata"]["mean"]
        for kind, prefix in (("coco", "AP"), ("voc2010", "AP_voc2010"), ("hit_rate", "hit_rate")):
            for name, ap in result[kind]["per_class"].items():
                metrics[f"{prefix}-{name}"] = ap
        return {f"per_class_ap@{self._iou:g}": {k: nan if v is None else v for k, v in metrics.items()}}
