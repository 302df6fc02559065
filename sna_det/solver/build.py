"""The optimizer of ``SOLVER.OPTIMIZER``: SGD (detectron2's only one), Adam or AdamW.

Parameter groups are detectron2's (``get_default_optimizer_params``: ``SOLVER.BASE_LR``,
``WEIGHT_DECAY_NORM``, ``BIAS_LR_FACTOR``, ``WEIGHT_DECAY_BIAS``), and ``SOLVER.CLIP_GRADIENTS``
wraps any of them (``maybe_add_gradient_clipping``), so SGD is built exactly as detectron2 builds it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from detectron2.config import CfgNode
from detectron2.solver import WarmupParamScheduler
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from fvcore.common.param_scheduler import MultiStepParamScheduler
from torch import nn

__all__ = ["OPTIMIZERS", "build_optimizer", "warmup_multi_step"]

OPTIMIZERS = ("SGD", "ADAM", "ADAMW")


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER`` over ``model``'s parameters, with ``SOLVER.WEIGHT_DECAY`` (L2 in the gradient for
    SGD and Adam, decoupled for AdamW); SGD takes ``MOMENTUM`` / ``NESTEROV``, Adam(W) ``BETAS`` / ``EPS``."""
    solver = cfg.SOLVER
    name = solver.OPTIMIZER.upper()
    if name not in OPTIMIZERS:
        raise ValueError(f"SOLVER.OPTIMIZER {solver.OPTIMIZER!r} is not one of {list(OPTIMIZERS)}")
    params = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        bias_lr_factor=solver.BIAS_LR_FACTOR,
        weight_decay_bias=solver.WEIGHT_DECAY_BIAS,
    )
    common = {"lr": solver.BASE_LR, "weight_decay": solver.WEIGHT_DECAY, "foreach": True}
    if name == "SGD":
        optimizer, options = torch.optim.SGD, {"momentum": solver.MOMENTUM, "nesterov": solver.NESTEROV}
    else:
        optimizer = torch.optim.Adam if name == "ADAM" else torch.optim.AdamW
        options = {"betas": tuple(solver.BETAS), "eps": solver.EPS}
    return maybe_add_gradient_clipping(cfg, optimizer)(params, **common, **options)


def warmup_multi_step(
    steps: Sequence[int], max_iter: int, warmup_iters: int, gamma: float = 0.1, warmup_factor: float = 0.001
) -> WarmupParamScheduler:
    """The LR multiplier of a YAML config's ``SOLVER.STEPS``, ``MAX_ITER``, ``WARMUP_ITERS``, ``GAMMA``,
    ``WARMUP_FACTOR`` (linear warmup), as detectron2's ``build_lr_scheduler`` makes it: steps in iterations,
    those beyond ``max_iter`` never reached. A LazyConfig's ``lr_multiplier`` (configs/lazy/common/schedule.py)."""
    kept = [step for step in steps if step <= max_iter]
    decay = MultiStepParamScheduler(
        values=[gamma**k for k in range(len(kept) + 1)], milestones=kept, num_updates=max_iter
    )
    return WarmupParamScheduler(decay, warmup_factor, min(warmup_iters / max_iter, 1.0), "linear")
