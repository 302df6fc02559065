"""Checks tools/train_net.py makes before it starts a process or writes anything in OUTPUT_DIR (its
log, config.yaml, metrics.json): the datasets are registered, the weights or checkpoint load into the
model, and SEED is a number. A mistake then ends in one line and leaves a previous run's files as
they were."""

from __future__ import annotations

import random
from typing import Iterable, Optional

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from ..data.datasets.catalog import unregistered_message
from ..utils.errors import SnaDetError
from .safe_checkpointer import CheckpointError, SafeCheckpointer

__all__ = ["DatasetNotRegisteredError", "check_datasets_registered", "check_weights", "with_concrete_seed"]


class DatasetNotRegisteredError(SnaDetError, KeyError):
    """A dataset name (DATASETS.TRAIN / TEST) that nothing registered."""

    def __str__(self) -> str:  # not KeyError's quoted form
        return str(self.args[0])


def check_datasets_registered(names: Iterable[str]) -> None:
    """``DatasetNotRegisteredError`` for the first name not in detectron2's ``DatasetCatalog``: the
    name, the closest registered names (``difflib``), and how to register one."""
    registered = DatasetCatalog.list()
    for name in names:
        if name in registered:
            continue
        raise DatasetNotRegisteredError(
            f"{unregistered_message(name)}; register your own COCO JSON with DATASETS.REGISTER "
            "(e.g. DATASETS.REGISTER \"{'my_train': {'JSON': 'train.json', 'IMAGES': 'images'}}\")"
        )


def check_weights(cfg: CfgNode, *, resume: bool, eval_only: bool) -> Optional[int]:
    """Load what the run will load into a CPU copy of the model, with the run's rules: with ``resume``
    and a ``last_checkpoint``, the file it names, strictly; else ``MODEL.WEIGHTS``, strictly for
    ``eval_only`` (which needs one), else with ``MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH``.

    Raises ``CheckpointError`` (one line: the file and what is wrong). Returns the SEED the checkpoint
    was trained with when it records one (``ExactResume``), else None.
    """
    cpu = cfg.clone()
    cpu.defrost()
    cpu.MODEL.DEVICE = "cpu"
    model = build_model(cpu)
    checkpointer = SafeCheckpointer(
        model,
        cfg.OUTPUT_DIR,
        allow_unsafe=cfg.MODEL.ALLOW_UNSAFE_WEIGHTS,
        strict=eval_only,
        allow_shape_mismatch=cfg.MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH,
    )
    if resume and cfg.OUTPUT_DIR and checkpointer.has_checkpoint():
        path = checkpointer.get_checkpoint_file()
        checkpointer.strict = True
    else:
        path = cfg.MODEL.WEIGHTS
        if eval_only and not path:
            raise CheckpointError("--eval-only: MODEL.WEIGHTS is empty; give the weights to evaluate")
    if not path:
        return None
    extra = checkpointer.load(path, checkpointables=[])
    seed = extra.get("trainer", {}).get("hooks", {}).get("ExactResume", {}).get("seed")
    return None if seed is None else int(seed)


def with_concrete_seed(cfg: CfgNode, recorded: Optional[int] = None) -> CfgNode:
    """``cfg`` itself when SEED >= 0; else a copy whose SEED is ``recorded`` (a resumed run's) or a
    new random one (so that config.yaml records the seed the run used)."""
    if cfg.SEED >= 0:
        return cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SEED = recorded if recorded is not None else random.SystemRandom().randrange(2**31)
    cfg.freeze()
    return cfg
