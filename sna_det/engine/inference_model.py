"""The one model for inference: ``build_inference_model(cfg)``, used by predict (``engine/predictor.py``,
its TTA included), export (``sna_det/export.py``) and the attention maps (``analysis/attention_report.py``).

Images go in through ``read_input_image``: the one image path (``sna_det.data.images``) with the
config's ``INPUT.FORMAT`` and ``INPUT.INTENSITY``.

The config's model (detectron2's ``build_model``, on ``MODEL.DEVICE``) with ``MODEL.WEIGHTS`` loaded
strictly and without running code from the file (``load_weights_strict``: every tensor of the model,
of its shape), its backbone compiled when ``MODEL.BACKBONE_COMPILE.ENABLED`` (as training and
``--eval-only`` compile it), in eval mode.
"""

from __future__ import annotations

import os

from detectron2.config import CfgNode
from detectron2.modeling import build_model
from torch import nn

from ..data.images import Intensity, ModelImage, read_model_image
from ..modeling.backbone_compile import compile_backbone_from_cfg
from .safe_checkpointer import load_weights_strict

__all__ = ["build_inference_model", "read_input_image"]


def build_inference_model(cfg: CfgNode, *, allow_no_weights: bool = False, compile_backbone: bool = True) -> nn.Module:
    """The model of ``cfg`` for inference (module docstring).

    Args:
        allow_no_weights: with an empty ``MODEL.WEIGHTS`` keep the random initialisation (attention maps,
            export); otherwise that is refused.
        compile_backbone: ``MODEL.BACKBONE_COMPILE`` applies; False for tracing (export), which needs
            the eager modules.

    Raises ValueError for no weights (unless allowed), ``CheckpointError`` for a missing file, one that is
    not a checkpoint or does not fit the model,
    ``UnsafeCheckpointError`` for one that would run code.
    """
    weights = cfg.MODEL.WEIGHTS
    if not weights and not allow_no_weights:
        raise ValueError("no weights: give MODEL.WEIGHTS <model_final.pth> (or --model <exported model.ts>)")
    model = build_model(cfg)
    if weights:
        load_weights_strict(model, weights, allow_unsafe=cfg.MODEL.ALLOW_UNSAFE_WEIGHTS)
    if compile_backbone:
        model = compile_backbone_from_cfg(cfg, model)
    return model.eval()


def read_input_image(cfg: CfgNode, path: str | os.PathLike, max_size: int = 1024, upscale: bool = False) -> ModelImage:
    """``path`` as the network's input for ``cfg``: ``sna_det.data.images.read_model_image`` in
    ``INPUT.FORMAT`` with ``INPUT.INTENSITY`` (``max_size`` / ``upscale``: the preparer's DICOM rendering).
    Raises ValueError naming the file when it cannot be read."""
    intensity = Intensity.from_node(cfg.INPUT.get("INTENSITY"))
    return read_model_image(path, cfg.INPUT.FORMAT, max_size, upscale, intensity)
