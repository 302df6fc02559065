"""The project's ``Trainer`` (as ``detectron2.engine.defaults``' ``DefaultTrainer``) and the results file
it writes.

    cfg = setup_cfg("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml", ["SOLVER.MAX_ITER", "10"])
    Trainer(cfg).train()
"""

from __future__ import annotations

import json
import logging
import os

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_test_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine.hooks import EvalHook
from detectron2.utils import comm

from ..data.datasets.mapper import IntensityDatasetMapper
from ..evaluation import build_evaluator
from ..modeling.backbone_compile import compile_backbone_from_cfg
from ..modeling.test_time_augmentation import build_tta_model
from ..solver import build_optimizer
from ..utils import atomic_write_json
from ..utils.metrics_json import nan_to_none
from .autocast_trainer import AutocastTrainer, amp_dtype
from .exact_resume import (
    AppendingJSONWriter,
    ExactResume,
    PositionedBatchSampler,
    build_resumable_train_loader,
    default_resumable_writers,
)
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import SafeCheckpointer

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


class Trainer(DefaultTrainer):
    """DefaultTrainer whose evaluator follows the dataset's ``evaluator_type`` metadata, whose checkpoints
    load safely (and strictly when resuming) and save atomically, whose resumed runs are the
    uninterrupted run (``sna_det.engine.exact_resume``), with SNA's power-iteration diagnostics when
    MODEL.SNA.DIAGNOSTICS_PERIOD > 0, mixed precision on any device (``SOLVER.AMP``), the backbone
    compiled when ``MODEL.BACKBONE_COMPILE.ENABLED``, and with ``TEST.AUG.ENABLED`` an evaluation with
    test-time augmentation after the plain one at the end of training (``test_with_TTA``), as detectron2's
    tools/train_net.py.

    ``cfg.SEED`` < 0 is replaced by a seed drawn once (shared by all processes) and logged; to resume
    such a run, give the SEED recorded in its config.yaml (tools/train_net.py does)."""

    def __init__(self, cfg: CfgNode):
        if cfg.SEED < 0:
            cfg = cfg.clone()
            cfg.defrost()
            cfg.SEED = comm.shared_random_seed()
            cfg.freeze()
            logger.info(f"SEED -1: using SEED {cfg.SEED}")
        super().__init__(cfg)
        if cfg.SOLVER.AMP.ENABLED:  # detectron2's AMPTrainer is CUDA and float16 only
            device_type = torch.device(cfg.MODEL.DEVICE).type
            step = self._trainer
            self._trainer = AutocastTrainer(
                step.model, step.data_loader, step.optimizer,
                device_type=device_type, dtype=amp_dtype(cfg.SOLVER.AMP.DTYPE, device_type),
            )  # fmt: skip

    @classmethod
    def build_model(cls, cfg):
        """detectron2's model, its backbone compiled when ``MODEL.BACKBONE_COMPILE.ENABLED``."""
        return compile_backbone_from_cfg(cfg, super().build_model(cfg))

    @classmethod
    def build_train_loader(cls, cfg):
        """Batch ``k`` depends on SEED and ``k`` only, so that a resumed run reads what the uninterrupted one did;
        images read as predict reads them (``IntensityDatasetMapper``)."""
        return build_resumable_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """detectron2's test loader, its images read as predict reads them (``IntensityDatasetMapper``)."""
        return build_detection_test_loader(cfg, dataset_name, mapper=IntensityDatasetMapper(cfg, False))

    def build_writers(self):
        """detectron2's writers; metrics.json's continues an interrupted run's file on resume without
        writing an iteration twice (``AppendingJSONWriter``)."""
        writers = default_resumable_writers(self.cfg.OUTPUT_DIR, self.max_iter)
        self._metrics_writers = [w for w in writers if isinstance(w, AppendingJSONWriter)]
        return writers

    def build_hooks(self):
        # DefaultTrainer's checkpointer, made safe: no code from loaded files runs, saves are atomic,
        # a resume is strict and weights of another shape are refused unless allowed
        self.checkpointer = SafeCheckpointer(
            self.checkpointer.model,
            self.cfg.OUTPUT_DIR,
            allow_unsafe=self.cfg.MODEL.ALLOW_UNSAFE_WEIGHTS,
            allow_shape_mismatch=self.cfg.MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH,
            **self.checkpointer.checkpointables,
        )
        hooks = [ExactResume(self.cfg.SEED), *super().build_hooks()]
        if self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD > 0:
            diagnostics = PowerIterationDiagnostics(self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD, self.cfg.OUTPUT_DIR)
            insert_before_writers(hooks, diagnostics)
        if self.cfg.TEST.AUG.ENABLED:  # period 0: once, after training, after the plain evaluation
            insert_before_writers(hooks, EvalHook(0, lambda: self.test_with_TTA(self.cfg, self.model)))
        return hooks

    def resume_or_load(self, resume: bool = True) -> None:
        """As detectron2's; besides, removes the temporary files of a save a kill interrupted, continues
        the data stream after the batches already used and metrics.json where it ends, and when the
        checkpoint is the last iteration's (a kill while writing model_final), writes model_final.pth from it."""
        if resume and comm.is_main_process():
            removed = self.checkpointer.remove_stale_temporary_files()
            if removed:
                logger.info(f"removed {', '.join(removed)}: left by a save that was interrupted")
        super().resume_or_load(resume=resume)
        if resume:  # metrics.json's writer (the main process's) continues the interrupted run's file
            for writer in getattr(self, "_metrics_writers", []):
                writer.continue_file()
        batches = getattr(self._trainer.data_loader, "batch_sampler", None)
        if isinstance(batches, PositionedBatchSampler):  # (a subclass may build another loader)
            batches.start_batch = self.start_iter
        final = os.path.join(self.cfg.OUTPUT_DIR, "model_final.pth")
        if resume and self.start_iter >= self.max_iter and not os.path.isfile(final) and comm.is_main_process():
            logger.info(f"{final} is missing (a kill while it was written): writing it from the last checkpoint")
            self.checkpointer.save("model_final", iteration=self.start_iter - 1)

    @classmethod
    def build_optimizer(cls, cfg, model):
        """``SOLVER.OPTIMIZER``: SGD, Adam or AdamW (sna_det/solver/build.py)."""
        return build_optimizer(cfg, model)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_evaluator(cfg, dataset_name, output_folder or os.path.join(cfg.OUTPUT_DIR, "inference"))

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate, and save the metrics as ``OUTPUT_DIR/inference/results.json`` ({dataset: {task: metrics}})."""
        results = super().test(cfg, model, evaluators)
        _save_results(cfg, results)
        return results

    @classmethod
    def test_with_TTA(cls, cfg, model):
        """Evaluate ``build_tta_model(cfg, model)`` (``TEST.AUG``), the evaluators writing to
        ``OUTPUT_DIR/inference_TTA``; add its metrics to ``inference/results.json`` as
        {dataset: {"<task>_TTA": metrics}} beside the plain ones. Returns detectron2's results, keys + "_TTA"."""
        logging.getLogger("detectron2.trainer").info("Running inference with test-time augmentation ...")
        folder = os.path.join(cfg.OUTPUT_DIR, "inference_TTA")
        evaluators = [cls.build_evaluator(cfg, name, folder) for name in cfg.DATASETS.TEST]
        results = super().test(cfg, build_tta_model(cfg, model), evaluators)
        by_dataset = _by_dataset(cfg, results)
        _save_results(
            cfg, {name: {f"{task}_TTA": m for task, m in r.items()} for name, r in by_dataset.items()}, merge=True
        )
        return {f"{key}_TTA": value for key, value in results.items()}


def _by_dataset(cfg, results) -> dict:
    """DefaultTrainer.test's results ({task: metrics} for one test dataset) as {dataset: {task: metrics}}."""
    return {cfg.DATASETS.TEST[0]: results} if len(cfg.DATASETS.TEST) == 1 else results


def _save_results(cfg, results, merge: bool = False) -> None:
    """Write ``OUTPUT_DIR/inference/results.json`` ({dataset: {task: metrics}}) on the main process; with
    ``merge``, ``results`` are already by dataset and join the tasks the file holds."""
    if not comm.is_main_process():
        return
    path = os.path.join(cfg.OUTPUT_DIR, "inference", "results.json")
    by_dataset = results if merge else _by_dataset(cfg, results)
    if merge and os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            saved = json.load(file)
        by_dataset = {**saved, **{name: {**saved.get(name, {}), **r} for name, r in by_dataset.items()}}
    atomic_write_json(path, nan_to_none(by_dataset))
