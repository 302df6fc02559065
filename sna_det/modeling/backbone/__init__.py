from .attention_backbones import (
    DENSENET_STAGES,
    RESNET_STAGES,
    add_attention_from_cfg,
    attention_arguments_from_cfg,
    attention_factory_from_cfg,
    build_densenet_attention_backbone,
    build_densenet_attention_fpn_backbone,
    build_resnet_attention_backbone,
    build_resnet_attention_fpn_backbone,
    build_retinanet_resnet_attention_fpn_backbone,
)
from .builders import (
    add_attention,
    attention_factory,
    build_attention_densenet,
    build_attention_densenet_fpn,
    build_attention_resnet,
    build_attention_resnet_fpn,
)
from .densenet import DenseNetBackbone, build_densenet_backbone, build_densenet_fpn_backbone

__all__ = [
    "DENSENET_STAGES",
    "DenseNetBackbone",
    "RESNET_STAGES",
    "add_attention",
    "add_attention_from_cfg",
    "attention_arguments_from_cfg",
    "attention_factory",
    "attention_factory_from_cfg",
    "build_attention_densenet",
    "build_attention_densenet_fpn",
    "build_attention_resnet",
    "build_attention_resnet_fpn",
    "build_densenet_attention_backbone",
    "build_densenet_attention_fpn_backbone",
    "build_densenet_backbone",
    "build_densenet_fpn_backbone",
    "build_resnet_attention_backbone",
    "build_resnet_attention_fpn_backbone",
    "build_retinanet_resnet_attention_fpn_backbone",
]
