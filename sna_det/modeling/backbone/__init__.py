from .attention_backbones import (
    build_densenet_attention_backbone,
    build_densenet_attention_fpn_backbone,
    build_resnet_attention_backbone,
    build_resnet_attention_fpn_backbone,
    build_retinanet_resnet_attention_fpn_backbone,
)
from .builders import DENSENET_STAGES, RESNET_STAGES, add_attention
from .densenet import DenseNetBackbone, build_densenet_backbone, build_densenet_fpn_backbone

__all__ = [
    "DENSENET_STAGES",
    "DenseNetBackbone",
    "RESNET_STAGES",
    "add_attention",
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_densenet_backbone",
    "build_densenet_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
]
