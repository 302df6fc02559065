# SOLVER.STEPS / MAX_ITER / WARMUP_ITERS as a LazyConfig lr_multiplier (detectron2's WarmupMultiStepLR:
# GAMMA 0.1, linear warmup from WARMUP_FACTOR 0.001).
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler


def multi_step(steps, max_iter, warmup_iters):
    """The lr multiplier of SOLVER.STEPS=steps, MAX_ITER=max_iter, WARMUP_ITERS=warmup_iters."""
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[0.1**i for i in range(len(steps) + 1)], milestones=list(steps), num_updates=max_iter
        ),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=0.001,
    )
