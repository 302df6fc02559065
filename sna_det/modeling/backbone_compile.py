"""``torch.compile`` of a detector's backbone, where the model is built (``MODEL.BACKBONE_COMPILE``).

The backbone (where SNA is) compiles as one graph without a break and has static shapes for a fixed
input size; the proposal and ROI heads, with data-dependent shapes, stay eager. The backbone is
compiled in place (``nn.Module.compile``): the model's attributes, its state_dict keys and so its
checkpoints are those of the eager model. Compilation happens on the first forward pass.
"""

from __future__ import annotations

from typing import Optional

from detectron2.config import CfgNode
from torch import nn

__all__ = ["COMPILE_MODES", "compile_backbone", "compile_backbone_from_cfg", "compile_backends"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""torch.compile's modes; "reduce-overhead" replays CUDA graphs (on CUDA, when input sizes repeat)."""


def compile_backends() -> list:
    """Every backend name torch.compile accepts here, debug ones included ("eager", "aot_eager")."""
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def compile_backbone(model: nn.Module, *, mode: str = "default", backend: str = "inductor") -> nn.Module:
    """``model.backbone`` compiled with ``torch.compile(mode=mode, backend=backend)``, in place; ``model``
    returned. ``mode`` "default" is passed as None (torch.compile's default); only "inductor" takes modes."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"torch.compile mode {mode!r} is not one of {list(COMPILE_MODES)}")
    options = {"mode": None if mode == "default" else mode} if backend == "inductor" else {}
    model.backbone.compile(backend=backend, **options)
    return model


def compile_backbone_from_cfg(cfg: CfgNode, model: nn.Module) -> nn.Module:
    """``compile_backbone`` with ``MODEL.BACKBONE_COMPILE.{MODE,BACKEND}`` when ``.ENABLED``; else ``model``
    unchanged. Called by ``Trainer.build_model`` (training, ``--eval-only``) and every predictor built from it."""
    c: Optional[CfgNode] = cfg.MODEL.get("BACKBONE_COMPILE")
    if c is None or not c.ENABLED:
        return model
    return compile_backbone(model, mode=c.MODE, backend=c.BACKEND)
