"""The image classifier's training, evaluation and prediction (``tools/train_classifier.py``,
``tools/classify.py``).

Training is the detector's: ``ClassifierTrainer`` is the project's ``Trainer`` (one config set-up,
safe and strict checkpoints saved atomically, exact resume, metrics.json, progress) with the AUROC
evaluator (``sna_det.evaluation.classification``) instead of the detection one. Prediction reads its
images as ``tools/predict.py`` does (``classifier_image_dataset``: a dataset's records through the
test mapper, files and DICOMs through ``sna_det.data.images``) and writes
``probabilities.csv`` (``image_id`` and one column per class) and ``normal.csv`` (``image_id,normal``:
the probability of "No finding", what ``tools/predict.py --normal-probs`` reads).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Type

import numpy as np
import torch
from detectron2.config import CfgNode

from ..evaluation.classification import ClassificationEvaluator
from ..modeling.classifier import classifier_class_names
from ..utils import atomic_write_text
from .defaults import Trainer
from .inference_model import build_inference_model
from .predictor import PredictionInput, _ReadInputs, class_names

__all__ = [
    "CLASSIFIER_ARCHITECTURE",
    "ClassifierTrainer",
    "classifier_image_dataset",
    "classify",
    "output_names",
    "probability_rows",
    "trainer_class",
    "write_probability_files",
]

CLASSIFIER_ARCHITECTURE = "ImageClassifier"
NO_FINDING = "No finding"


def output_names(cfg: CfgNode, dataset: Optional[str] = None) -> List[str]:
    """The classifier's output names: the dataset's classes (``predictor.class_names``), then "No finding"
    when ``MODEL.CLASSIFIER.NO_FINDING``."""
    return classifier_class_names(class_names(cfg, dataset), cfg.MODEL.CLASSIFIER.NO_FINDING)


class ClassifierTrainer(Trainer):
    """The project's ``Trainer`` for ``MODEL.META_ARCHITECTURE "ImageClassifier"``: every evaluation is
    per-class AUROC, written to ``OUTPUT_DIR/auroc_<dataset>.json`` and ``inference/results.json``."""

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder=None) -> ClassificationEvaluator:
        return ClassificationEvaluator(
            dataset_name,
            output_names(cfg, dataset_name),
            cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            cfg.MODEL.CLASSIFIER.NO_FINDING,
            cfg.OUTPUT_DIR,
        )


def trainer_class(cfg: CfgNode) -> Type[Trainer]:
    """``ClassifierTrainer`` for a classifier config, else the detectors' ``Trainer``."""
    return ClassifierTrainer if cfg.MODEL.META_ARCHITECTURE == CLASSIFIER_ARCHITECTURE else Trainer


def classifier_image_dataset(
    cfg: CfgNode, inputs: Sequence[PredictionInput], max_size: int = 1024, upscale: bool = False
) -> torch.utils.data.Dataset:
    """The classifier's inputs as ``tools/predict.py`` reads them (the one place to change how they are
    read): item ``i`` is ``{"index", "input": {"image": (C, H, W) uint8, ...}}`` or ``{"error": message}``;
    DICOMs rendered as the preparer renders them (``max_size``, ``upscale``)."""
    return _ReadInputs(cfg, inputs, False, {"max_size": max_size, "upscale": upscale})


@torch.no_grad()
def classify(
    cfg: CfgNode,
    inputs: Sequence[PredictionInput],
    batch_size: int = 8,
    max_size: int = 1024,
    upscale: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> np.ndarray:
    """(N, K) float64 probabilities of the config's classifier with ``MODEL.WEIGHTS`` (loaded strictly)
    on ``inputs``, in order. Raises ValueError naming the first image that cannot be read."""
    model = build_inference_model(cfg)
    loader = torch.utils.data.DataLoader(
        classifier_image_dataset(cfg, inputs, max_size, upscale),
        batch_size=batch_size,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=list,
        shuffle=False,
    )
    rows: List[np.ndarray] = []
    for batch in loader:
        for item in batch:
            if "error" in item:
                raise ValueError(item["error"])
        outputs = model([item["input"] for item in batch])
        rows += [o["probabilities"].double().cpu().numpy() for o in outputs]
        if progress is not None:
            progress(len(batch))
    return np.stack(rows) if rows else np.zeros((0, len(output_names(cfg))))


def image_ids(inputs: Sequence[PredictionInput]) -> List[str]:
    """The file name's stem of each input (the VinBigData image id, as in submission.csv)."""
    return [Path(i.file_name).stem for i in inputs]


def probability_rows(ids: Sequence[str], probabilities: np.ndarray, names: Sequence[str]) -> Tuple[str, Optional[str]]:
    """(probabilities.csv text, normal.csv text or None without a "No finding" output)."""
    table, normal = io.StringIO(), io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["image_id", *names])
    writer.writerows([image_id, *(repr(float(p)) for p in row)] for image_id, row in zip(ids, probabilities))
    if NO_FINDING not in names:
        return table.getvalue(), None
    k = list(names).index(NO_FINDING)
    writer = csv.writer(normal, lineterminator="\n")
    writer.writerow(["image_id", "normal"])
    writer.writerows([image_id, repr(float(row[k]))] for image_id, row in zip(ids, probabilities))
    return table.getvalue(), normal.getvalue()


def write_probability_files(
    output: str | os.PathLike, ids: Sequence[str], probabilities: np.ndarray, names: Sequence[str]
) -> List[str]:
    """Write ``probabilities.csv`` and (with a "No finding" output) ``normal.csv`` atomically below
    ``output``; returns the names written."""
    if len(set(ids)) != len(ids):
        seen = set()
        twice = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"two inputs have the image id {twice!r} (the file name's stem): give each image once")
    table, normal = probability_rows(ids, probabilities, names)
    atomic_write_text(os.path.join(output, "probabilities.csv"), table)
    if normal is None:
        return ["probabilities.csv"]
    atomic_write_text(os.path.join(output, "normal.csv"), normal)
    return ["probabilities.csv", "normal.csv"]
