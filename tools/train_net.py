#!/usr/bin/env python
"""Train or evaluate a detectron2 model with sna_det's backbones, datasets and evaluators.

    python tools/train_net.py --config-file configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml
    python tools/train_net.py --config-file <cfg> --eval-only MODEL.WEIGHTS <output>/model_final.pth
    python tools/train_net.py --config-file <cfg> --num-gpus 8          # DDP through detectron2's launch

Without CUDA it runs on the CPU (and --num-gpus N starts N CPU processes over gloo).
"""

import logging
import math
import os

import torch
from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.utils import comm

from sna_det import DatasetNotPreparedError, add_sna_config, build_evaluator, check_datasets_ready
from sna_det.data.datasets import register_datasets_from_config
from sna_det.engine import (
    PowerIterationDiagnostics,
    SafeCheckpointer,
    UnsafeCheckpointError,
    enable_cpu_ddp,
    insert_before_writers,
    trim_metrics_for_resume,
)
from sna_det.solver import build_optimizer
from sna_det.utils import atomic_write_json


def _nan_to_none(metrics):
    """Metrics with NaN (e.g. AP of a class without ground truth) as None, so they are valid JSON."""
    if isinstance(metrics, dict):
        return {k: _nan_to_none(v) for k, v in metrics.items()}
    return None if isinstance(metrics, float) and math.isnan(metrics) else metrics


class Trainer(DefaultTrainer):
    """DefaultTrainer whose evaluator follows the dataset's ``evaluator_type`` metadata, whose checkpoints
    load safely and save atomically, with SNA's power-iteration diagnostics when
    MODEL.SNA.DIAGNOSTICS_PERIOD > 0."""

    def build_hooks(self):
        # DefaultTrainer's checkpointer, made safe: no code from loaded files runs, saves are atomic
        self.checkpointer = SafeCheckpointer(
            self.checkpointer.model,
            self.cfg.OUTPUT_DIR,
            allow_unsafe=self.cfg.MODEL.ALLOW_UNSAFE_WEIGHTS,
            **self.checkpointer.checkpointables,
        )
        hooks = super().build_hooks()
        if self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD > 0:
            diagnostics = PowerIterationDiagnostics(self.cfg.MODEL.SNA.DIAGNOSTICS_PERIOD, self.cfg.OUTPUT_DIR)
            insert_before_writers(hooks, diagnostics)
        return hooks

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
        if comm.is_main_process():
            by_dataset = {cfg.DATASETS.TEST[0]: results} if len(cfg.DATASETS.TEST) == 1 else results
            path = os.path.join(cfg.OUTPUT_DIR, "inference", "results.json")
            atomic_write_json(path, _nan_to_none(by_dataset))
        return results


def setup(args):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cpu_fallback = cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available()
    if cpu_fallback:
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    register_datasets_from_config(cfg)
    default_setup(cfg, args)
    if cpu_fallback:
        logging.getLogger("detectron2").info("CUDA is not available: running on the CPU (MODEL.DEVICE=cpu).")
    return cfg


def main(args):
    cfg = setup(args)
    try:
        check_datasets_ready(cfg.DATASETS.TEST if args.eval_only else cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    except (DatasetNotPreparedError, KeyError) as error:
        raise SystemExit(f"error: {error.args[0]}") from None
    try:
        if args.eval_only:
            model = Trainer.build_model(cfg)
            checkpointer = SafeCheckpointer(model, cfg.OUTPUT_DIR, allow_unsafe=cfg.MODEL.ALLOW_UNSAFE_WEIGHTS)
            checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
            return Trainer.test(cfg, model)
        enable_cpu_ddp()
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
    except UnsafeCheckpointError as error:
        raise SystemExit(f"error: {error}") from None
    if args.resume and comm.is_main_process():
        kept, dropped = trim_metrics_for_resume(os.path.join(cfg.OUTPUT_DIR, "metrics.json"), trainer.start_iter)
        if dropped:
            logging.getLogger("detectron2").info(
                f"metrics.json: kept {kept} records before iteration {trainer.start_iter}, dropped {dropped} "
                "written after the last checkpoint (or cut short) by the interrupted run"
            )
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
