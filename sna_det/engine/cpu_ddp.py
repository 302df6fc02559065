"""Multi-process training on CPUs (gloo) through detectron2's own ``launch`` and DefaultTrainer.

detectron2's ``create_ddp_model`` always passes ``device_ids=[local_rank]``, which torch rejects for a
model on the CPU (detectron2 issue #5146). ``enable_cpu_ddp()`` makes DefaultTrainer pass
``device_ids=None`` for CPU models; CUDA models are wrapped exactly as before.
"""

from __future__ import annotations

import detectron2.engine.defaults as d2_defaults
from torch import nn

__all__ = ["create_ddp_model", "enable_cpu_ddp"]

_d2_create_ddp_model = d2_defaults.create_ddp_model


def create_ddp_model(model: nn.Module, **kwargs) -> nn.Module:
    """detectron2's ``create_ddp_model``, with ``device_ids=None`` when the model is on the CPU."""
    if "device_ids" not in kwargs and all(p.device.type == "cpu" for p in model.parameters()):
        kwargs["device_ids"] = None
    return _d2_create_ddp_model(model, **kwargs)


def enable_cpu_ddp() -> None:
    """Make detectron2's DefaultTrainer use ``create_ddp_model`` above (idempotent)."""
    d2_defaults.create_ddp_model = create_ddp_model
