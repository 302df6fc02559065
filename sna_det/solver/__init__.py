from .build import OPTIMIZERS, build_optimizer, warmup_multi_step

__all__ = ["OPTIMIZERS", "build_optimizer", "warmup_multi_step"]
