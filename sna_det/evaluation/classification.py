"""Per-class AUROC of a multi-label image classifier (the paper's Fig. 5) and its detectron2 evaluator.

``auroc``: the area under the ROC curve of one class, as the Mann-Whitney statistic with average
ranks for tied scores (what scikit-learn's ``roc_auc_score`` computes; None for a class whose labels
are all 0 or all 1). ``ClassificationEvaluator`` collects the model's ``probabilities`` on a split,
takes each image's labels from the dataset's records (the classes of its boxes; "No finding" for an
image without any), writes ``OUTPUT_DIR/auroc_<dataset>.json`` (``{"per_class": {class: auroc or
null}, "mean": mean of the non-null}``, AUROC in [0, 1]) and returns ``{"auroc": {"AUROC": mean,
"AUROC-<class>": ...}}`` in percent, which ``inference/results.json`` and ``tools/compare_runs.py``
show as a class x run table.
"""

from __future__ import annotations

import itertools
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..modeling.classifier import multi_hot
from ..utils import atomic_write_json

__all__ = ["ClassificationEvaluator", "auroc", "auroc_report", "record_labels"]


def auroc(labels: Sequence[float], scores: Sequence[float]) -> Optional[float]:
    """AUROC of ``scores`` (N,) against binary ``labels`` (N,); None when only one label value occurs."""
    positive = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]  # 1-based, ties get their average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auroc_report(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """``{"per_class": {name: auroc or None}, "mean": mean of the non-None or None}`` of (N, K) arrays."""
    per_class = {name: auroc(labels[:, k], probabilities[:, k]) for k, name in enumerate(class_names)}
    values = [v for v in per_class.values() if v is not None]
    return {"per_class": per_class, "mean": float(np.mean(values)) if values else None}


def record_labels(record: dict, num_classes: int, no_finding: bool) -> np.ndarray:
    """(K,) labels of a detectron2 dataset record: its annotations' contiguous ``category_id``s
    (crowd boxes left out, as the train mapper leaves them out), "No finding" when none."""
    classes = sorted({a["category_id"] for a in record.get("annotations", []) if not a.get("iscrowd", 0)})
    return multi_hot(classes, num_classes, no_finding).numpy()


class ClassificationEvaluator(DatasetEvaluator):
    """AUROC per class on ``dataset_name`` (module docstring)."""

    def __init__(
        self, dataset_name: str, class_names: Sequence[str], num_classes: int, no_finding: bool, output_dir: str
    ):
        """``class_names``: the model's outputs (``num_classes`` + "No finding" when ``no_finding``);
        ``output_dir``: where ``auroc_<dataset_name>.json`` goes ("" for nowhere)."""
        self.dataset_name = dataset_name
        self.class_names = list(class_names)
        self.num_classes = num_classes
        self.no_finding = no_finding
        self.output_dir = output_dir
        self._probabilities: Dict[int, np.ndarray] = {}

    def reset(self) -> None:
        self._probabilities = {}

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for given, output in zip(inputs, outputs):
            self._probabilities[given["image_id"]] = output["probabilities"].float().cpu().numpy()

    def evaluate(self) -> Optional[dict]:
        gathered = comm.gather(self._probabilities, dst=0)
        if not comm.is_main_process():
            return None
        found = dict(itertools.chain.from_iterable(part.items() for part in gathered))
        records = [r for r in DatasetCatalog.get(self.dataset_name) if r["image_id"] in found]
        labels = np.stack([record_labels(r, self.num_classes, self.no_finding) for r in records])
        probabilities = np.stack([found[r["image_id"]] for r in records])
        report = auroc_report(labels, probabilities, self.class_names)
        if self.output_dir:
            atomic_write_json(os.path.join(self.output_dir, f"auroc_{self.dataset_name}.json"), report)
        percent = {f"AUROC-{name}": float("nan") if v is None else 100.0 * v for name, v in report["per_class"].items()}
        mean = float("nan") if report["mean"] is None else 100.0 * report["mean"]
        return {"auroc": {"AUROC": mean, **percent}}
