"""Test-time augmentation (``TEST.AUG``) for the project's detectors: detectron2's ``GeneralizedRCNNWithTTA``.

For every short-edge size in ``TEST.AUG.MIN_SIZES`` (longer edge at most ``TEST.AUG.MAX_SIZE``) the
image is run as it is and, with ``TEST.AUG.FLIP``, mirrored left-right; every box is mapped back to
the input image's pixels and the union is merged per class with NMS (``MODEL.ROI_HEADS.NMS_THRESH_TEST``),
keeping ``TEST.DETECTIONS_PER_IMAGE``. Masks (Mask R-CNN) are averaged over the augmentations. The
attention blocks see each augmented image as any other input: every one of them takes any size.

Augmented copies run in batches of the same size only (an image and its mirror): detectron2's
default batches three copies of different sizes, padding the smaller ones with zeros, and every
block that pools or attends over the whole map (SNA, SE, ECA, non-local, GC, CBAM) then sees that
padding, which plain inference of the same copy never does.
"""

from __future__ import annotations

from typing import Optional

from detectron2.config import CfgNode
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN, GeneralizedRCNNWithTTA
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..utils.errors import ConfigError

__all__ = ["build_tta_model", "check_tta_config"]


def check_tta_config(cfg: CfgNode) -> None:
    """Raise ``ConfigError`` when ``cfg``'s model or ``TEST.AUG`` cannot be run with test-time augmentation:
    a meta-architecture other than ``GeneralizedRCNN`` (or a subclass; e.g. RetinaNet), keypoints,
    precomputed proposals, or no positive ``TEST.AUG.MIN_SIZES`` / ``MAX_SIZE``."""
    meta = cfg.MODEL.META_ARCHITECTURE
    arch = META_ARCH_REGISTRY.get(meta) if meta in META_ARCH_REGISTRY else None
    if not (isinstance(arch, type) and issubclass(arch, GeneralizedRCNN)):
        raise ConfigError(
            f"TEST.AUG.ENABLED: test-time augmentation needs a GeneralizedRCNN, not MODEL.META_ARCHITECTURE {meta!r}"
        )
    if cfg.MODEL.KEYPOINT_ON or cfg.MODEL.LOAD_PROPOSALS:
        raise ConfigError(
            "TEST.AUG.ENABLED: detectron2's test-time augmentation supports neither keypoints nor loaded proposals"
        )
    sizes = list(cfg.TEST.AUG.MIN_SIZES)
    if not sizes or any(int(s) <= 0 for s in sizes) or cfg.TEST.AUG.MAX_SIZE <= 0:
        raise ConfigError(
            f"TEST.AUG.MIN_SIZES {sizes} / MAX_SIZE {cfg.TEST.AUG.MAX_SIZE}: need one size or more, all > 0"
        )


def build_tta_model(cfg: CfgNode, model: nn.Module, batch_size: Optional[int] = None) -> GeneralizedRCNNWithTTA:
    """``model`` (a ``GeneralizedRCNN``, DDP-wrapped or not) wrapped for test-time augmentation by ``cfg.TEST.AUG``.

    The wrapper is called like the model in inference: a list of {"image": (C, H, W) uint8 tensor in
    ``INPUT.FORMAT``, "height", "width"} (or {"file_name"}) -> a list of {"instances"} in the
    "height" x "width" pixels. ``batch_size``: augmented copies of one image run together; default 2
    with ``TEST.AUG.FLIP`` (an image and its mirror, the same size), else 1 (module docstring).
    Raises ``ConfigError`` for a model TTA cannot wrap (``check_tta_config``).
    """
    check_tta_config(cfg)
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    if not isinstance(inner, GeneralizedRCNN):
        raise ConfigError(f"TEST.AUG: test-time augmentation needs a GeneralizedRCNN, not a {type(inner).__name__}")
    if batch_size is None:
        batch_size = 2 if cfg.TEST.AUG.FLIP else 1
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    return GeneralizedRCNNWithTTA(cfg, inner, batch_size=batch_size)
