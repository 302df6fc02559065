"""The set-up every command, benchmark and test shares, as ``detectron2.engine.defaults``: building a
config from a file and overrides, the ``Trainer``, and the choice of the main experiment.

    cfg = setup_cfg("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml", ["SOLVER.MAX_ITER", "10"])
    Trainer(cfg).train()
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import yaml
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import DefaultTrainer
from detectron2.utils import comm

from ..config import ConfigError, add_sna_config, validate_config
from ..data import DatasetNotPreparedError, check_datasets_ready
from ..data.datasets import register_datasets_from_config
from ..evaluation import build_evaluator
from ..modeling.backbone_compile import compile_backbone_from_cfg
from ..solver import build_optimizer
from ..utils import atomic_write_json
from .autocast_trainer import AutocastTrainer, amp_dtype
from .power_iteration_diagnostics import PowerIterationDiagnostics, insert_before_writers
from .safe_checkpointer import SafeCheckpointer

__all__ = ["CPU_FALLBACK_MESSAGE", "Trainer", "choose_main_config", "setup_cfg"]

logger = logging.getLogger(__name__)

CPU_FALLBACK_MESSAGE = "CUDA is not available: running on the CPU (MODEL.DEVICE=cpu)."


def _reason(error: BaseException) -> str:
    """yacs and detectron2 put the message in args[0] (a KeyError's str() would add quotes)."""
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error.args[0]) if error.args else type(error).__name__


def setup_cfg(config_file: str | os.PathLike, opts: Sequence[str] = (), *, cpu_fallback: bool = True) -> CfgNode:
    """The project's config: detectron2's defaults, ``add_sna_config``, the file, then ``opts``
    (``KEY VALUE`` pairs), frozen; its datasets registered below ``DATASETS.ROOTS``.

    Values are checked right after merging (``validate_config``), before anything is built. With
    ``cpu_fallback``, a CUDA device without CUDA becomes the CPU, with a logged warning.
    Raises ``ConfigError`` naming the file or key for a missing file, an unknown key, a value of the
    wrong type or one that cannot work.
    """
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"{config_file}: no such config file")
    cfg = get_cfg()
    add_sna_config(cfg)
    try:
        cfg.merge_from_file(str(path))
    except (KeyError, ValueError, AssertionError, OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{config_file}: {_reason(error)}") from None
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError) as error:
        raise ConfigError(f"config override: {_reason(error)}") from None
    validate_config(cfg)
    if cpu_fallback and cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
        logger.warning(CPU_FALLBACK_MESSAGE)
    cfg.freeze()
    register_datasets_from_config(cfg)
    return cfg


def choose_main_config(
    main_config: str | os.PathLike, fallback_config: str | os.PathLike, opts: Sequence[str] = ()
) -> Tuple[str, Optional[str]]:
    """(config to train, why not ``main_config``: None when it is used).

    ``main_config`` with ``opts`` (so a ``DATASETS.ROOTS`` given there counts) is used when its
    training and test datasets are prepared; otherwise ``fallback_config``, with the reason (the
    dataset, the missing file, how to prepare it). A config that does not load, or a dataset that
    is not registered, raises: those are errors, not "not prepared".
    """
    cfg = setup_cfg(main_config, opts, cpu_fallback=False)
    try:
        check_datasets_ready(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    except DatasetNotPreparedError as error:
        return str(fallback_config), str(error)
    return str(main_config), None


def _nan_to_none(metrics):
    """Metrics with NaN (e.g. AP of a class without ground truth) as None, so they are valid JSON."""
    if isinstance(metrics, dict):
        return {k: _nan_to_none(v) for k, v in metrics.items()}
    return None if isinstance(metrics, float) and math.isnan(metrics) else metrics


class Trainer(DefaultTrainer):
    """DefaultTrainer whose evaluator follows the dataset's ``evaluator_type`` metadata, whose checkpoints
    load safely and save atomically, with SNA's power-iteration diagnostics when
    MODEL.SNA.DIAGNOSTICS_PERIOD > 0, mixed precision on any device (``SOLVER.AMP``) and the backbone
    compiled when ``MODEL.BACKBONE_COMPILE.ENABLED``."""

    def __init__(self, cfg):
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
