from .attention_injection import (
    AttentionSite,
    add_attention_to_backbone,
    attach_attention,
    residual_branch_end,
    resnet_attention_sites,
)
from .backbone import *  # noqa: F401,F403  (registers the backbones)
from .backbone import __all__ as _backbone_all
from .classifier import ImageClassifier
from .test_time_augmentation import build_tta_model

__all__ = [
    "AttentionSite",
    "ImageClassifier",
    "add_attention_to_backbone",
    "attach_attention",
    "build_tta_model",
    "residual_branch_end",
    "resnet_attention_sites",
    *_backbone_all,
]
