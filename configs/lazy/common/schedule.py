# SOLVER.STEPS / WARMUP_ITERS as a LazyConfig lr_multiplier, made as a YAML config's (detectron2's
# WarmupMultiStepLR: GAMMA 0.1, linear warmup from WARMUP_FACTOR 0.001): steps in iterations of
# train.max_iter, which is read when the multiplier is built, so that train.max_iter=N (as SOLVER.MAX_ITER N)
# shortens the run without moving the steps.
from detectron2.config import LazyCall as L

from sna_det.solver import warmup_multi_step


def multi_step(steps, warmup_iters):
    """The lr multiplier of SOLVER.STEPS=steps, WARMUP_ITERS=warmup_iters, MAX_ITER=train.max_iter."""
    return L(warmup_multi_step)(steps=list(steps), max_iter="${train.max_iter}", warmup_iters=warmup_iters)
